// Personalising a TCA profile package per order (issue #7, the SM-DP's inventory): the same template,
// a different ICCID (the ProfileHeader's and EF.ICCID's), IMSI (the USIM's EF.IMSI) and AKA keys (Ki
// and OPc of every akaParameter PE). Every value has a fixed size, so it is replaced in place: the
// DER lengths do not change, nothing else moves, and the result is parsed again before it is
// returned (docs/profile-package.md, "Personalisation").
//
//   ProfileHeader   iccid            [3] OCTET STRING (10): BCD, F-padded, first digit in the high nibble
//   PE-MF           ef-iccid 2FE2    fillFileContent (10): the same digits nibble-swapped (TS 102 221)
//   PE-USIM         ef-imsi 6F07     fillFileContent (9): length 08, parity nibble ‖ digits, swapped (TS 31.102)
//   PE-AKAParameter algoConfiguration [1] { [1] algoParameter { 80 id, 81 options, 82 key, 83 opc } }
//
// Files described otherwise (genericFileManagement PEs, contents split over several fillFileContent
// items) are refused with what is missing rather than guessed.

public import M2MCore

/// The values of one order.
public struct ProfilePersonalization: Sendable, Hashable {
    public var iccid: ICCID
    public var imsi: IMSI?
    /// Ki (K) for every akaParameter PE; the template's key length.
    public var ki: [UInt8]?
    /// OPc for every akaParameter PE; the template's length.
    public var opc: [UInt8]?

    public init(iccid: ICCID, imsi: IMSI? = nil, ki: [UInt8]? = nil, opc: [UInt8]? = nil) {
        self.iccid = iccid
        self.imsi = imsi
        self.ki = ki
        self.opc = opc
    }
}

/// Why a template cannot take an order's values.
public struct ProfilePersonalizationError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The template is not a valid package (or the result would not be one).
        case invalidTemplate
        /// The template has no such field where this reader looks (header ICCID, EF.ICCID, EF.IMSI, AKA key).
        case fieldMissing
        /// A value does not have the template's size (a 19-digit ICCID where 20 are needed is fine: F-padded).
        case sizeMismatch
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { "\(code.rawValue): \(detail)" }
}

/// What a package holds in the personalised fields.
public struct ProfilePersonalizedValues: Sendable, Hashable {
    public var headerICCID: ICCID
    public var efICCID: ICCID?
    public var imsi: IMSI?
    /// Ki and OPc of each akaParameter PE, in package order.
    public var keys: [(ki: [UInt8], opc: [UInt8]?)]

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.headerICCID == rhs.headerICCID && lhs.efICCID == rhs.efICCID && lhs.imsi == rhs.imsi
            && lhs.keys.map(\.ki) == rhs.keys.map(\.ki) && lhs.keys.map { $0.opc ?? [] } == rhs.keys.map { $0.opc ?? [] }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(headerICCID) }
}

extension ProfilePackage {
    /// A DER node inside the package: where its value starts and ends.
    struct Node {
        var tag: TLVTag
        var valueStart: Int
        var end: Int
        var range: Range<Int> { valueStart..<end }
    }

    static func nodes(_ bytes: [UInt8], in range: Range<Int>) throws(ProfilePersonalizationError) -> [Node] {
        var out: [Node] = []
        var offset = range.lowerBound
        while offset < range.upperBound {
            do throws(TLVError) {
                let tlv = try TLV.parse(bytes, offset: &offset)
                guard offset <= range.upperBound else { throw TLVError(code: .truncated, detail: "a child exceeds its parent") }
                out.append(Node(tag: tlv.tag, valueStart: offset - tlv.value.count, end: offset))
            } catch {
                throw ProfilePersonalizationError(.invalidTemplate, "not DER at offset \(offset): \(error)")
            }
        }
        return out
    }

    /// The content range of the EF `fid` among a file-system PE's files: the single fillFileContent
    /// that follows its fileDescriptor (a1 { … 83 FID … }).
    static func fileContent(_ bytes: [UInt8], in element: ProfileElement, fid: [UInt8]) throws(ProfilePersonalizationError) -> Range<Int>? {
        let valueStart = element.offset + element.valueOffset
        for file in try nodes(bytes, in: valueStart..<(element.offset + element.size)) where file.tag.isConstructed && file.tag != 0xA0 {
            let items = try nodes(bytes, in: file.range)
            guard let descriptor = items.first, descriptor.tag == 0xA1,
                let id = try nodes(bytes, in: descriptor.range).first(where: { $0.tag == 0x83 }), Array(bytes[id.range]) == fid
            else { continue }
            let contents = items.dropFirst().filter { $0.tag == 0x83 }
            guard contents.count == 1, !items.dropFirst().contains(where: { $0.tag == 0x82 }) else {
                throw ProfilePersonalizationError(.fieldMissing, "EF \(Hex.encode(fid)) in PE \(element.type) is not one fillFileContent")
            }
            return contents.first!.range
        }
        return nil
    }

