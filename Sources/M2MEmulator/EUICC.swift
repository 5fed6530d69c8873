// One emulated SGP.02 eUICC: ISD-R, ECASD and its ISD-Ps, answering APDUs and SCP03t TLVs as the
// real cards in spec/sgp02-oncard.md §1–2 do, with their status words. The card meets the platform
// only through bytes; it never sees the SM-SR's or SM-DP's state.
//
// Memory: an idle card keeps its index (every secret is derived from the fleet seed, see
// CardIdentity), counters, and per ISD-P a few fields, its SCP03 key set and a profile digest —
// never whole file systems. Sessions (key establishment, SCP03t download) exist only while open.

public import M2MCore
public import M2MCrypto
public import M2MWire

/// GP life-cycle states of an ISD-P (tag 9F70).
public enum ISDPLifeCycle: UInt8, Sendable, Hashable, Codable {
    case selectable = 0x07
    case personalized = 0x0F
    case disabled = 0x1F
    case enabled = 0x3F
}

/// POL1, from the profile header's `pol` octet (our bit coding, docs/emulator.md: the SGP.02 coding
/// was not available): 01 disabling not allowed, 02 deletion not allowed, 04 delete when disabled.
public struct POL1: OptionSet, Sendable, Hashable, Codable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let disablingNotAllowed = POL1(rawValue: 0x01)
    public static let deletionNotAllowed = POL1(rawValue: 0x02)
    public static let deleteWhenDisabled = POL1(rawValue: 0x04)
}

/// An ISD-P and its Profile, as the card knows it.
public struct ISDP: Sendable, Hashable, Codable {
    public var aid: AID
    public var lifeCycle: ISDPLifeCycle
    public var iccid: ICCID?
    public var profileType: String?
    public var pol1: POL1
    public var fallBack: Bool
    public var emergency: Bool
    /// Memory reserved at creation (bytes).
    public var allocatedMemory: Int
    /// SHA-256 of the installed profile package.
    public var profileDigest: [UInt8]?
    /// Connectivity parameters last set over SCP03 (ES8.UpdateConnectivityParameters, DGI 3A07 value).
    public var connectivityParameters: [UInt8]?
    /// The SCP03 key set (after key establishment) as key bytes K-ENC ‖ K-MAC ‖ K-DEK, and its sequence counter.
    var scp03: [UInt8]?
    var scp03KeyVersion: UInt8 = 0x30
    /// The 3-byte SCP03 sequence counter (incremented by every INITIALIZE UPDATE, SCP03 or SCP03t).
    public internal(set) var sequenceCounter: UInt32 = 0

    public init(
        aid: AID, lifeCycle: ISDPLifeCycle, iccid: ICCID? = nil, profileType: String? = nil, pol1: POL1 = [], fallBack: Bool = false,
        emergency: Bool = false, allocatedMemory: Int, profileDigest: [UInt8]? = nil, connectivityParameters: [UInt8]? = nil
    ) {
        self.aid = aid
        self.lifeCycle = lifeCycle
        self.iccid = iccid
        self.profileType = profileType
        self.pol1 = pol1
        self.fallBack = fallBack
        self.emergency = emergency
        self.allocatedMemory = allocatedMemory
        self.profileDigest = profileDigest
        self.connectivityParameters = connectivityParameters
    }

    /// The SCP03 key set, when key establishment (or manufacturing) gave the ISD-P one.
    public var keys: SCP03Keys? {
        guard let scp03, scp03.count % 3 == 0, [16, 24, 32].contains(scp03.count / 3) else { return nil }
        let n = scp03.count / 3
        return SCP03Keys(keyVersion: scp03KeyVersion, enc: SecureBytes(scp03[0..<n]), mac: SecureBytes(scp03[n..<(2 * n)]),
                         dek: SecureBytes(scp03[(2 * n)..<(3 * n)]))
    }

