// How bytes reach an emulated card. The platform (the SM-SR later, tests now) talks to cards only
// through this protocol, as it would through an SMSC or an HTTPS admin agent:
//
//   deliverSMS   an MT SMS-PP (TP-UD with the 02 70 00 header) → the PoR TP-UD, or nil
//   moMessages   the MO SMS the card has to send now (default notifications, SCP80Endpoint.swift)
//   runScript    an expanded command script (AA/AE) for an application, answered AB/AF — the body of
//                the HTTPS admin protocol (SCP81Agent.swift runs it over PSK-TLS sockets)
//
// `InProcessTransport` hands the bytes to a fleet directly (no copies beyond the card's own, no
// networking). `SCP80Datagram` is the framing `m2mrsp emulate --serve-scp80` speaks over loopback UDP
// (docs/emulator.md §Transports).

public import M2MCore
public import M2MCrypto
public import M2MWire

/// A transport failure (not a card's answer: those are PoR statuses and status words).
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// No card with this EID behind the transport.
        case unknownCard
        /// The bytes are not an SCP80 command packet; the card answers nothing.
        case notAPacket
        /// The network path failed: address, connect, listen, accept, timeout, peer gone.
        case unreachable
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { detail }
}

/// Bytes in, bytes out, addressed by EID.
public protocol EUICCTransport: Sendable {
    /// An MT SMS-PP to the card; returns the PoR TP-UD (nil when the SPI asks for no PoR).
    func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]?
    /// The MO SMS the card sends now (TP-UD each, oldest first).
    func moMessages(from eid: EID) throws(TransportError) -> [[UInt8]]
    /// An expanded command script for an application of the card; the response script.
    func runScript(_ script: [UInt8], target: ScriptTarget, on eid: EID) throws(TransportError) -> [UInt8]
    /// `deliverSMS`, plus the SCP81 administration session the packet asked the card to open (a push).
    func deliverSMSAndTrigger(_ userData: [UInt8], to eid: EID) throws(TransportError) -> (proofOfReceipt: [UInt8]?, trigger: AdminSessionTrigger?)
}

extension EUICCTransport {
    /// Transports that cannot see pushes report none.
    public func deliverSMSAndTrigger(_ userData: [UInt8], to eid: EID) throws(TransportError) -> (proofOfReceipt: [UInt8]?, trigger: AdminSessionTrigger?) {
        (try deliverSMS(userData, to: eid), nil)
    }
}

/// The in-process transport: a fleet's cards, called directly.
public struct InProcessTransport: EUICCTransport {
    public let fleet: Fleet
    /// The ISD-R's minimum security level for MT packets.
    public let minimumSecurityLevel: SCP80MinimumSecurityLevel
    /// How MO packets use the counter.
    public let moCounterMode: MOCounterMode

    public init(
        fleet: Fleet, minimumSecurityLevel: SCP80MinimumSecurityLevel = EUICC.isdRMinimumSecurityLevel, moCounterMode: MOCounterMode = .none
    ) {
        self.fleet = fleet
        self.minimumSecurityLevel = minimumSecurityLevel
        self.moCounterMode = moCounterMode
    }

    func index(_ eid: EID) throws(TransportError) -> Int {
        guard let index = fleet.index(of: eid) else { throw TransportError(.unknownCard, "no card \(eid.text) behind this transport") }
        return index
    }

    public func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]? {
        try delivery(userData, to: eid).proofOfReceipt
    }

    public func deliverSMSAndTrigger(_ userData: [UInt8], to eid: EID) throws(TransportError) -> (proofOfReceipt: [UInt8]?, trigger: AdminSessionTrigger?) {
        let delivery = try delivery(userData, to: eid)
        return (delivery.proofOfReceipt, delivery.adminSessionTrigger)
    }

    /// `deliverSMS` with the card's whole answer (status, response script).
    public func delivery(_ userData: [UInt8], to eid: EID) throws(TransportError) -> SCP80Delivery {
        let level = minimumSecurityLevel
        let outcome: Result<SCP80Delivery, CryptoError> = fleet.withCard(at: try index(eid)) { card in
            do throws(CryptoError) {
                return .success(try card.receiveSMS(userData, minimumSecurityLevel: level))
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let delivery): return delivery
        case .failure(let error): throw TransportError(.notAPacket, "not an SCP80 command packet: \(error.detail)")
        }
    }

    public func moMessages(from eid: EID) throws(TransportError) -> [[UInt8]] {
        let mode = moCounterMode
        return fleet.withCard(at: try index(eid)) { $0.notificationPackets(counter: mode) }
    }

    public func runScript(_ script: [UInt8], target: ScriptTarget, on eid: EID) throws(TransportError) -> [UInt8] {
        fleet.withCard(at: try index(eid)) { $0.processScript(script, target: target) }
    }
}

