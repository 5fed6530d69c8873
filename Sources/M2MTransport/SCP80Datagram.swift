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

// MARK: - The client side

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// An `EUICCTransport` to cards served by another process over the loopback UDP framing above
/// (`m2mrsp emulate --serve-scp80`): SMS and MO polls only (scripts need SCP81).
public final class SCP80DatagramTransport: EUICCTransport, @unchecked Sendable {
    let socket: Int32
    /// One exchange at a time on the socket.
    let lock = Mutex(())

    /// `host` is an IPv4 address or "localhost"; `timeout` seconds per answer.
    public init(host: String, port: UInt16, timeout: Double = 2) throws(TransportError) {
        let (descriptor, opened) = try UDPSocket.open(host: host, port: port, timeout: timeout)
        var address = opened
        // Connected: datagrams from any other source are dropped by the kernel.
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(descriptor)
            throw TransportError(.unreachable, "cannot connect the UDP socket to \(host):\(port)")
        }
        self.socket = descriptor
    }

    deinit { Glibc.close(socket) }

    func exchange(_ request: [UInt8]) throws(TransportError) -> [UInt8] {
        let outcome: Result<[UInt8], TransportError> = lock.withLock { _ in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            // A late answer to an earlier request that timed out must not be read as this one's.
            while recv(socket, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 {}
            guard send(socket, request, request.count, 0) == request.count else {
                return .failure(TransportError(.unreachable, "cannot send to the SCP80 endpoint"))
            }
            let received = recv(socket, &buffer, buffer.count, 0)
            guard received > 0 else { return .failure(TransportError(.unreachable, "no answer from the SCP80 endpoint")) }
            return .success(Array(buffer[0..<received]))
        }
        return try outcome.get()
    }

    public func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]? {
        let answer = try exchange(SCP80Datagram.smsRequest(eid: eid, userData: userData))
        guard answer.count >= 2, answer[0] == 0x81 else { throw TransportError(.unreachable, "the endpoint answered \(Hex.encode(answer.prefix(4)))") }
        switch answer[1] {
        case SCP80Datagram.porFollows: return Array(answer.dropFirst(2))
        case SCP80Datagram.noPoR: return nil
        case SCP80Datagram.unknownCard: throw TransportError(.unknownCard, "no card \(eid.text) behind the endpoint")
        default: throw TransportError(.notAPacket, "the card took no packet")
        }
    }

    public func moMessages(from eid: EID) throws(TransportError) -> [[UInt8]] {
        let answer = try exchange(SCP80Datagram.pollRequest(eid: eid))
        if answer.count >= 2, answer[0] == 0x82, answer[1] == SCP80Datagram.unknownCard {
            throw TransportError(.unknownCard, "no card \(eid.text) behind the endpoint")
        }
        guard let packets = SCP80Datagram.moPackets(in: answer) else { throw TransportError(.unreachable, "malformed MO poll answer") }
        return packets
    }

    public func runScript(_ script: [UInt8], target: ScriptTarget, on eid: EID) throws(TransportError) -> [UInt8] {
        throw TransportError(.unreachable, "the UDP endpoint carries SMS only: scripts go over SCP81 or segmented SMS")
    }

    public var runsScripts: Bool { false }
}

// MARK: - The server side

/// Serves cards over the loopback UDP framing: `workers` threads each read a request datagram,
/// answer it with `SCP80Datagram.handle` and send the answer back, until `stop()`. `m2mrsp emulate
/// --serve-scp80` serves a fleet with it, and `m2mrsp serve` its built-in fleet (so another SM-SR
/// process can reach the same cards, as at an SM-SR change).
public final class SCP80DatagramServer: @unchecked Sendable {
    let socket: Int32
    let transport: any EUICCTransport
    let onTrigger: (@Sendable (EID, AdminSessionTrigger) -> Void)?
    let stopping = Atomic<Bool>(false)
    let group = DispatchGroup()
    let answered = Atomic<Int>(0)
    /// Datagrams answered so far.
    public var served: Int { answered.load(ordering: .relaxed) }
    /// The port bound (useful when 0 was asked for).
    public let port: UInt16

    /// Binds `host:port` (IPv4).
    public init(host: String, port: UInt16, transport: any EUICCTransport,
                onAdminSessionTrigger: (@Sendable (EID, AdminSessionTrigger) -> Void)? = nil) throws(TransportError) {
        // A short receive timeout: the workers notice `stop()` within 0.2 s.
        let (socket, opened) = try UDPSocket.open(host: host, port: port, timeout: 0.2)
        var address = opened
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            close(socket)
            throw TransportError(.unreachable, "cannot bind \(host):\(port): \(reason)")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        self.port = UInt16(bigEndian: actual.sin_port)
        self.socket = socket
        self.transport = transport
        self.onTrigger = onAdminSessionTrigger
    }

    /// Starts `workers` threads.
    public func start(workers: Int) {
        for _ in 0..<max(1, workers) {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while !stopping.load(ordering: .relaxed) {
                    var peer = sockaddr_storage()
                    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                    let received = withUnsafeMutablePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(socket, &buffer, buffer.count, 0, $0, &length) }
                    }
                    guard received > 0 else { continue }
                    let answer = SCP80Datagram.handle(Array(buffer[0..<received]), transport: transport, onAdminSessionTrigger: onTrigger)
                    _ = withUnsafePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socket, answer, answer.count, 0, $0, length) }
                    }
                    answered.add(1, ordering: .relaxed)
                }
            }
            thread.start()
        }
    }

    /// Stops the workers (each notices within 0.2 s) and closes the socket.
    public func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        group.wait()
        close(socket)
    }

    /// Waits until the workers stop (another thread calls `stop()`).
    public func wait() { group.wait() }
}


/// An IPv4 UDP socket with a receive timeout, and the address `host:port` it is for.
enum UDPSocket {
    static func open(host: String, port: UInt16, timeout: Double) throws(TransportError) -> (Int32, sockaddr_in) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            throw TransportError(.unreachable, "'\(host)' is not an IPv4 address")
        }
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard descriptor >= 0 else { throw TransportError(.unreachable, "cannot open a UDP socket") }
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        return (descriptor, address)
    }
}