    /// Stores a key set (K-ENC, K-MAC, K-DEK of one length) and restarts the sequence counter.
    mutating func setKeys(_ keys: SCP03Keys) {
        scp03 = keys.enc.bytes + keys.mac.bytes + keys.dek.bytes
        scp03KeyVersion = keys.keyVersion
        sequenceCounter = 0
    }

    /// The TAR of the ISD-P: AID bytes 13–15 (SGP.02, ETSI TS 101 220).
    public var tar: SCP80TAR? {
        guard aid.bytes.count >= 15 else { return nil }
        return try? SCP80TAR(bytes: aid.bytes[12..<15])
    }
}

/// Default notification types (E1/4D), spec §1.4.
public enum NotificationKind: UInt8, Sendable, Hashable, Codable {
    case firstNetworkAttachment = 0x01
    case profileChangeSucceeded = 0x02
    case profileChangeFailedAndRolledBack = 0x03
    case profileChangeAfterFallBack = 0x05
}

/// A default notification the card sends (E1 35 { 4C EID, 4D type, 4E seq, 4F AID, 14 IMEI }).
public struct DefaultNotification: Sendable, Hashable, Codable {
    public var kind: NotificationKind
    public var sequenceNumber: UInt16
    public var enabledAID: AID

    public func encoded(eid: EID, imei: [UInt8]) -> [UInt8] {
        TLV(0xE1, children: [
            TLV(0x4C, eid.bytes), TLV(0x4D, [kind.rawValue]), TLV(0x4E, [UInt8(sequenceNumber >> 8), UInt8(sequenceNumber & 0xFF)]),
            TLV(0x4F, enabledAID.bytes), TLV(0x14, imei),
        ]).encoded
    }
}

/// One emulated eUICC.
public struct EUICC: Sendable {
    public static let isdRAID = try! AID(text: "A0000005591010FFFFFFFF8900000100")
    public static let ecasdAID = try! AID(text: "A0000005591010FFFFFFFF8900000200")
    public static let elfAID = try! AID(text: "A0000005591010FFFFFFFF8900000D00")
    public static let moduleAID = try! AID(text: "A0000005591010FFFFFFFF8900000E00")

    public let identity: CardIdentity
    /// PK.CI.ECDSA (trust anchor in the ECASD), shared by a fleet.
    public let ciPublicKey: ECPublicKey
    public internal(set) var isdps: [ISDP] = []
    public var totalMemory: Int
    /// Notifications sent and not yet confirmed (3A08), oldest first.
    public internal(set) var pendingNotifications: [DefaultNotification] = []
    var nextSequence: UInt16 = 0
    /// Test hook: enabling a Profile with one of these ICCIDs fails to attach, so the card rolls back.
    public var unreachableICCIDs: Set<ICCID> = []
    public static let defaultIMEI: [UInt8] = [0x35, 0x20, 0x99, 0x00, 0x17, 0x61, 0x48, 0x00]
    public var imei: [UInt8] = EUICC.defaultIMEI
    /// The ISD-R's SCP80 counter (key version 1): the last counter it accepted (SCP80Endpoint.swift).
    public internal(set) var scp80Counter: SCP80Counter = .zero
    /// The counter of the last MO packet the card sent with a counter (SCP80Endpoint.swift).
    public internal(set) var moCounter: SCP80Counter = .zero
    /// SM-SR addressing parameters set by ES5.UpdateSMSRAddressingParameters (DGI 3A07 value).
    public internal(set) var smsrAddressingParameters: [UInt8]?
    /// r‖s of CERT.ECASD.ECKA once the EUM issued it (Fleet.ecasdCertificate); the rest of the
    /// certificate is derived from the identity, so only the signature is kept.
    public internal(set) var ecasdCertificateSignature: [UInt8]?
    /// ISD-R key sets learnt over the air at an SM-SR change (ISDRKeys.swift).
    public internal(set) var isdrKeySets: [ISDRKeySet] = []
    /// Factory ISD-R key sets deleted by ES5.FinaliseISDRhandover.
    public internal(set) var deletedFactoryKeySets: FactoryKeySets = []

