// How bytes reach an eUICC, in the platform's vocabulary and the emulator's alike: the SM-SR (and
// tests) talk to cards only through `EUICCTransport`, as through an SMSC or an HTTPS admin agent:
//
//   deliverSMS   an MT SMS-PP (TP-UD with the 02 70 00 header) → the PoR TP-UD, or nil
//   moMessages   the MO SMS the card has to send now (default notifications)
//   runScript    an expanded command script (AA/AE) for an application, answered AB/AF — the body of
//                the HTTPS admin protocol (SCP81)
//
// This module holds what both ends need and neither owns: the protocol, the script target, the
// errors, the SM-SR's end of SCP80 (`SCP80Peer`), the loopback UDP framing (`SCP80Datagram`), TCP
// sockets and the admin server's end of SCP81 (`SCP81Peer`). The emulator implements the card's
// side; M2MRoles may import this module and never the emulator (docs/architecture.md).

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
    /// Whether `runScript` works (in-process transports); SMS-only transports say false.
    var runsScripts: Bool { get }
    /// `deliverSMS`, plus the SCP81 administration session the packet asked the card to open (a push).
    func deliverSMSAndTrigger(_ userData: [UInt8], to eid: EID) throws(TransportError) -> (proofOfReceipt: [UInt8]?, trigger: AdminSessionTrigger?)
}

extension EUICCTransport {
    /// Whether `runScript` works (in-process transports); SMS-only transports say false.
    public var runsScripts: Bool { true }

    /// Transports that cannot see pushes report none.
    public func deliverSMSAndTrigger(_ userData: [UInt8], to eid: EID) throws(TransportError) -> (proofOfReceipt: [UInt8]?, trigger: AdminSessionTrigger?) {
        (try deliverSMS(userData, to: eid), nil)
    }
}

/// The application a script is addressed to.
public enum ScriptTarget: Sendable, Hashable, CustomStringConvertible {
    case isdR
    case isdP(AID)

    public var description: String {
        switch self {
        case .isdR: "ISD-R"
        case .isdP(let aid): "ISD-P \(aid.text)"
        }
    }
}
