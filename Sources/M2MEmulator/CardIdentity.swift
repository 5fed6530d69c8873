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
    /// SK.ECASD.ECKA given instead of derived: a single card replaying a trace recorded with a known
    /// key (spec §4.4). Fleets never set it: their cards' keys all come from the seed.
    public let fixedECASDScalar: [UInt8]?

    public init(seed: [UInt8], index: UInt64, curve: Curve) {
        self.seed = seed
        self.index = index
        self.curve = curve
        self.fixedECASDScalar = nil
    }

    /// A card whose SK.ECASD.ECKA is `ecasdScalar` (big endian); its other secrets derive from the seed.
    public init(seed: [UInt8], index: UInt64, curve: Curve, ecasdScalar: [UInt8]) {
        self.seed = seed
        self.index = index
        self.curve = curve
        self.fixedECASDScalar = ecasdScalar
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

    /// SK.ECASD.ECKA: a valid scalar derived from the seed (retrying past an invalid value: rare on
    /// P-256, about one draw in three on brainpoolP256r1, whose order is well below 2^256).
    public func ecasdKey() throws(CryptoError) -> ECPrivateKey {
        if let fixedECASDScalar { return try ECPrivateKey(rawScalar: fixedECASDScalar, curve: curve) }
        var attempt = 0
        while true {
            do {
                return try ECPrivateKey(rawScalar: derive("ecasd-\(attempt)"), curve: curve)
            } catch {
                attempt += 1
                if attempt >= Self.scalarAttempts { throw error }
            }
        }
    }

    /// Draws before giving up: 64 invalid draws in a row on brainpoolP256r1 is ~1e-30 (9 was ~6e-5 per card).
    static let scalarAttempts = 64

    /// SK.ECASD.ECKA for ECDH only (the same scalar as `ecasdKey()`, without computing PK.ECASD): what
    /// the card needs in a key establishment.
    public func ecasdAgreementKey() throws(CryptoError) -> ECAgreementKey {
        if let fixedECASDScalar { return try ECAgreementKey(rawScalar: fixedECASDScalar, curve: curve) }
        for attempt in 0..<Self.scalarAttempts {
            let scalar = derive("ecasd-\(attempt)")
            if curve.isValidScalar(scalar) { return try ECAgreementKey(rawScalar: scalar, curve: curve) }
        }
        throw CryptoError(code: .invalidKey, detail: "no valid SK.ECASD scalar derived")
    }

    /// The ISD-R's SCP80 keys (KIc, KID), key version 1, AES-128.
    public var scp80Keys: (kic: SecureBytes, kid: SecureBytes) {
        (SecureBytes(derive("scp80-kic", count: 16)), SecureBytes(derive("scp80-kid", count: 16)))
    }

    /// The ISD-R's SCP81 PSK (key version 0x40).
    public var scp81PSK: SecureBytes { SecureBytes(derive("scp81-psk", count: 16)) }
}