/// The datagram framing of the loopback SCP80 endpoint (`m2mrsp emulate --serve-scp80`):
///
///   request   op u8 ‖ EID (16 bytes, BCD as GET DATA 5A returns it) ‖ payload
///             op 01 MT SMS: payload = TP-UD (02 70 00 …)
///             op 02 MO poll: no payload
///   answer    op | 80 ‖ status u8 ‖ payload
///             81 00 ‖ PoR TP-UD          packet processed, PoR follows (its own status inside)
///             81 01                      packet processed, the SPI asks for no PoR
///             82 00 ‖ (u16 length ‖ TP-UD)*   the card's MO packets, oldest first (none: empty)
///             op|80 ‖ E1                 unknown EID
///             op|80 ‖ E2                 not an SCP80 command packet (nothing changed)
///             FF ‖ E3                    malformed request (short, unknown op)
public enum SCP80Datagram {
    public static let mtSMS: UInt8 = 0x01
    public static let moPoll: UInt8 = 0x02
    public static let porFollows: UInt8 = 0x00
    public static let noPoR: UInt8 = 0x01
    public static let unknownCard: UInt8 = 0xE1
    public static let notAPacket: UInt8 = 0xE2
    public static let malformed: UInt8 = 0xE3

    /// An MT SMS request.
    public static func smsRequest(eid: EID, userData: [UInt8]) -> [UInt8] { [mtSMS] + eid.bytes + userData }
    /// An MO poll request.
    public static func pollRequest(eid: EID) -> [UInt8] { [moPoll] + eid.bytes }

    /// Answers one request datagram with the transport. An SCP81 push (its PoR is answered as any
    /// other) is handed to `onAdminSessionTrigger`, which opens the card's admin session.
    public static func handle(
        _ request: [UInt8], transport: some EUICCTransport, onAdminSessionTrigger: ((EID, AdminSessionTrigger) -> Void)? = nil
    ) -> [UInt8] {
        guard request.count >= 17, request[0] == mtSMS || request[0] == moPoll else { return [0xFF, malformed] }
        let op = request[0]
        var text = ""
        text.reserveCapacity(32)
        for byte in request[1..<17] {
            guard byte >> 4 < 10, byte & 0x0F < 10 else { return [op | 0x80, unknownCard] }
            text.append(Character(Unicode.Scalar(0x30 + (byte >> 4))))
            text.append(Character(Unicode.Scalar(0x30 + (byte & 0x0F))))
        }
        guard let eid = try? EID(text: text) else { return [op | 0x80, unknownCard] }
        do throws(TransportError) {
            if op == mtSMS {
                let (proofOfReceipt, trigger) = try transport.deliverSMSAndTrigger(Array(request[17...]), to: eid)
                if let trigger { onAdminSessionTrigger?(eid, trigger) }
                guard let por = proofOfReceipt else { return [0x81, noPoR] }
                return [0x81, porFollows] + por
            }
            guard request.count == 17 else { return [0xFF, malformed] }
            var answer: [UInt8] = [0x82, porFollows]
            for packet in try transport.moMessages(from: eid) {
                answer += [UInt8(packet.count >> 8), UInt8(packet.count & 0xFF)] + packet
            }
            return answer
        } catch {
            return [op | 0x80, error.code == .unknownCard ? unknownCard : notAPacket]
        }
    }

    /// Splits an MO poll answer into its packets; nil when it is not one.
    public static func moPackets(in answer: [UInt8]) -> [[UInt8]]? {
        guard answer.count >= 2, answer[0] == 0x82, answer[1] == porFollows else { return nil }
        var packets: [[UInt8]] = []
        var offset = 2
        while offset < answer.count {
            guard offset + 2 <= answer.count else { return nil }
            let length = Int(answer[offset]) << 8 | Int(answer[offset + 1])
            guard offset + 2 + length <= answer.count else { return nil }
            packets.append(Array(answer[(offset + 2)..<(offset + 2 + length)]))
            offset += 2 + length
        }
        return packets
    }
}