    // Transient sessions (never persisted: a card reset ends them).
    var personalizationTarget: AID?
    var keyEstablishment: KeyEstablishmentCard?
    var downloads: [AID: DownloadSession] = [:]
    /// SCP03 (APDU mode) sessions with ISD-Ps, opened through their TARs (SCP80Endpoint.swift).
    var apduSessions: [AID: SCP03Card] = [:]

    public init(identity: CardIdentity, ciPublicKey: ECPublicKey, totalMemory: Int = 512 * 1024) {
        self.identity = identity
        self.ciPublicKey = ciPublicKey
        self.totalMemory = totalMemory
    }

    public var eid: EID { identity.eid }

    /// True while a multi-command session is open (INSTALL [for personalization] awaiting key
    /// establishment, a key establishment between its two STORE DATA, an SCP03t download or an
    /// SCP03 session). A fleet keeps such a card materialised; idle cards are stored compactly.
    public var hasOpenSession: Bool {
        personalizationTarget != nil || keyEstablishment != nil || !downloads.isEmpty || !apduSessions.isEmpty
    }

    /// A card reset: every open session ends; the persistent state stays.
    public mutating func endSessions() {
        personalizationTarget = nil
        keyEstablishment = nil
        downloads = [:]
        apduSessions = [:]
    }

    /// Manufacturing (and fleet set-up for measurements): installs an ISD-P with a Profile's metadata
    /// directly, as an EUM does before the card leaves the factory — no key establishment, no
    /// download. `keys` gives the ISD-P an SCP03 key set (PERSONALIZED when `isdp.lifeCycle` is
    /// PERSONALIZED, or kept for later ES8 sessions). Refused (false) when the AID exists, an enabled
    /// Profile would become the second one, or the memory does not suffice.
    @discardableResult
    public mutating func manufacture(_ isdp: ISDP, keys: SCP03Keys? = nil) -> Bool {
        guard isdps.count < 255, self.isdp(isdp.aid) == nil, isdp.aid != EUICC.isdRAID, isdp.aid != EUICC.ecasdAID,
            isdp.allocatedMemory >= 0, isdp.allocatedMemory <= freeMemory,
            !(isdp.lifeCycle == .enabled && enabledISDP != nil), !(isdp.fallBack && isdps.contains(where: \.fallBack))
        else { return false }
        var isdp = isdp
        if let keys { isdp.setKeys(keys) }
        isdps.append(isdp)
        return true
    }
    public var freeMemory: Int { totalMemory - isdps.reduce(0) { $0 + $1.allocatedMemory } }
    public var enabledISDP: ISDP? { isdps.first { $0.lifeCycle == .enabled } }
    public func isdp(_ aid: AID) -> ISDP? { isdps.first { $0.aid == aid } }

    // MARK: - ISD-R APDUs (ES5)

    /// Processes one command APDU addressed to the ISD-R. Never throws: every error is a status word,
    /// and a refused command leaves the card unchanged.
    public mutating func process(_ command: CommandAPDU) -> ResponseAPDU {
        guard command.cla & 0xF0 == 0x80 else { return ResponseAPDU(sw: .claNotSupported) }
        switch (command.ins, command.p1, command.p2) {
        case (0xE6, 0x0C, 0x00): return installAndMakeSelectable(command.data)
        case (0xE6, 0x20, 0x00): return installForPersonalization(command.data)
        case (0xE2, _, _): return storeData(command)
        case (0xE4, 0x00, 0x00) where command.data.first == 0xD2: return deleteKeySets(command.data)
        case (0xE4, 0x00, 0x40), (0xE4, 0x00, 0x00): return delete(command.data)
        case (0xD8, 0x00, 0x01): return putKey(command.data)
        case (0xF2, 0x40, 0x02): return getStatus(command.data)
        case (0xCA, 0x00, 0x5A): return ResponseAPDU(data: TLV(0x5A, eid.bytes).encoded, sw: .success)
        case (0xCA, 0xFF, 0x21): return extendedCardResources()
        case (0xE6, _, _), (0xE4, _, _), (0xF2, _, _), (0xCA, _, _): return ResponseAPDU(sw: .wrongP1P2)
        default: return ResponseAPDU(sw: .insNotSupported)
        }
    }

