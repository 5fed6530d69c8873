// How bytes reach an emulated card. The platform (the SM-SR later, tests now) talks to cards only
// through this protocol, as it would through an SMSC or an HTTPS admin agent:
//
//   deliverSMS   an MT SMS-PP (TP-UD with the 02 70 00 header) → the PoR TP-UD, or nil
//   moMessages   the MO SMS the card has to send now (default notifications, SCP80Endpoint.swift)
//   runScript    an expanded command script (AA/AE) for an application, answered AB/AF — the body of
//                the HTTPS admin protocol (SCP81Agent.swift runs it over PSK-TLS sockets)
//
// `InProcessTransport` hands the bytes to a fleet directly (no copies beyond the card's own, no
// networking). The protocol, `ScriptTarget`, `TransportError` and `SCP80Datagram` are M2MTransport's.

public import M2MCore
public import M2MCrypto
public import M2MWire
public import M2MTransport
import Foundation

/// The in-process transport: a fleet's cards, called directly.
public struct InProcessTransport: EUICCTransport {
    public let fleet: Fleet
    /// The ISD-R's minimum security level for MT packets.
    public let minimumSecurityLevel: SCP80MinimumSecurityLevel
    /// How MO packets use the counter.
    public let moCounterMode: MOCounterMode
    /// When set, a pushed card opens its SCP81 admin session (on its own thread, as a card's BIP
    /// channel runs beside its SMS traffic) with this client context.
    public let adminAgent: PSKTLSContext?

    public init(
        fleet: Fleet, minimumSecurityLevel: SCP80MinimumSecurityLevel = EUICC.isdRMinimumSecurityLevel, moCounterMode: MOCounterMode = .none,
        adminAgent: PSKTLSContext? = nil
    ) {
        self.fleet = fleet
        self.minimumSecurityLevel = minimumSecurityLevel
        self.moCounterMode = moCounterMode
        self.adminAgent = adminAgent
    }

    func index(_ eid: EID) throws(TransportError) -> Int {
        guard let index = fleet.index(of: eid) else { throw TransportError(.unknownCard, "no card \(eid.text) behind this transport") }
        return index
    }

    public func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]? {
        let delivery = try delivery(userData, to: eid)
        if let trigger = delivery.adminSessionTrigger, let context = adminAgent, let index = fleet.index(of: eid) {
            let fleet = fleet
            Thread.detachNewThread {
                _ = try? SCP81Client.runSession(fleet: fleet, index: index, trigger: trigger, context: context)
            }
        }
        return delivery.proofOfReceipt
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
