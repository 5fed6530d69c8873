// Deterministic card identities: every secret of an emulated eUICC is derived from the fleet seed
// and the card's index, so a fleet of a million cards keeps no key material per idle card (the
// memory target is a few KiB per card) and a fleet file only needs the seed and the cards' state.
// Derivation: SHA-256(seed ‖ label ‖ index as 8 bytes, big endian), one label per secret.

public import M2MCore
public import M2MCrypto

/// The fixed identity of one emulated eUICC.
public struct CardIdentity: Sendable, Hashable {
    public let seed: [UInt8]
    public let index: UInt64
    public let curve: Curve

    public init(seed: [UInt8], index: UInt64, curve: Curve) {
        self.seed = seed
        self.index = index
        self.curve = curve
    }

    func derive(_ label: String, count: Int = 32) -> [UInt8] {
        var out: [UInt8] = []
        var block: UInt8 = 0
        while out.count < count {
            var input = seed + Array(label.utf8) + [block]
            for shift in stride(from: 56, through: 0, by: -8) { input.append(UInt8(truncatingIfNeeded: index >> UInt64(shift))) }
            out += SHA256.hash(input)
            block += 1
        }
        return Array(out.prefix(count))
    }

    /// The EID: 89 049032 (GSMA test EUM prefix) + 22 digits from the index and seed, MOD 97-10 check digits.
    public var eid: EID {
        let tag = derive("eid", count: 4).reduce(0) { ($0 << 8 | Int($1)) } % 1_000_000
        var digits = String(index)
        digits = String(repeating: "0", count: max(0, 16 - digits.count)) + digits
        let tagText = String(tag)
        let prefix = "89049032" + String(repeating: "0", count: 6 - tagText.count) + tagText + digits.suffix(16)
        return try! EID(prefix30: prefix)
    }

    /// SK.ECASD.ECKA: a valid scalar derived from the seed (retrying past the rare invalid value).
    public func ecasdKey() throws(CryptoError) -> ECPrivateKey {
        var attempt = 0
        while true {
            do {
                return try ECPrivateKey(rawScalar: derive("ecasd-\(attempt)"), curve: curve)
            } catch {
                attempt += 1
                if attempt > 8 { throw error }
            }
        }
    }

    /// The ISD-R's SCP80 keys (KIc, KID), key version 1, AES-128.
    public var scp80Keys: (kic: SecureBytes, kid: SecureBytes) {
        (SecureBytes(derive("scp80-kic", count: 16)), SecureBytes(derive("scp80-kid", count: 16)))
    }

    /// The ISD-R's SCP81 PSK (key version 0x40).
    public var scp81PSK: SecureBytes { SecureBytes(derive("scp81-psk", count: 16)) }
}