    /// INSTALL [for install and make selectable]: ES5.CreateISDP.
    mutating func installAndMakeSelectable(_ data: [UInt8]) -> ResponseAPDU {
        var reader = LVReader(data)
        guard let elf = reader.next(), let module = reader.next(), let aidBytes = reader.next(), let privileges = reader.next(),
            let parameters = reader.next(), reader.next() != nil, reader.isAtEnd
        else { return ResponseAPDU(sw: .wrongData) }
        guard elf == EUICC.elfAID.bytes, module == EUICC.moduleAID.bytes else { return ResponseAPDU(sw: .referencedDataNotFound) }
        guard let aid = try? AID(bytes: aidBytes), aid != EUICC.isdRAID, aid != EUICC.ecasdAID, privileges.count == 3,
            privileges[0] & 0x80 != 0
        else { return ResponseAPDU(sw: .wrongData) }
        guard isdp(aid) == nil else { return ResponseAPDU(sw: .wrongData) }
        guard isdps.count < 255 else { return ResponseAPDU(sw: .notEnoughMemory) }  // the record counts ISD-Ps in one byte
        // Install parameters: C9 (SCP parameters) and an optional EF { 83 <memory quota> } (njiwa).
        var quota = 0
        if let items = try? TLV.parseAll(parameters) {
            if let ef = items.first(where: { $0.tag == 0xEF }), let q = try? ef.child(0x83) {
                quota = q.value.reduce(0) { $0 << 8 | Int($1) }
            }
        } else {
            return ResponseAPDU(sw: .wrongData)
        }
        guard quota <= freeMemory, freeMemory > 0 else { return ResponseAPDU(sw: .notEnoughMemory) }
        isdps.append(ISDP(aid: aid, lifeCycle: .selectable, pol1: [], fallBack: false, emergency: false, allocatedMemory: quota))
        return ResponseAPDU(data: [0x00], sw: .success)
    }

    /// INSTALL [for personalization]: routes the following STORE DATA to an ISD-P (key establishment).
    mutating func installForPersonalization(_ data: [UInt8]) -> ResponseAPDU {
        var reader = LVReader(data)
        guard reader.next() != nil, reader.next() != nil, let aidBytes = reader.next(), let aid = try? AID(bytes: aidBytes) else {
            return ResponseAPDU(sw: .wrongData)
        }
        guard let target = isdp(aid), target.lifeCycle == .selectable || target.lifeCycle == .personalized else {
            return ResponseAPDU(sw: isdp(aid) == nil ? .referencedDataNotFound : .conditionsNotSatisfied)
        }
        personalizationTarget = aid
        keyEstablishment = nil
        return ResponseAPDU(data: [0x00], sw: .success)
    }

    mutating func storeData(_ command: CommandAPDU) -> ResponseAPDU {
        var offset = 0
        guard let dgi = try? DGI.parse(command.data, offset: &offset) else { return ResponseAPDU(sw: .wrongData) }
        switch dgi.tag {
        case 0x3A01, 0x3A02: return keyEstablishmentStep(dgi.tag, command.data)
        case 0x3A03: return enable(dgi.value)
        case 0x3A04: return disable(dgi.value)
        case 0x3A05: return setFallBack(dgi.value)
        case 0x3A06: return setEmergency(dgi.value)
        case 0x3A07:
            guard offset == command.data.count else { return ResponseAPDU(sw: .wrongData) }
            smsrAddressingParameters = dgi.value
            return ResponseAPDU(sw: .success)
        case 0x3A08: return confirmNotification(dgi.value)
        default: return ResponseAPDU(sw: .referencedDataNotFound)
        }
    }

