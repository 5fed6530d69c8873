// `schema.lua`: a plugin's declarative configuration schema (Kong's idea), validated in Swift
// before anything is loaded. A configuration that does not match is refused with the field path.
//
//   return { fields = {
//     { name = "start_hour", type = "integer", default = 1, between = { 0, 23 },
//       description = "first hour (UTC) of the maintenance window" },
//     { name = "owner_via", type = "string", default = "auto", one_of = { "auto", "ES2", "ES4" } },
//     { name = "blocked", type = "array", elements = "oid", default = {} },
//     { name = "retry", type = "map", values = "string", default = {} },
//   } }

import M2MCore

/// A plugin's configuration schema.
public struct PluginSchema: Sendable, Hashable {
    public enum FieldType: String, Sendable, Hashable, CaseIterable {
        case string, integer, number, boolean, oid, array, map, record
    }

    public struct Field: Sendable, Hashable {
        public let name: String
        public let type: FieldType
        public let required: Bool
        public let defaultValue: PolicyValue?
        public let minimum: Double?
        public let maximum: Double?
        public let oneOf: [String]?
        /// Element type of arrays, value type of maps.
        public let elements: FieldType?
        public let description: String
    }

    public let fields: [Field]

    public static let empty = PluginSchema(fields: [])

    init(fields: [Field]) { self.fields = fields }

    public init(policyValue: PolicyValue, path: String) throws(PolicyError) {
        guard let items = policyValue["fields"].arrayValue else {
            throw .invalidConfiguration("\(path): schema.lua must return { fields = { … } }")
        }
        var fields: [Field] = []
        for (i, item) in items.enumerated() {
            let at = "\(path) field \(i + 1)"
            guard let name = item["name"].stringValue else { throw .invalidConfiguration("\(at): 'name' is missing") }
            guard let typeName = item["type"].stringValue, let type = FieldType(rawValue: typeName) else {
                throw .invalidConfiguration("\(at) (\(name)): 'type' must be one of \(FieldType.allCases.map(\.rawValue))")
            }
            var minimum: Double?, maximum: Double?
            if let between = item["between"].arrayValue {
                guard between.count == 2, let lo = between[0].number, let hi = between[1].number else {
                    throw .invalidConfiguration("\(at) (\(name)): 'between' is { min, max }")
                }
                minimum = lo
                maximum = hi
            }
            var elements: FieldType?
            let elementName = item["elements"].stringValue ?? item["values"].stringValue
            if let elementName {
                guard let e = FieldType(rawValue: elementName) else {
                    throw .invalidConfiguration("\(at) (\(name)): unknown element type '\(elementName)'")
                }
                elements = e
            }
            let oneOf = item["one_of"].arrayValue?.compactMap(\.stringValue)
            let field = Field(
                name: name, type: type, required: item["required"].boolValue ?? false,
                defaultValue: item["default"].isNull ? nil : item["default"], minimum: minimum, maximum: maximum,
                oneOf: oneOf, elements: elements, description: item["description"].stringValue ?? "")
            if let d = field.defaultValue { _ = try Self.check(d, field.type, field, path: "\(path).\(name) (default)") }
            fields.append(field)
        }
        self.fields = fields
    }

    /// The effective configuration: `conf` checked field by field, defaults filled in.
    public func validate(_ conf: PolicyValue, path: String) throws(PolicyError) -> PolicyValue {
        guard let given = conf.isNull ? [:] : conf.recordValue else {
            throw .invalidConfiguration("\(path): a table is expected, got \(conf.typeName)")
        }
        let known = Set(fields.map(\.name))
        for key in given.keys.sorted() where !known.contains(key) {
            throw .invalidConfiguration("\(path): unknown field '\(key)'")
        }
        var out: [String: PolicyValue] = [:]
        for field in fields {
            let value = given[field.name] ?? .null
            if value.isNull {
                if let d = field.defaultValue {
                    out[field.name] = d
                } else if field.required {
                    throw .invalidConfiguration("\(path).\(field.name) is required")
                }
                continue
            }
            out[field.name] = try Self.check(value, field.type, field, path: "\(path).\(field.name)")
        }
        return .record(out)
    }

    private static func check(_ v: PolicyValue, _ type: FieldType, _ field: Field, path: String) throws(PolicyError) -> PolicyValue {
        switch type {
        case .string, .oid:
            guard let s = v.stringValue else { throw .invalidConfiguration("\(path): a string is expected, got \(v.typeName)") }
            if type == .oid, (try? OID(text: s)) == nil { throw .invalidConfiguration("\(path): '\(s)' is not an OID") }
            if let oneOf = field.oneOf, type == .string, field.type == .string, !oneOf.contains(s) {
                throw .invalidConfiguration("\(path): '\(s)' is not one of \(oneOf.joined(separator: ", "))")
            }
        case .integer:
            guard v.intValue != nil else { throw .invalidConfiguration("\(path): an integer is expected, got \(v.typeName)") }
            try range(v, field, path)
        case .number:
            guard v.number != nil else { throw .invalidConfiguration("\(path): a number is expected, got \(v.typeName)") }
            try range(v, field, path)
        case .boolean:
            guard v.boolValue != nil else { throw .invalidConfiguration("\(path): a boolean is expected, got \(v.typeName)") }
        case .array:
            guard let items = v.arrayValue else { throw .invalidConfiguration("\(path): a list is expected, got \(v.typeName)") }
            if let e = field.elements {
                for (i, item) in items.enumerated() {
                    let element = Field(name: field.name, type: e, required: false, defaultValue: nil, minimum: field.minimum,
                                        maximum: field.maximum, oneOf: field.oneOf, elements: nil, description: "")
                    _ = try check(item, e, element, path: "\(path)[\(i + 1)]")
                }
            }
            return .array(items)
        case .map, .record:
            guard let entries = v.recordValue else { throw .invalidConfiguration("\(path): a table is expected, got \(v.typeName)") }
            if let e = field.elements, type == .map {
                for key in entries.keys.sorted() {
                    let element = Field(name: field.name, type: e, required: false, defaultValue: nil, minimum: field.minimum,
                                        maximum: field.maximum, oneOf: field.oneOf, elements: nil, description: "")
                    _ = try check(entries[key]!, e, element, path: "\(path).\(key)")
                }
            }
            return .record(entries)
        }
        return v
    }

    private static func range(_ v: PolicyValue, _ field: Field, _ path: String) throws(PolicyError) {
        guard let n = v.number else { return }
        if let lo = field.minimum, n < lo { throw .invalidConfiguration("\(path): \(n) is below \(lo)") }
        if let hi = field.maximum, n > hi { throw .invalidConfiguration("\(path): \(n) is above \(hi)") }
    }
}

extension PolicyValue {
    var number: Double? {
        switch self {
        case .integer(let i): Double(i)
        case .number(let d): d
        default: nil
        }
    }
}