    /// The ranges of Ki (82) and OPc (83) in each akaParameter PE.
    static func akaRanges(_ bytes: [UInt8], in element: ProfileElement) throws(ProfilePersonalizationError) -> (ki: Range<Int>, opc: Range<Int>?)? {
        let valueStart = element.offset + element.valueOffset
        guard let configuration = try nodes(bytes, in: valueStart..<(element.offset + element.size)).first(where: { $0.tag == 0xA1 }),
            let parameter = try nodes(bytes, in: configuration.range).first(where: { $0.tag.isConstructed })
        else { return nil }
        let fields = try nodes(bytes, in: parameter.range)
        guard let ki = fields.first(where: { $0.tag == 0x82 }) else { return nil }
        return (ki.range, fields.first { $0.tag == 0x83 }?.range)
    }

    /// The ICCID as the ProfileHeader codes it (first digit in the high nibble, F-padded to 10 bytes).
    static func headerICCID(_ iccid: ICCID) -> [UInt8] { packBCD(Array(iccid.text.uppercased()), count: 10, swapped: false) }

    /// The ICCID as EF.ICCID holds it (nibble-swapped).
    static func efICCID(_ iccid: ICCID) -> [UInt8] { packBCD(Array(iccid.text.uppercased()), count: 10, swapped: true) }

    /// EF.IMSI content (TS 31.102): length, then the parity nibble (9 odd, 1 even) and the digits,
    /// nibble-swapped, F-padded to `size` bytes.
    public static func efIMSIContent(_ imsi: IMSI, size: Int = 9) -> [UInt8] {
        let size = max(size, 2)
        let digits = Array(imsi.text)
        let nibbles: [Character] = [digits.count % 2 == 1 ? "9" : "1"] + digits
        let length = (nibbles.count + 1) / 2
        return [UInt8(length)] + packBCD(nibbles, count: size - 1, swapped: true)
    }

    static func packBCD(_ characters: [Character], count: Int, swapped: Bool) -> [UInt8] {
        var nibbles = characters.map { $0 == "F" ? UInt8(0x0F) : UInt8($0.asciiValue! - 0x30) }
        while nibbles.count < 2 * count { nibbles.append(0x0F) }
        return (0..<count).map { index in
            let first = nibbles[2 * index], second = nibbles[2 * index + 1]
            return swapped ? second << 4 | first : first << 4 | second
        }
    }

    static func unpackBCD(_ bytes: ArraySlice<UInt8>, swapped: Bool) -> String {
        var text = ""
        for byte in bytes {
            for nibble in swapped ? [byte & 0x0F, byte >> 4] : [byte >> 4, byte & 0x0F] {
                text.append(nibble == 0x0F ? "F" : nibble <= 9 ? Character(Unicode.Scalar(0x30 + nibble)) : "?")
            }
        }
        return text
    }

    /// The template with the order's values in place; parsed again before it is returned.
    public static func personalize(_ template: [UInt8], with values: ProfilePersonalization, options: Options = .init())
        throws(ProfilePersonalizationError) -> [UInt8]
    {
        let plan = try PersonalizationPlan(template: template, options: options, values: values)
        let out = try plan.apply(to: template, values)
        let result: ProfilePackage
        do throws(ProfilePackageError) {
            result = try ProfilePackage(der: out, options: options)
        } catch {
            throw ProfilePersonalizationError(.invalidTemplate, "the personalised package does not parse: \(error)")
        }
        guard result.header.iccid.digits == values.iccid.digits else {
            throw ProfilePersonalizationError(.invalidTemplate, "the header reads back ICCID \(result.header.iccid.text), not \(values.iccid.text)")
        }
        return out
    }

    /// What a package holds in the fields `personalize` writes.
    public static func personalizedValues(_ der: [UInt8], options: Options = .init()) throws(ProfilePersonalizationError) -> ProfilePersonalizedValues {
        let package: ProfilePackage
        do throws(ProfilePackageError) {
            package = try ProfilePackage(der: der, options: options)
        } catch {
            throw ProfilePersonalizationError(.invalidTemplate, "\(error)")
        }
        var values = ProfilePersonalizedValues(headerICCID: package.header.iccid, efICCID: nil, imsi: nil, keys: [])
        if let mf = package.elements.first(where: { $0.type == .mf }), let range = try fileContent(der, in: mf, fid: [0x2F, 0xE2]) {
            values.efICCID = try? ICCID(text: String(unpackBCD(der[range], swapped: true).prefix { $0 != "F" }))
        }
        if let usim = package.elements.first(where: { $0.type == .usim }), let range = try fileContent(der, in: usim, fid: [0x6F, 0x07]), range.count >= 2 {
            let digits = unpackBCD(der[(range.lowerBound + 1)..<range.upperBound].prefix(Int(der[range.lowerBound])), swapped: true)
            values.imsi = try? IMSI(text: String(digits.dropFirst().prefix { $0 != "F" }))
        }
        for element in package.elements where element.type == .akaParameter {
            if let ranges = try akaRanges(der, in: element) {
                values.keys.append((Array(der[ranges.ki]), ranges.opc.map { Array(der[$0]) }))
            }
        }
        return values
    }
}