    /// DGIs 3A01 (certificate) and 3A02 (key agreement) for the ISD-P named by INSTALL [for personalization].
    mutating func keyEstablishmentStep(_ tag: UInt16, _ data: [UInt8]) -> ResponseAPDU {
        // Without INSTALL [for personalization] the DGIs are for the ISD-R: ES5.EstablishISDRKeySet.
        guard let target = personalizationTarget else { return isdrKeyEstablishmentStep(tag, data) }
        guard let index = isdps.firstIndex(where: { $0.aid == target }) else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
        do {
            if tag == 0x3A01 {
                var session = KeyEstablishmentCard(ecasdKey: try identity.ecasdAgreementKey(), ciPublicKey: ciPublicKey, expectedRole: .smdp)
                let answer = try session.processCertificate(data)
                keyEstablishment = session
                return ResponseAPDU(data: answer, sw: .success)
            }
            guard var session = keyEstablishment, session.expectedRole == .smdp else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
            keyEstablishment = nil
            let (answer, keys) = try session.processKeyAgreement(data)
            isdps[index].setKeys(keys)
            apduSessions[target] = nil
            isdps[index].lifeCycle = .personalized
            personalizationTarget = nil
            return ResponseAPDU(data: answer, sw: .success)
        } catch {
            // A failure ends the session: the next 3A01 without INSTALL [for personalization] is the ISD-R's.
            keyEstablishment = nil
            personalizationTarget = nil
            return Self.refusal(error)
        }
    }

    /// The status word of a failed key establishment step (the session ends with it).
    static func refusal(_ error: CryptoError) -> ResponseAPDU {
        switch error.code {
        case .invalidSignature, .invalidCertificate, .invalidMAC: return ResponseAPDU(sw: .securityStatusNotSatisfied)
        case .wrongState: return ResponseAPDU(sw: .conditionsNotSatisfied)
        default: return ResponseAPDU(sw: .wrongData)
        }
    }

    /// 3A03 { 4F AID }: ES5.EnableProfile.
    mutating func enable(_ value: [UInt8]) -> ResponseAPDU {
        guard let aid = Self.aid(in: value) else { return ResponseAPDU(sw: .wrongData) }
        guard let index = isdps.firstIndex(where: { $0.aid == aid }) else { return ResponseAPDU(sw: .referencedDataNotFound) }
        guard isdps[index].lifeCycle == .disabled else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
        let previous = isdps.firstIndex { $0.lifeCycle == .enabled }
        if let previous, isdps[previous].pol1.contains(.disablingNotAllowed) { return ResponseAPDU(sw: .pol1Forbids) }
        if let iccid = isdps[index].iccid, unreachableICCIDs.contains(iccid) {
            // The new Profile cannot attach: roll back to the previous one and say so.
            if let previous { notify(.profileChangeFailedAndRolledBack, enabled: isdps[previous].aid) }
            return ResponseAPDU(sw: .success)
        }
        if let previous { isdps[previous].lifeCycle = .disabled }
        isdps[index].lifeCycle = .enabled
        notify(.profileChangeSucceeded, enabled: aid)
        if let previous, isdps[previous].pol1.contains(.deleteWhenDisabled), !isdps[previous].fallBack {
            removeISDP(at: previous)
        }
        return ResponseAPDU(sw: .success)
    }

