// ES5 from the SM-SR to one eUICC (spec/sgp02-oncard.md §2–3): commands to the ISD-R in SCP80
// secured packets with the card's ISD-R key set (opened from its sealed form for the exchange
// only) and the counter kept in the store — reserved and committed before each packet is sent, so
// a crash never reuses one — then the PoR opened and its response script read. MO packets (default
// notifications) are opened with the same key set and parsed.

import M2MCore
import M2MCrypto
import M2MStorage
import M2MTransport
import M2MWire
import Synchronization

/// A default notification from the card: `E1 { 4C EID, 4D type, 4E sequence, 4F AID, 14 IMEI }`.
struct CardNotification: Hashable {
    enum Kind: UInt8 {
        case profileChangeSucceeded = 0x02
        case profileChangeFailedRolledBack = 0x03
        case profileChangeAfterFallBack = 0x05
    }

    let kind: Kind?
    let rawType: UInt8
    let sequence: Int
    let aid: AID?
    /// The EID the card put in (4C), as BCD bytes.
    let eid: [UInt8]?

    init?(payload: [UInt8]) {
        guard let top = try? TLV.parseOne(payload), top.tag == 0xE1, let items = try? top.children() else { return nil }
        guard let type = items.first(where: { $0.tag == 0x4D })?.value.first,
            let sequenceBytes = items.first(where: { $0.tag == 0x4E })?.value, (1...2).contains(sequenceBytes.count)
        else { return nil }
        rawType = type
        kind = Kind(rawValue: type)
        sequence = sequenceBytes.reduce(0) { $0 << 8 | Int($1) }
        aid = items.first(where: { $0.tag == 0x4F }).flatMap { try? AID(bytes: $0.value) }
        eid = items.first(where: { $0.tag == 0x4C })?.value
    }
}

/// A failure to reach the card or to get an authentic answer.
struct ES5Failure: Error {
    let status: FunctionExecutionStatus
    /// The packet may have reached the card (no PoR, transport error, a PoR that does not
    /// authenticate): whether the command ran is not known.
    var uncertain = false
}

struct CardSession {
    let smsr: SMSR
    let eid: EID
    let keys: SCP80KeySet

    init(smsr: SMSR, eid: EID) throws {
        self.smsr = smsr
        self.eid = eid
        let sealed = try smsr.store.read { try $0.isdrKeys(eid) }
        // The SCP80 key set this SM-SR holds (version 1 from registration, another one after an SM-SR
        // change made it: docs/smsr-change.md): KIc index 1, KID index 2.
        let versions = Set(sealed.filter { (1...15).contains($0.keysetVersion) }.map(\.keysetVersion)).sorted(by: >)
        guard let version = versions.first(where: { v in sealed.contains { $0.keysetVersion == v && $0.keyIndex == 1 } && sealed.contains { $0.keysetVersion == v && $0.keyIndex == 2 } }),
            let kicSealed = sealed.first(where: { $0.keysetVersion == version && $0.keyIndex == 1 }),
            let kidSealed = sealed.first(where: { $0.keysetVersion == version && $0.keyIndex == 2 })
        else { throw ES5Failure(status: .failed(.isdr, .unknown, identifier: eid.text, message: "no SCP80 key set (KIc 1, KID 2) stored")) }
        keys = try SCP80KeySet(
            keyVersion: UInt8(version), algorithm: .aes,
            kic: try smsr.sealer.open(kicSealed.sealed, context: KeySealer.context(eid: eid, keysetVersion: version, keyIndex: 1)),
            kid: try smsr.sealer.open(kidSealed.sealed, context: KeySealer.context(eid: eid, keysetVersion: version, keyIndex: 2)))
    }