/// Where `ProfilePackage.personalize` writes in one template — found once (one parse of the
/// template), then applied to any number of orders by replacing those byte ranges. Every value has
/// the size of the range it replaces, so the DER structure is the template's: an SM-DP that checked
/// each pool entry with `personalize` at import can apply the plan per order without parsing again.
public struct PersonalizationPlan: Sendable {
    public let headerICCID: Range<Int>
    public let efICCID: Range<Int>
    public let efIMSI: Range<Int>?
    let ki: [Range<Int>]
    let opc: [Range<Int>?]

    /// `values`, when given, says which fields must be there (an IMSI needs EF.IMSI, keys an akaParameter PE).
    public init(template: [UInt8], options: ProfilePackage.Options = .init(), values: ProfilePersonalization? = nil) throws(ProfilePersonalizationError) {
        let package: ProfilePackage
        do throws(ProfilePackageError) {
            package = try ProfilePackage(der: template, options: options)
        } catch {
            throw ProfilePersonalizationError(.invalidTemplate, "\(error)")
        }
        let header = package.elements[0]
        guard let iccidNode = try ProfilePackage.nodes(template, in: (header.offset + header.valueOffset)..<(header.offset + header.size)).first(where: { $0.tag == 0x83 })
        else { throw ProfilePersonalizationError(.fieldMissing, "the ProfileHeader has no iccid") }
        headerICCID = iccidNode.range
        guard let mf = package.elements.first(where: { $0.type == .mf }), let efICCIDRange = try ProfilePackage.fileContent(template, in: mf, fid: [0x2F, 0xE2]) else {
            throw ProfilePersonalizationError(.fieldMissing, "PE-MF has no EF.ICCID (2FE2) content")
        }
        efICCID = efICCIDRange
        if let usim = package.elements.first(where: { $0.type == .usim }) {
            efIMSI = try ProfilePackage.fileContent(template, in: usim, fid: [0x6F, 0x07])
        } else {
            efIMSI = nil
        }
        if values?.imsi != nil, efIMSI == nil { throw ProfilePersonalizationError(.fieldMissing, "no USIM PE with EF.IMSI (6F07) content") }
        var ki: [Range<Int>] = []
        var opc: [Range<Int>?] = []
        for element in package.elements where element.type == .akaParameter {
            guard let ranges = try ProfilePackage.akaRanges(template, in: element) else {
                throw ProfilePersonalizationError(.fieldMissing, "akaParameter PE \(element.index) has no algorithm key")
            }
            ki.append(ranges.ki)
            opc.append(ranges.opc)
        }
        if values?.ki != nil || values?.opc != nil, ki.isEmpty { throw ProfilePersonalizationError(.fieldMissing, "no akaParameter PE for Ki/OPc") }
        self.ki = ki
        self.opc = opc
    }

    /// The template with `values` in place (no parse).
    public func apply(to template: [UInt8], _ values: ProfilePersonalization) throws(ProfilePersonalizationError) -> [UInt8] {
        var out = template
        func put(_ value: [UInt8], at range: Range<Int>, _ what: String) throws(ProfilePersonalizationError) {
            guard value.count == range.count, range.upperBound <= out.count else {
                throw ProfilePersonalizationError(.sizeMismatch, "\(what) is \(value.count) bytes, the template's \(range.count)")
            }
            out.replaceSubrange(range, with: value)
        }
        try put(ProfilePackage.headerICCID(values.iccid), at: headerICCID, "the header ICCID")
        try put(ProfilePackage.efICCID(values.iccid), at: efICCID, "EF.ICCID")
        if let imsi = values.imsi {
            guard let efIMSI else { throw ProfilePersonalizationError(.fieldMissing, "no USIM PE with EF.IMSI (6F07) content") }
            guard efIMSI.count >= 2, (imsi.text.count + 2) / 2 <= efIMSI.count - 1 else {
                throw ProfilePersonalizationError(.sizeMismatch, "an IMSI of \(imsi.text.count) digits does not fit EF.IMSI's \(efIMSI.count) bytes")
            }
            try put(ProfilePackage.efIMSIContent(imsi, size: efIMSI.count), at: efIMSI, "EF.IMSI")
        }
        if values.ki != nil || values.opc != nil {
            guard !ki.isEmpty else { throw ProfilePersonalizationError(.fieldMissing, "no akaParameter PE for Ki/OPc") }
            for index in ki.indices {
                if let value = values.ki { try put(value, at: ki[index], "Ki") }
                if let value = values.opc {
                    guard let range = opc[index] else { throw ProfilePersonalizationError(.fieldMissing, "akaParameter PE \(index) has no OPc") }
                    try put(value, at: range, "OPc")
                }
            }
        }
        return out
    }
}