    /// 3A04 { 4F AID }: ES5.DisableProfile — the Fall-Back Profile is enabled instead.
    mutating func disable(_ value: [UInt8]) -> ResponseAPDU {
        guard let aid = Self.aid(in: value) else { return ResponseAPDU(sw: .wrongData) }
        guard let index = isdps.firstIndex(where: { $0.aid == aid }) else { return ResponseAPDU(sw: .referencedDataNotFound) }
        guard isdps[index].lifeCycle == .enabled, !isdps[index].fallBack else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
        guard !isdps[index].pol1.contains(.disablingNotAllowed) else { return ResponseAPDU(sw: .pol1Forbids) }
        guard let fallBack = isdps.firstIndex(where: { $0.fallBack && $0.lifeCycle == .disabled }) else {
            return ResponseAPDU(sw: .conditionsNotSatisfied)
        }
        isdps[index].lifeCycle = .disabled
        isdps[fallBack].lifeCycle = .enabled
        notify(.profileChangeSucceeded, enabled: isdps[fallBack].aid)
        if isdps[index].pol1.contains(.deleteWhenDisabled) { removeISDP(at: index) }
        return ResponseAPDU(sw: .success)
    }

    /// 3A05 { 4F AID }: ES5.SetFallBackAttribute (moves the attribute).
    mutating func setFallBack(_ value: [UInt8]) -> ResponseAPDU {
        guard let aid = Self.aid(in: value) else { return ResponseAPDU(sw: .wrongData) }
        guard let index = isdps.firstIndex(where: { $0.aid == aid }) else { return ResponseAPDU(sw: .referencedDataNotFound) }
        guard isdps[index].lifeCycle == .disabled || isdps[index].lifeCycle == .enabled, !isdps[index].emergency else {
            return ResponseAPDU(sw: .conditionsNotSatisfied)
        }
        for k in isdps.indices { isdps[k].fallBack = (k == index) }
        return ResponseAPDU(sw: .success)
    }

    /// 3A06 { 4F AID }: SetEmergencyProfileAttribute (moves the attribute). The coding is ours: the
    /// SGP.02 one was not found (spec §2.2); it mirrors 3A05 (docs/emulator.md). The Emergency
    /// Profile must not be the Fall-Back Profile and must be installed (DISABLED or ENABLED).
    mutating func setEmergency(_ value: [UInt8]) -> ResponseAPDU {
        guard let aid = Self.aid(in: value) else { return ResponseAPDU(sw: .wrongData) }
        guard let index = isdps.firstIndex(where: { $0.aid == aid }) else { return ResponseAPDU(sw: .referencedDataNotFound) }
        guard isdps[index].lifeCycle == .disabled || isdps[index].lifeCycle == .enabled, !isdps[index].fallBack else {
            return ResponseAPDU(sw: .conditionsNotSatisfied)
        }
        for k in isdps.indices { isdps[k].emergency = (k == index) }
        return ResponseAPDU(sw: .success)
    }

    /// The connectivity-loss path: the ISD-R disables the current Profile (ignoring its POL1) and
    /// enables the Fall-Back Profile, then notifies.
    public mutating func loseConnectivity() -> Bool {
        guard let current = isdps.firstIndex(where: { $0.lifeCycle == .enabled }), !isdps[current].fallBack,
            let fallBack = isdps.firstIndex(where: { $0.fallBack })
        else { return false }
        isdps[current].lifeCycle = .disabled
        isdps[fallBack].lifeCycle = .enabled
        notify(.profileChangeAfterFallBack, enabled: isdps[fallBack].aid)
        return true
    }

    /// DELETE { 4F AID }: ES5.DeleteProfile.
    mutating func delete(_ data: [UInt8]) -> ResponseAPDU {
        guard let aid = Self.aid(in: data) else { return ResponseAPDU(sw: .wrongData) }
        guard let index = isdps.firstIndex(where: { $0.aid == aid }) else { return ResponseAPDU(sw: .referencedDataNotFound) }
        guard isdps[index].lifeCycle != .enabled, !isdps[index].fallBack else { return ResponseAPDU(sw: .conditionsNotSatisfied) }
        guard !isdps[index].pol1.contains(.deletionNotAllowed) else { return ResponseAPDU(sw: .pol1Forbids) }
        removeISDP(at: index)
        return ResponseAPDU(data: [0x00], sw: .success)
    }

