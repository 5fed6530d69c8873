// The capture format of `m2mrsp trace` (docs/trace.md): JSON Lines, one exchange per line,
//
//   {"dir": "to-card" | "from-card", "layer": "apdu" | "script" | "scp80" | "scp81-http" | "scp03t",
//    "hex": "…", "time": "…" (optional), "note": "…" (optional)}
//
// Two optional fields place an exchange: "eid" (32 digits: the card; exchanges are traced per card, so
// a capture of many cards interleaved still pairs each card's commands with its answers) and
// "target" ("isd-r" or an ISD-P AID in hex: the application a script or APDU is for, when the layer
// does not say it — an SCP81 message's X-Admin-Targeted-Application, an SCP80 TAR do).
//
// plus, for an SCP03t session whose log lost some commands, {"dir": "to-card", "layer": "scp03t",
// "elided": N} (N commands not captured: the tracer keeps the counter, loses the MAC chain).
// Hex may carry spaces, colons or line breaks; blank lines and lines starting with # are skipped.

public import M2MCore
import Foundation

public enum TraceDirection: String, Sendable, Hashable, Codable {
    case toCard = "to-card"
    case fromCard = "from-card"
}

public enum TraceLayer: String, Sendable, Hashable, Codable, CaseIterable {
    /// One command APDU (to the card) or one response APDU with its status word (from the card).
    case apdu
    /// An expanded remote command script (AA/AE) or response script (AB/AF), TS 102 226.
    case script
    /// An SCP80 secured packet: SMS TP-UD (with its 02 70 00 / 02 71 00 header) or the bare packet.
    case scp80
    /// One HTTP message of the SCP81 admin protocol as it travels inside PSK-TLS.
    case scp81HTTP = "scp81-http"
    /// SCP03t command TLVs (84, 85, 86) or the card's answer TLVs.
    case scp03t
}

/// One captured exchange.
public struct TraceExchange: Sendable, Hashable {
    /// 1-based line of the capture file.
    public var line: Int
    public var direction: TraceDirection
    public var layer: TraceLayer
    public var bytes: [UInt8]
    public var time: String?
    public var note: String?
    /// SCP03t commands missing from the log at this point (no bytes then).
    public var elided: Int?
    /// The card (exchanges are traced per card).
    public var eid: EID?
    /// The application a script or APDU is for (nil: what the layer says, else the ISD-R).
    public var target: AID?
    /// True when `target` names the ISD-R explicitly.
    public var targetsISDR = false

    public init(line: Int, direction: TraceDirection, layer: TraceLayer, bytes: [UInt8], time: String? = nil, note: String? = nil, elided: Int? = nil,
                eid: EID? = nil, target: AID? = nil, targetsISDR: Bool = false) {
        self.line = line
        self.direction = direction
        self.layer = layer
        self.bytes = bytes
        self.time = time
        self.note = note
        self.elided = elided
        self.eid = eid
        self.target = target
        self.targetsISDR = targetsISDR
    }
}

/// A capture that cannot be read: the line and what is wrong with it.
public struct TraceInputError: Error, Sendable, Hashable, CustomStringConvertible {
    public let source: String
    public let line: Int?
    public let detail: String

    public init(source: String, line: Int?, _ detail: String) {
        self.source = source
        self.line = line
        self.detail = detail
    }

    public var description: String { line.map { "\(source):\($0): \(detail)" } ?? "\(source): \(detail)" }
}

public enum TraceCapture {
    static let keys: Set<String> = ["dir", "layer", "hex", "time", "note", "elided", "eid", "target"]
    /// The SCP03t counter is 32 bits; a log does not lose more commands than that.
    static let maximumElided = 1 << 20

    /// Reads JSON Lines; `source` names the file in errors.
    public static func parse(_ data: [UInt8], source: String = "capture") throws(TraceInputError) -> [TraceExchange] {
        guard String(validating: data, as: UTF8.self) != nil else { throw TraceInputError(source: source, line: nil, "not UTF-8 text") }
        var exchanges: [TraceExchange] = []
        // Lines end at LF (a CR before it is whitespace): split the bytes, not Characters ("\r\n" is one Character).
        for (offset, raw) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = offset + 1
            let trimmed = String(decoding: raw, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            func fail(_ detail: String) -> TraceInputError { TraceInputError(source: source, line: line, detail) }
            guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] else {
                throw fail("not a JSON object")
            }
            if let unknown = object.keys.first(where: { !keys.contains($0) }) { throw fail("unknown field \"\(unknown)\"") }
            guard let dirText = object["dir"] as? String, let direction = TraceDirection(rawValue: dirText) else {
                throw fail("\"dir\" is \"to-card\" or \"from-card\"")
            }
            guard let layerText = object["layer"] as? String, let layer = TraceLayer(rawValue: layerText) else {
                throw fail("\"layer\" is one of \(TraceLayer.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
            let time = object["time"] as? String
            let note = object["note"] as? String
            var eid: EID?
            if let value = object["eid"] {
                guard let text = value as? String, let parsed = try? EID(text: text) else { throw fail("\"eid\" is an EID (32 digits, check digits valid)") }
                eid = parsed
            }
            var target: AID?
            var targetsISDR = false
            if let value = object["target"] {
                guard let text = value as? String else { throw fail("\"target\" is \"isd-r\" or an ISD-P AID in hex") }
                if text.lowercased() == "isd-r" {
                    targetsISDR = true
                } else {
                    guard let bytes = Hex.decode(text), let aid = try? AID(bytes: bytes) else { throw fail("\"target\" is \"isd-r\" or an ISD-P AID in hex") }
                    target = aid
                }
            }
            if let elided = object["elided"] {
                guard layer == .scp03t, direction == .toCard, let count = elided as? Int, count > 0, count <= Self.maximumElided, object["hex"] == nil else {
                    throw fail("\"elided\" (a count of 1…\(Self.maximumElided), without \"hex\") is for to-card scp03t lines only")
                }
                exchanges.append(TraceExchange(line: line, direction: direction, layer: layer, bytes: [], time: time, note: note, elided: count,
                                               eid: eid, target: target, targetsISDR: targetsISDR))
                continue
            }
            guard let hexText = object["hex"] as? String else { throw fail("\"hex\" is missing") }
            let digits = hexText.filter { !($0.isWhitespace || $0 == ":") }
            guard let bytes = Hex.decode(digits), !bytes.isEmpty else { throw fail("\"hex\" is not an even number of hex digits") }
            exchanges.append(TraceExchange(line: line, direction: direction, layer: layer, bytes: bytes, time: time, note: note, eid: eid,
                                           target: target, targetsISDR: targetsISDR))
        }
        return exchanges
    }
}
