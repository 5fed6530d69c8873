// The ISD-R's key sets and their change at an SM-SR change (spec/sgp02-offcard.md §6,
// spec/sgp02-oncard.md §2.2; our codings in docs/smsr-change.md):
//
//   factory   SCP80 key set 1 (KIc, KID) and SCP81 PSK set 0x40, derived from the identity
//             (CardIdentity): the first SM-SR's keys, imported at ES1.RegisterEIS.
//   ES5.EstablishISDRKeySet   STORE DATA 3A01 { CERT.SR.ECDSA } then 3A02 { A6 } 7F49 5F37 to the
//             ISD-R itself (no INSTALL [for personalization] before): scenario #3 as for an ISD-P,
//             but the certificate must be an SM-SR's (C8 02) and the new key set (K-ENC, K-MAC,
//             K-DEK) becomes SCP80 key set n (KVN from the CRT, 1–15): KIc = K-ENC, KID = K-MAC,
//             and K-DEK protects later PUT KEYs. The new set works beside the old one at once.
//   PUT KEY   80 D8 00 01: KVN ‖ 88 11 10 <key encrypted with the newest set's K-DEK, AES-CBC,
//             zero IV> 03 <KCV>: an SCP81 PSK set (KVN 40–4F) for the new SM-SR.
//   ES5.FinaliseISDRhandover   DELETE 80 E4 00 00 { D2 01 <KVN> … }: removes the old SM-SR's key
//             sets (never the last SCP80 set).
// MO packets (default notifications) and SCP81 sessions use the oldest key set left: the old
// SM-SR's until FinaliseISDRhandover, the new one's after.

public import M2MCore
public import M2MCrypto
public import M2MWire

/// A key set the ISD-R learnt over the air.
public struct ISDRKeySet: Sendable, Hashable {
    public enum Kind: UInt8, Sendable, Hashable {
        /// K-ENC ‖ K-MAC ‖ K-DEK from ES5.EstablishISDRKeySet (SCP80 KIc, KID, and the DEK).
        case scp80 = 1
        /// An SCP81 pre-shared key set by PUT KEY.
        case scp81 = 2
    }

    public var kind: Kind
    public var version: UInt8
    var keys: [UInt8]
    /// The SCP80 counter of this key set (the last one the card accepted).
    public internal(set) var counter: SCP80Counter = .zero

    /// SCP80: KIc/KID key set; nil for a PSK.
    var scp80: SCP80KeySet? {
        guard kind == .scp80, keys.count % 3 == 0 else { return nil }
        let n = keys.count / 3
        return try? SCP80KeySet(keyVersion: version, algorithm: .aes, kic: SecureBytes(keys[0..<n]), kid: SecureBytes(keys[n..<(2 * n)]))
    }

    var dek: SecureBytes? {
        guard kind == .scp80, keys.count % 3 == 0 else { return nil }
        let n = keys.count / 3
        return SecureBytes(keys[(2 * n)...])
    }
}

/// Which factory (identity-derived) ISD-R key sets were deleted by FinaliseISDRhandover.
public struct FactoryKeySets: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let scp80 = FactoryKeySets(rawValue: 0x01)
    public static let scp81 = FactoryKeySets(rawValue: 0x02)
}

extension EUICC {
    /// The factory SCP80 key version and SCP81 PSK key version.
    public static let factorySCP80Version: UInt8 = 1
    public static let factorySCP81Version: UInt8 = 0x40

    /// The SCP80 key sets the ISD-R accepts, oldest first.
    public var activeSCP80KeySets: [SCP80KeySet] {
        var sets: [SCP80KeySet] = []
        if !deletedFactoryKeySets.contains(.scp80) { sets.append(identity.scp80KeySet) }
        for set in isdrKeySets { if let keys = set.scp80 { sets.append(keys) } }
        return sets
    }

    /// The key versions of the ISD-R key sets (SCP80 and SCP81) the card holds.
    public var isdrKeyVersions: [UInt8] {
        var versions: [UInt8] = []
        if !deletedFactoryKeySets.contains(.scp80) { versions.append(EUICC.factorySCP80Version) }
        if !deletedFactoryKeySets.contains(.scp81) { versions.append(EUICC.factorySCP81Version) }
        return versions + isdrKeySets.map(\.version)
    }

    /// The SCP80 key set MO packets use: the oldest one (the managing SM-SR's).
    var moKeySet: SCP80KeySet? { activeSCP80KeySets.first }

    /// The SCP81 PSK the card's admin agent uses: the factory one until deleted, else the first set by PUT KEY.
    public var currentSCP81PSK: SecureBytes? {
        if !deletedFactoryKeySets.contains(.scp81) { return identity.scp81PSK }
        return isdrKeySets.first { $0.kind == .scp81 }.map { SecureBytes($0.keys) }
    }

    /// The counters of the SCP80 key sets, by key version.
    var scp80Counters: [UInt8: SCP80Counter] {
        var counters: [UInt8: SCP80Counter] = [EUICC.factorySCP80Version: scp80Counter]
        for set in isdrKeySets where set.kind == .scp80 { counters[set.version] = set.counter }
        return counters
    }