    /// Removes an ISD-P and every session with it.
    mutating func removeISDP(at index: Int) {
        let aid = isdps[index].aid
        isdps.remove(at: index)
        downloads[aid] = nil
        apduSessions[aid] = nil
        if personalizationTarget == aid {
            personalizationTarget = nil
            keyEstablishment = nil
        }
    }

    /// GET STATUS { 4F AID | 4F 00, 5C 03 4F 9F70 }: E3 { 4F AID, 9F70 LCS } per ISD-P, or 6A88.
    func getStatus(_ data: [UInt8]) -> ResponseAPDU {
        guard let items = try? TLV.parseAll(data), let filter = items.first(where: { $0.tag == 0x4F }) else {
            return ResponseAPDU(sw: .wrongData)
        }
        let selected = filter.value.isEmpty ? isdps : isdps.filter { $0.aid.bytes == filter.value }
        guard !selected.isEmpty else { return ResponseAPDU(sw: .referencedDataNotFound) }
        let body = selected.flatMap { TLV(0xE3, children: [TLV(0x4F, $0.aid.bytes), TLV(0x9F70, [$0.lifeCycle.rawValue])]).encoded }
        return ResponseAPDU(data: body, sw: .success)
    }

    /// GET DATA FF21: extended card resources (81 installed applications, 82 free NVM, 83 free RAM).
    func extendedCardResources() -> ResponseAPDU {
        let free = UInt32(max(0, freeMemory))
        let body = TLV(0xFF21, children: [
            TLV(0x81, [UInt8(isdps.count)]),
            TLV(0x82, [UInt8(free >> 24), UInt8(free >> 16 & 0xFF), UInt8(free >> 8 & 0xFF), UInt8(free & 0xFF)]),
            TLV(0x83, [0x00, 0x00, 0x10, 0x00]),
        ]).encoded
        return ResponseAPDU(data: body, sw: .success)
    }

    /// 3A08 { 4E seq }: the SM-SR confirms a notification; answers 80 { 4F deleted… } (empty here).
    mutating func confirmNotification(_ value: [UInt8]) -> ResponseAPDU {
        guard let seq = try? TLV.parseOne(value), seq.tag == 0x4E, seq.value.count == 2 else { return ResponseAPDU(sw: .wrongData) }
        let number = UInt16(seq.value[0]) << 8 | UInt16(seq.value[1])
        guard let index = pendingNotifications.firstIndex(where: { $0.sequenceNumber == number }) else {
            return ResponseAPDU(sw: .referencedDataNotFound)
        }
        pendingNotifications.remove(at: index)
        return ResponseAPDU(data: TLV(0x80, []).encoded, sw: .success)
    }

    /// Unconfirmed notifications the card keeps; past this the oldest is dropped.
    public static let maximumPendingNotifications = 256

    mutating func notify(_ kind: NotificationKind, enabled aid: AID) {
        if pendingNotifications.count >= EUICC.maximumPendingNotifications { pendingNotifications.removeFirst() }
        pendingNotifications.append(DefaultNotification(kind: kind, sequenceNumber: nextSequence, enabledAID: aid))
        nextSequence &+= 1
    }

    /// The encoded default notifications awaiting confirmation.
    public func notificationPayloads() -> [[UInt8]] { pendingNotifications.map { $0.encoded(eid: eid, imei: imei) } }

    static func aid(in value: [UInt8]) -> AID? {
        guard let tlv = try? TLV.parseOne(value), tlv.tag == 0x4F else { return nil }
        return try? AID(bytes: tlv.value)
    }
}

/// Reads a sequence of one-byte-length LV fields (INSTALL command data).
struct LVReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var isAtEnd: Bool { offset == bytes.count }
    mutating func next() -> [UInt8]? {
        guard offset < bytes.count else { return nil }
        let length = Int(bytes[offset])
        guard offset + 1 + length <= bytes.count else { return nil }
        defer { offset += 1 + length }
        return Array(bytes[(offset + 1)..<(offset + 1 + length)])
    }
}