    /// Reserves the next SCP80 counter and returns the last one. Counters are reserved in the store
    /// in blocks (`SMSR.counterBlock` at a time, committed before any packet of the block leaves) and
    /// handed out from memory: a restart skips what was left of a block — counters only need to
    /// increase — and a packet costs a read instead of a write transaction.
    func reserveCounter() throws(ES5Failure) -> SCP80Counter {
        let eid = self.eid
        // The block is still this process's when the store's reservation is where it left it (another
        // SM-SR process on the same database may have reserved since: then a new block).
        let stored = try? smsr.store.read { try $0.scp80Counter(eid) }
        var last = smsr.counterBlocks.withLock { blocks -> UInt64? in
            guard var block = blocks[eid], block.next < block.limit, stored == block.limit else { return nil }
            defer { block.next += 1; blocks[eid] = block }
            return block.next
        }
        if last == nil {
            do {
                let reserved = try smsr.store.write { tx throws -> UInt64 in
                    let current = try tx.scp80Counter(eid) ?? 0
                    try tx.setSCP80Counter(eid, current + SMSR.counterBlock)  // reserved before any packet of the block leaves
                    return current
                }
                smsr.counterBlocks.withLock { blocks in
                    // A block reserved later by another thread may be there already: keep the higher one.
                    if (blocks[eid]?.limit ?? 0) < reserved + SMSR.counterBlock {
                        blocks[eid] = (next: reserved + 1, limit: reserved + SMSR.counterBlock)
                    }
                }
                last = reserved
            } catch {
                throw ES5Failure(status: .failed(.functionProvider, .executionError, message: "SCP80 counter: \(error)"))
            }
        }
        guard let last, let counter = SCP80Counter(exactly: last) else {
            throw ES5Failure(status: .failed(.isdr, .maximumAttemptsExceeded, identifier: eid.text, message: "the SCP80 counter is exhausted"))
        }
        return counter
    }

    /// An SCP81 push: the administration session triggering parameters to the ISD-R (PoR checked).
    func push(_ trigger: AdminSessionTrigger) throws(ES5Failure) {
        let counter = try reserveCounter()
        do {
            var peer = try SCP80Peer(keys: keys, tar: .isdR, counter: counter)
            let command = try peer.securePush(trigger)
            guard let porBytes = try smsr.transport.deliverSMS(command.userData, to: eid) else {
                throw ES5Failure(status: .failed(.euicc, .inaccessible, identifier: eid.text, message: "no PoR to the push"))
            }
            let (por, _) = try peer.open(porBytes, for: command)
            guard por.status == .ok, por.isAuthenticated else {
                throw ES5Failure(status: .failed(.isdr, .verificationFailed, identifier: eid.text, message: "push PoR status \(por.status)"))
            }
        } catch let failure as ES5Failure {
            throw failure
        } catch {
            throw ES5Failure(status: .failed(.euicc, .inaccessible, identifier: eid.text, message: "push: \(error)"))
        }
    }

    /// The ISD-R's SCP81 PSK (key set 40, key 1), opened for one TLS handshake.
    func scp81PSK() throws -> SecureBytes? {
        let sealed = try smsr.store.read { try $0.isdrKeys(eid) }
        guard let psk = sealed.first(where: { (0x40...0x4F).contains($0.keysetVersion) && $0.keyIndex == 1 }) else { return nil }
        return try smsr.sealer.open(psk.sealed, context: KeySealer.context(eid: eid, keysetVersion: psk.keysetVersion, keyIndex: 1))
    }

    /// Sends `commands` to the ISD-R in one packet; the R-APDUs of the commands the card executed.
    func sendToISDR(_ commands: [CommandAPDU]) throws(ES5Failure) -> [ResponseAPDU] {
        let script = try sendScript(ExpandedCommandScript(commands: commands), tar: .isdR)
        if script.items.contains(where: { $0.tag == ExpandedResponseScript.badFormatTag }) {
            throw ES5Failure(status: .failed(.isdr, .invalid, identifier: eid.text, message: "the card refused the script as bad format"))
        }
        return script.responses
    }

    /// The most script bytes one SMS carries (140-byte TP-UD: UDH 3, header 10, CNTR 5, PCNTR 1,
    /// CC 8, ciphered in 16-byte blocks: 98 bytes of script).
    static let scriptBytesPerSMS = 98

