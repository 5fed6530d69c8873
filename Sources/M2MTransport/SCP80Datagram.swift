// The datagram framing of the loopback SCP80 endpoint (`m2mrsp emulate --serve-scp80`,
// docs/emulator.md §Transports): one request per datagram, one answer datagram.

public import M2MCore
public import M2MWire

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
