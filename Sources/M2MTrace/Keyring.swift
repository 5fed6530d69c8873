// The keyring of `m2mrsp trace` (docs/trace.md): a JSON object holding whatever keys the user has.
// Every field is optional; a check whose key is missing is reported as skipped, not failed.
//
//   {"curve": "P-256" | "brainpoolP256r1",
//    "pk_ci": "04…",                      PK.CI (X9.62 point): CERT.DP.ECDSA checked against it
//    "pk_ecasd_ecka": "04…",              the card's PK.ECASD.ECKA
//    "esk_dp_ecka": "…",                  the SM-DP's ephemeral private key (SM-DP logs): receipt recomputed
//    "isd_p_aid": "A0…",                  the ISD-P, when the capture does not show it
//    "scp03": {"kvn": "30", "enc": "…", "mac": "…", "dek": "…"},   the ISD-P's keys (else derived from
//                                         the key establishment in the capture)
//    "scp80": [{"kvn": 1, "algorithm": "aes" | "3des-2key" | "3des-3key" | "des", "kic": "…", "kid": "…"}],
//    "scp81_psk": {"identity": "…", "key": "…"}}
//
// Key values are held in SecureBytes and never printed.

public import M2MCore
public import M2MCrypto
import M2MWire
import Foundation

public struct TraceKeyring: Sendable {
    public var curve: Curve = .p256
    public var ciPublicKey: ECPublicKey?
    public var ecasdPublicKey: ECPublicKey?
    public var ephemeralPrivateKey: ECPrivateKey?
    public var isdPAID: AID?
    public var scp03: SCP03Keys?
    public var scp80: [SCP80KeySet] = []
    /// Kept for completeness: the tracer reads the HTTP layer of SCP81, not TLS records (docs/trace.md).
    public var scp81PSK: SecureBytes?

    public init() {}

    static let fields: Set<String> = ["curve", "pk_ci", "pk_ecasd_ecka", "esk_dp_ecka", "isd_p_aid", "scp03", "scp80", "scp81_psk", "comment"]

    /// Reads a keyring; `source` names the file in errors.
    public static func parse(_ data: [UInt8], source: String = "keyring") throws(TraceInputError) -> TraceKeyring {
        func fail(_ detail: String) -> TraceInputError { TraceInputError(source: source, line: nil, detail) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else { throw fail("not a JSON object") }
        if let unknown = object.keys.sorted().first(where: { !fields.contains($0) }) { throw fail("unknown field \"\(unknown)\"") }
        func hex(_ value: Any?, _ name: String) throws(TraceInputError) -> [UInt8]? {
            guard let value else { return nil }
            guard let text = value as? String, let bytes = Hex.decode(text.filter { $0 != " " && $0 != ":" }), !bytes.isEmpty else {
                throw fail("\"\(name)\" is not hex")
            }
            return bytes
        }
        var keyring = TraceKeyring()
        if let text = object["curve"] {
            guard let name = text as? String, let curve = Curve(rawValue: name) ?? (name.lowercased() == "p256" ? .p256 : nil) else {
                throw fail("\"curve\" is \"P-256\" or \"brainpoolP256r1\"")
            }
            keyring.curve = curve
        }
        let curve = keyring.curve
        let ci = try hex(object["pk_ci"], "pk_ci")
        let ecasd = try hex(object["pk_ecasd_ecka"], "pk_ecasd_ecka")
        let esk = try hex(object["esk_dp_ecka"], "esk_dp_ecka")
        do throws(CryptoError) {
            if let ci { keyring.ciPublicKey = try ECPublicKey(x962Representation: ci, curve: curve) }
            if let ecasd { keyring.ecasdPublicKey = try ECPublicKey(x962Representation: ecasd, curve: curve) }
            if let esk { keyring.ephemeralPrivateKey = try ECPrivateKey(rawScalar: esk, curve: curve) }
        } catch {
            throw fail("a key is not valid on \(curve): \(error)")
        }
        if let aid = try hex(object["isd_p_aid"], "isd_p_aid") {
            guard let value = try? AID(bytes: aid) else { throw fail("\"isd_p_aid\" is not an AID") }
            keyring.isdPAID = value
        }
        if let scp03 = object["scp03"] {
            guard let set = scp03 as? [String: Any], let kvnText = set["kvn"] as? String, let kvn = Hex.decode(kvnText), kvn.count == 1,
                let enc = try hex(set["enc"], "scp03.enc"), let mac = try hex(set["mac"], "scp03.mac")
            else { throw fail("\"scp03\" is {\"kvn\": \"30\", \"enc\": hex, \"mac\": hex, \"dek\": hex}") }
            let dek = try hex(set["dek"], "scp03.dek") ?? enc
            guard [16, 24, 32].contains(enc.count), mac.count == enc.count, dek.count == enc.count else {
                throw fail("\"scp03\" keys are AES keys of one length (16, 24 or 32 bytes)")
            }
            keyring.scp03 = SCP03Keys(keyVersion: kvn[0], enc: SecureBytes(enc), mac: SecureBytes(mac), dek: SecureBytes(dek))
        }
        if let scp80 = object["scp80"] {
            guard let sets = scp80 as? [[String: Any]] else { throw fail("\"scp80\" is a list of key sets") }
            for (index, set) in sets.enumerated() {
                let algorithms: [String: SCP80Algorithm] = ["aes": .aes, "3des-2key": .tripleDES2Key, "3des-3key": .tripleDES3Key, "des": .des]
                guard let kvn = set["kvn"] as? Int, let name = set["algorithm"] as? String, let algorithm = algorithms[name],
                    let kic = try hex(set["kic"], "scp80[\(index)].kic"), let kid = try hex(set["kid"], "scp80[\(index)].kid")
                else { throw fail("\"scp80\"[\(index)] is {\"kvn\": 1–15, \"algorithm\": \(algorithms.keys.sorted()), \"kic\": hex, \"kid\": hex}") }
                do throws(CryptoError) {
                    keyring.scp80.append(try SCP80KeySet(keyVersion: UInt8(clamping: kvn), algorithm: algorithm, kic: SecureBytes(kic), kid: SecureBytes(kid)))
                } catch {
                    throw fail("\"scp80\"[\(index)]: \(error)")
                }
            }
        }
        if let psk = object["scp81_psk"] {
            guard let set = psk as? [String: Any], let key = try hex(set["key"], "scp81_psk.key") else { throw fail("\"scp81_psk\" is {\"identity\": hex, \"key\": hex}") }
            keyring.scp81PSK = SecureBytes(key)
        }
        return keyring
    }
}
