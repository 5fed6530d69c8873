// JSON written by hand for the few documents on hot paths (a DownloadProfile state machine, a
// policy decision's result): Foundation's JSONEncoder cost more than the SQLite transaction that
// stores them (bench download). Readers use JSONDecoder; tests check each form decodes back equal.

public enum JSONText {
    /// A JSON string literal.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// An object of already-encoded members, keys sorted (as JSONEncoder's `.sortedKeys`).
    public static func object(_ members: [(String, String)]) -> [UInt8] { Array(objectText(members).utf8) }

    public static func objectText(_ members: [(String, String)]) -> String {
        "{" + members.sorted { $0.0 < $1.0 }.map { "\(quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    public static func array(_ elements: [String]) -> String { "[" + elements.joined(separator: ",") + "]" }

    /// Encodes an enum case with associated values the way Swift's synthesized Codable does:
    /// `{"case":{"_0":payload}}`, or `{"case":{}}` without payload.
    public static func enumCase(_ name: String, _ payload: String? = nil) -> String {
        objectText([(name, payload.map { objectText([("_0", $0)]) } ?? "{}")])
    }
}