    mutating func storeSCP80Counters(_ receiver: SCP80Receiver) {
        scp80Counter = receiver.counter(keyVersion: EUICC.factorySCP80Version)
        for index in isdrKeySets.indices where isdrKeySets[index].kind == .scp80 {
            isdrKeySets[index].counter = receiver.counter(keyVersion: isdrKeySets[index].version)
        }
    }

    /// DGIs 3A01/3A02 to the ISD-R itself: ES5.EstablishISDRKeySet (the new SM-SR's key set).
    mutating func isdrKeyEstablishmentStep(_ tag: UInt16, _ data: [UInt8]) -> ResponseAPDU {
        do {
            if tag == 0x3A01 {
                var session = KeyEstablishmentCard(ecasdKey: try identity.ecasdAgreementKey(), ciPublicKey: ciPublicKey, expectedRole: .smsr)
                let answer = try session.processCertificate(data)
                keyEstablishment = session
                return ResponseAPDU(data: answer, sw: .success)
            }
            guard var session = keyEstablishment, session.expectedRole == .smsr else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
            keyEstablishment = nil
            let (answer, keys) = try session.processKeyAgreement(data)
            let version = keys.keyVersion
            // An SCP80 key version, not the factory set while it is there, and not a set in use: a set
            // with this version is replaced only when no packet was ever accepted under it (a failed
            // earlier attempt's orphan, whose keys died with that attempt).
            guard (1...15).contains(version), !(version == EUICC.factorySCP80Version && !deletedFactoryKeySets.contains(.scp80)),
                !isdrKeySets.contains(where: { $0.version == version && ($0.kind != .scp80 || $0.counter != .zero) }),
                keys.enc.count == 16
            else { return ResponseAPDU(sw: .wrongData) }
            isdrKeySets.removeAll { $0.version == version }
            isdrKeySets.append(ISDRKeySet(kind: .scp80, version: version, keys: keys.enc.bytes + keys.mac.bytes + keys.dek.bytes))
            return ResponseAPDU(data: answer, sw: .success)
        } catch {
            keyEstablishment = nil
            return Self.refusal(error)
        }
    }

    /// PUT KEY: an SCP81 PSK set (KVN 40–4F), the key encrypted with the newest established set's K-DEK.
    mutating func putKey(_ data: [UInt8]) -> ResponseAPDU {
        // KVN ‖ 88 ‖ L ‖ (key length ‖ encrypted key) ‖ 03 ‖ KCV
        guard data.count >= 4, data[1] == 0x88 else { return ResponseAPDU(sw: .wrongData) }
        let version = data[0]
        let length = Int(data[2])
        guard (0x40...0x4F).contains(version), length >= 17, data.count == 3 + length + 4, data[3 + length] == 0x03 else {
            return ResponseAPDU(sw: .wrongData)
        }
        let keyLength = Int(data[3])
        let encrypted = Array(data[4..<(3 + length)])
        let kcv = Array(data[(4 + length)...])
        guard let dek = isdrKeySets.last(where: { $0.kind == .scp80 })?.dek else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
        guard [16, 24, 32].contains(keyLength), encrypted.count >= keyLength, encrypted.count % 16 == 0,
            let plain = try? BlockCipher.cbc(.aes, encrypt: false, key: dek, iv: [UInt8](repeating: 0, count: 16), data: encrypted)
        else { return ResponseAPDU(sw: .wrongData) }
        let key = Array(plain.prefix(keyLength))
        guard let check = try? KeyCheckValue.aes(SecureBytes(key)), ConstantTime.equal(Array(check.prefix(3)), kcv) else {
            return ResponseAPDU(sw: .securityStatusNotSatisfied)
        }
        guard !(version == EUICC.factorySCP81Version && !deletedFactoryKeySets.contains(.scp81)) else { return ResponseAPDU(sw: .wrongData) }
        isdrKeySets.removeAll { $0.version == version }
        isdrKeySets.append(ISDRKeySet(kind: .scp81, version: version, keys: key))
        return ResponseAPDU(data: [0x00], sw: .success)
    }

    /// DELETE { D2 01 KVN … }: ES5.FinaliseISDRhandover — the named key sets go; never the last SCP80 set.
    mutating func deleteKeySets(_ data: [UInt8]) -> ResponseAPDU {
        guard let items = try? TLV.parseAll(data), !items.isEmpty, items.allSatisfy({ $0.tag == 0xD2 && $0.value.count == 1 }) else {
            return ResponseAPDU(sw: .wrongData)
        }
        let versions = Set(items.map { $0.value[0] })
        guard versions.allSatisfy(isdrKeyVersions.contains) else { return ResponseAPDU(sw: .referencedDataNotFound) }
        var after = self
        for version in versions {
            if version == EUICC.factorySCP80Version, !after.deletedFactoryKeySets.contains(.scp80) {
                after.deletedFactoryKeySets.insert(.scp80)
            } else if version == EUICC.factorySCP81Version, !after.deletedFactoryKeySets.contains(.scp81) {
                after.deletedFactoryKeySets.insert(.scp81)
            } else {
                after.isdrKeySets.removeAll { $0.version == version }
            }
        }
        guard !after.activeSCP80KeySets.isEmpty else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
        deletedFactoryKeySets = after.deletedFactoryKeySets
        isdrKeySets = after.isdrKeySets
        return ResponseAPDU(data: [0x00], sw: .success)
    }
}
