// The SM-SR's end of a card's SCP80 channel (ETSI TS 102 225 secured packets): scripts and SCP81
// pushes secured with the card's ISD-R key set, PoRs and MO packets opened.

public import M2MCore
public import M2MCrypto
public import M2MWire

/// The SM-SR's end of one card's SCP80 channel, for tests, the loopback CLI peer and (later) the
/// SM-SR itself: secures command scripts with the card's ISD-R key set, opens the PoRs, and opens
/// the card's MO notification packets.
public struct SCP80Peer: Sendable {
    public private(set) var sender: SCP80Sender
    var receiver: SCP80Receiver

    /// The default SPI of SGP.02 traffic to the ISD-R, with a secured PoR: counter higher, ciphered,
    /// CC; PoR required, CC, ciphered.
    public static let defaultSPI = SCP80SPI(
        counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .required, porIntegrity: .cryptographicChecksum,
        porCiphered: true)

    /// `counter` is the last counter the card accepted (the SM-SR keeps it per card).
    public init(keys: SCP80KeySet, tar: SCP80TAR = .isdR, counter: SCP80Counter = .zero, maximumUserDataLength: Int? = 140) throws(CryptoError) {
        sender = try SCP80Sender(keys: keys, tar: tar, counter: counter, maximumUserDataLength: maximumUserDataLength)
        // MO packets (default notifications) come with the "no counter" SPI (spec §3.3) but must be
        // ciphered and carry a CC with the card's keys: anything less is not the card speaking.
        receiver = try SCP80Receiver(
            tars: [.isdR], keySets: [keys],
            minimumSecurityLevel: SCP80MinimumSecurityLevel(counter: .none, ciphering: true, integrity: .cryptographicChecksum))
    }

    /// Secures a command script (AA/AE) with the next counter.
    public mutating func secure(_ script: ExpandedCommandScript, spi: SCP80SPI = SCP80Peer.defaultSPI) throws(CryptoError) -> SCP80SecuredCommand {
        try sender.secure(script.encoded, spi: spi)
    }

    /// Secures an SCP81 push for the ISD-R: the administration session triggering parameters as the
    /// secured data (GP Amendment B), with the next counter.
    public mutating func securePush(_ trigger: AdminSessionTrigger, spi: SCP80SPI = SCP80Peer.defaultSPI) throws(CryptoError) -> SCP80SecuredCommand {
        try sender.secure(trigger.encoded, spi: spi)
    }

    /// Opens the PoR answering `command`; the response script when it carries one.
    public func open(_ proofOfReceipt: [UInt8], for command: SCP80SecuredCommand) throws(CryptoError)
        -> (por: SCP80ReceivedPoR, script: ExpandedResponseScript?)
    {
        let por = try sender.openProofOfReceipt(proofOfReceipt, for: command)
        return (por, por.data.isEmpty ? nil : try? ExpandedResponseScript(bytes: por.data))
    }

    /// Opens an MO packet from the card (a default notification): its secured data in clear.
    public mutating func openMO(_ userData: [UInt8]) throws(CryptoError) -> [UInt8] {
        switch try receiver.receive(userData) {
        case .accepted(let command): return command.data
        case .rejected(let status, _): throw CryptoError(code: .invalidMAC, detail: "MO packet refused: \(status)")
        }
    }
}