    /// A script over SMS, segmented for the card's transport: the items (C-APDUs or SCP03t TLVs)
    /// packed in order into as few SCP80 packets as fit (one script each, to the TAR of the target),
    /// the response items gathered into one response script. Execution stops at the first packet
    /// whose answer reports a failure. An item too large for one SMS is refused (`8.1/3.2`).
    func runScriptOverSMS(_ script: [UInt8], target: ScriptTarget) throws(ES5Failure) -> [UInt8] {
        guard let command = try? ExpandedCommandScript(bytes: script) else {
            throw ES5Failure(status: .failed(.isdp, .invalid, identifier: eid.text, message: "not a command script"))
        }
        let tar: SCP80TAR
        switch target {
        case .isdR: tar = .isdR
        case .isdP(let aid):
            guard let defaultTAR = aid.defaultTAR, let t = try? SCP80TAR(bytes: defaultTAR.bytes) else {
                throw ES5Failure(status: .failed(.isdp, .invalid, identifier: aid.text, message: "the ISD-P AID has no TAR"))
            }
            tar = t
        }
        // Greedy packing.
        var packets: [[TLV]] = [[]]
        var size = 0
        for item in command.items {
            let length = item.encoded.count
            guard length + 4 <= Self.scriptBytesPerSMS else {
                throw ES5Failure(status: .failed(.euicc, .maximumSizeExceeded, identifier: eid.text,
                                                 message: "a \(length)-byte script item does not fit one SMS (SMS concatenation is not supported): use SCP81"))
            }
            if size + length + 4 > Self.scriptBytesPerSMS, !packets[packets.count - 1].isEmpty {
                packets.append([])
                size = 0
            }
            packets[packets.count - 1].append(item)
            size += length
        }
        var answers: [TLV] = []
        var executed = 0
        for items in packets where !items.isEmpty {
            let response = try sendScript(ExpandedCommandScript(items: items, coding: .definite), tar: tar)
            executed += response.executedCommands ?? 0
            let items = response.items.filter { $0.tag != ExpandedResponseScript.executedTag }
            answers += items
            let failed = response.responses.contains { !$0.sw.isSuccessOrWarning }
                || items.contains { [0x9F44, 0x9F45, 0x9F46].contains($0.tag.rawValue) || $0.tag == ExpandedResponseScript.badFormatTag }
            if failed { break }
        }
        let hasCounts = command.items.contains { $0.tag == ExpandedCommandScript.commandTag }
        let all = (hasCounts ? [TLV(ExpandedResponseScript.executedTag, [UInt8(min(executed, 255))])] : []) + answers
        guard let combined = try? ExpandedResponseScript(items: all, coding: command.coding) else {
            throw ES5Failure(status: .failed(.isdp, .executionError, identifier: eid.text, message: "the card's answers do not form a response script"))
        }
        return combined.encoded
    }

    /// One script in one SCP80 packet to `tar`; the response script from the PoR.
    func sendScript(_ script: ExpandedCommandScript, tar: SCP80TAR) throws(ES5Failure) -> ExpandedResponseScript {
        let counter = try reserveCounter()
        do {
            var peer = try SCP80Peer(keys: keys, tar: tar, counter: counter)
            let command = try peer.secure(script)
            let porBytes: [UInt8]?
            do {
                porBytes = try smsr.transport.deliverSMS(command.userData, to: eid)
            } catch {
                throw ES5Failure(status: .failed(.euicc, .inaccessible, identifier: eid.text, message: "\(error)"), uncertain: true)
            }
            guard let porBytes else {
                throw ES5Failure(status: .failed(.euicc, .inaccessible, identifier: eid.text, message: "no PoR"), uncertain: true)
            }
            let (por, response) = try peer.open(porBytes, for: command)
            guard por.status == .ok else {
                throw ES5Failure(status: .failed(.isdr, .verificationFailed, identifier: eid.text, message: "PoR status \(por.status)"))
            }
            guard por.isAuthenticated else {
                throw ES5Failure(status: .failed(.isdr, .verificationFailed, identifier: eid.text, message: "the PoR does not authenticate"), uncertain: true)
            }
            guard let response else { throw ES5Failure(status: .failed(.isdr, .executionError, identifier: eid.text, message: "no response script")) }
            return response
        } catch let failure as ES5Failure {
            throw failure
        } catch {
            throw ES5Failure(status: .failed(.isdr, .verificationFailed, identifier: eid.text, message: "SCP80: \(error)"), uncertain: true)
        }
    }

