// The card's SCP80 side (ETSI TS 102 225 / 3GPP TS 31.115 secured packets over SMS-PP,
// spec/sgp02-oncard.md §2.1, §3.3): the ISD-R's key set (key version 1, AES KIc/KID, derived from
// the identity), the TARs it answers for (ISD-R 000001; each ISD-P's AID bytes 13–15), its counter
// (kept in the card and in the fleet file), and the default notifications it sends MO.
//
//   MT  TP-UD (02 70 00 …) → SCP80Receiver: TAR, MSL, keys, CC, ciphering, counter. A rejection is
//       answered with its PoR status (unsecured PoR up to the CC check, secured after) and leaves
//       the card unchanged, counter included. An accepted packet moves the counter; its secured data
//       is an expanded command script (AA/AE) run by `processScript` for the application the TAR
//       names, and the PoR carries the response script (AB/AF), secured as SPI2 asks. Secured data
//       to the ISD-R that is administration session triggering parameters (81 …) is an SCP81 push:
//       the PoR carries no data and the delivery returns the trigger (SCP81Agent.swift).
//   MO  each pending default notification (E1 …) as one packet to TAR 000001, ciphered and with a CC,
//       no PoR asked; counter 00…00 with the "no counter" SPI (§3.3), or, when asked, the card's MO
//       counter incremented per packet. A notification is sent again until 3A08 confirms it.
//
// SGP.02 traffic to the ISD-R uses SPI 16 xx: counter "higher", ciphering, CC. That is the minimum
// security level enforced here unless the caller gives another.

import M2MCore
public import M2MCrypto
public import M2MWire
public import M2MTransport

extension CardIdentity {
    /// The ISD-R's SCP80 key set: key version 1, AES-128 KIc (CBC) and KID (CMAC).
    public var scp80KeySet: SCP80KeySet {
        let keys = scp80Keys
        // 16-byte AES keys at version 1 are always a valid key set.
        return try! SCP80KeySet(keyVersion: 1, algorithm: .aes, kic: keys.kic, kid: keys.kid)
    }
}

/// What the card made of one SMS-PP (MT).
public struct SCP80Delivery: Sendable, Hashable {
    /// The PoR status: `.ok` when the packet was accepted and its script run.
    public let status: SCP80PoRStatus
    /// The PoR TP-UD to send back (02 71 00 …); nil when the SPI asks for none.
    public let proofOfReceipt: [UInt8]?
    /// The response script (AB/AF) in clear, when the packet was accepted and carried a script.
    public let responseScript: [UInt8]?
    /// The administration session the packet asked the ISD-R to open (an SCP81 push), when it was one.
    public let adminSessionTrigger: AdminSessionTrigger?

    public init(status: SCP80PoRStatus, proofOfReceipt: [UInt8]?, responseScript: [UInt8]?, adminSessionTrigger: AdminSessionTrigger? = nil) {
        self.status = status
        self.proofOfReceipt = proofOfReceipt
        self.responseScript = responseScript
        self.adminSessionTrigger = adminSessionTrigger
    }
}

/// How MO packets use the counter.
public enum MOCounterMode: Sendable, Hashable {
    /// Counter 00 00 00 00 00 with the "no counter" SPI (spec §3.3 for default notifications).
    case none
    /// The card's MO counter, incremented per packet, SPI "counter must be higher".
    case increasing
}

extension EUICC {
    /// The minimum security level of the ISD-R (counter higher, ciphering, CC).
    public static let isdRMinimumSecurityLevel = SCP80MinimumSecurityLevel(counter: .higher, ciphering: true, integrity: .cryptographicChecksum)

    /// The TARs the card answers for: the ISD-R's and one per ISD-P.
    public var scp80TARs: Set<SCP80TAR> {
        var tars: Set<SCP80TAR> = [.isdR]
        for isdp in isdps { if let tar = isdp.tar { tars.insert(tar) } }
        return tars
    }

    /// Receives an SMS-PP (TP-UD starting with the 02 70 00 user data header). Throws `.invalidInput`
    /// when the bytes are not a command packet at all (no readable header, CPL/CHL wrong): a real
    /// card answers nothing then, and nothing changed.
    public mutating func receiveSMS(
        _ userData: [UInt8], minimumSecurityLevel: SCP80MinimumSecurityLevel = EUICC.isdRMinimumSecurityLevel
    ) throws(CryptoError) -> SCP80Delivery {
        var receiver = try SCP80Receiver(
            tars: scp80TARs, keySets: activeSCP80KeySets, minimumSecurityLevel: minimumSecurityLevel, counters: scp80Counters)
        switch try receiver.receive(userData) {
        case .rejected(let status, let proofOfReceipt):
            return SCP80Delivery(status: status, proofOfReceipt: proofOfReceipt, responseScript: nil)
        case .accepted(let command):
            storeSCP80Counters(receiver)
            let target: ScriptTarget
            if command.tar == .isdR {
                target = .isdR
            } else if let isdp = isdps.first(where: { $0.tar == command.tar }) {
                target = .isdP(isdp.aid)
            } else {
                target = .isdR  // unreachable: the receiver only accepts the TARs above
            }
            // An SCP81 push (GP Amendment B): the secured data is the triggering parameters (81 …), not a
            // script. The PoR acknowledges it with no data; the agent then opens the HTTPS session.
            if target == .isdR, command.data.first == 0x81, let trigger = try? AdminSessionTrigger(bytes: command.data) {
                let proofOfReceipt = try receiver.proofOfReceipt(for: command, status: .ok, data: [])
                return SCP80Delivery(status: .ok, proofOfReceipt: proofOfReceipt, responseScript: nil, adminSessionTrigger: trigger)
            }
            let response = processScript(command.data, target: target)
            let proofOfReceipt = try receiver.proofOfReceipt(for: command, status: .ok, data: response)
            return SCP80Delivery(status: .ok, proofOfReceipt: proofOfReceipt, responseScript: response)
        }
    }

    /// The pending default notifications as MO SMS (TP-UD, one packet each, oldest first), secured
    /// with the ISD-R's key set. With `.increasing` each packet moves the card's MO counter.
    public mutating func notificationPackets(counter mode: MOCounterMode = .none) -> [[UInt8]] {
        let payloads = notificationPayloads()
        guard !payloads.isEmpty else { return [] }
        let spi = SCP80SPI(counter: mode == .none ? .none : .higher, ciphered: true, integrity: .cryptographicChecksum, por: .none)
        // An E1 notification (55 bytes) always fits one SMS; the sender refuses anything larger.
        guard let keys = moKeySet, var sender = try? SCP80Sender(keys: keys, tar: .isdR, counter: moCounter) else { return [] }
        var packets: [[UInt8]] = []
        for payload in payloads {
            guard let command = try? sender.secure(payload, spi: spi) else { break }
            packets.append(command.userData)
        }
        if mode == .increasing { moCounter = sender.counter }
        return packets
    }
}