    /// One command to the ISD-R; its R-APDU.
    func send(_ command: CommandAPDU) throws(ES5Failure) -> ResponseAPDU {
        guard let response = try sendToISDR([command]).first else {
            throw ES5Failure(status: .failed(.isdr, .executionError, identifier: eid.text, message: "the card executed nothing"))
        }
        return response
    }

    /// The card's pending default notifications (MO packets), opened and parsed.
    func notifications() throws(ES5Failure) -> [CardNotification] {
        let packets: [[UInt8]]
        do {
            packets = try smsr.transport.moMessages(from: eid)
        } catch {
            throw ES5Failure(status: .failed(.euicc, .inaccessible, identifier: eid.text, message: "\(error)"))
        }
        var found: [CardNotification] = []
        for packet in packets {
            guard var receiver = try? SCP80Peer(keys: keys, tar: .isdR), let payload = try? receiver.openMO(packet),
                let notification = CardNotification(payload: payload), notification.eid == eid.bytes
            else { continue }  // not authentic, not a notification, or about another card: ignored
            found.append(notification)
        }
        return found
    }

    /// NotificationConfirmation (3A08) of `sequence`.
    func confirm(_ sequence: Int) throws(ES5Failure) {
        let data = DGI(0x3A08, TLV(0x4E, [UInt8(sequence >> 8), UInt8(sequence & 0xFF)]).encoded).encoded
        _ = try send(.storeData(p1: 0x89, data: data))
    }

    /// GET STATUS of every ISD-P: AID → life-cycle byte.
    func isdpStates() throws(ES5Failure) -> [AID: UInt8] {
        let status = CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: TLV(0x4F, []).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded, le: 0)
        let response = try send(status)
        if response.sw == .referencedDataNotFound { return [:] }
        guard response.sw.isSuccessOrWarning, let entries = try? TLV.parseAll(response.data) else {
            throw ES5Failure(status: .failed(.isdr, .executionError, identifier: eid.text, message: "GET STATUS answered \(response.sw)"))
        }
        var states: [AID: UInt8] = [:]
        for entry in entries where entry.tag == 0xE3 {
            guard let items = try? entry.children(), let aid = items.first(where: { $0.tag == 0x4F }).flatMap({ try? AID(bytes: $0.value) }),
                let state = items.first(where: { $0.tag == 0x9F70 })?.value.first
            else { continue }
            states[aid] = state
        }
        return states
    }

    /// The card's status word → the function's status (docs/smsr.md, ES5 table).
    static func status(of response: ResponseAPDU, iccid: ICCID) -> FunctionExecutionStatus {
        switch response.sw {
        case .conditionsNotSatisfied: .failed(.profileICCID, .invalidTransition, identifier: iccid.text, message: "the card refused the transition (6985)")
        case .pol1Forbids: .failed(.pol1, .refused, identifier: iccid.text, message: "the Profile's POL1 forbids it (69E1)")
        case .referencedDataNotFound: .failed(.isdp, .unknown, identifier: iccid.text, message: "the card has no such ISD-P (6A88)")
        case .notEnoughMemory: .failed(.euicc, .insufficientMemory, message: "not enough memory on the card (6A84)")
        case .securityStatusNotSatisfied: .failed(.isdp, .verificationFailed, identifier: iccid.text, message: "security status not satisfied (6982)")
        default: .failed(.isdp, .executionError, identifier: iccid.text, message: "the card answered \(response.sw)")
        }
    }
}
