// A tap on ES5: a transport that passes everything to another and writes what went to and came from
// each card in the capture format of `m2mrsp trace` (JSON Lines, docs/trace.md): SMS TP-UD as
// `scp80` (MT packets, PoRs, MO packets), scripts as `script` with their target application, each
// line with the card's EID and the time. `m2mrsp smsr … --capture FILE` uses it; the tracer then
// checks the SM-SR's own traffic with the cards' keys.
//
// The capture holds the bytes as they travel: SCP80 packets are ciphered, scripts run in process
// are not (they are what an SCP81 session would carry inside TLS). It holds no key.

public import M2MCore
public import M2MWire
import Foundation
import Synchronization

/// Where captured lines go: one JSON object per call, without the newline.
public protocol CaptureSink: Sendable {
    func write(_ line: String)
}

/// Appends lines to a file (created when absent), each written as it comes. A tap must never take
/// the SM-SR down: the first write that fails (full disk, I/O error) is reported on standard error
/// and the capture stops; the traffic goes on.
public final class CaptureFile: CaptureSink, Sendable {
    private let handle: Mutex<FileHandle?>
    public let path: String

    public init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw TransportError(.unreachable, "cannot create \(path)") }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw TransportError(.unreachable, "cannot write \(path)") }
        try handle.seekToEnd()
        self.handle = Mutex(handle)
    }

    public func write(_ line: String) {
        handle.withLock { handle in
            guard let open = handle else { return }
            do {
                try open.write(contentsOf: Data((line + "\n").utf8))
            } catch {
                FileHandle.standardError.write(Data("capture to \(path) stopped: \(error)\n".utf8))
                handle = nil
            }
        }
    }
}

/// Passes every call to `inner` and writes what it carried to `sink`.
public struct CapturingTransport: EUICCTransport {
    public let inner: any EUICCTransport
    public let sink: any CaptureSink

    public init(_ inner: any EUICCTransport, sink: any CaptureSink) {
        self.inner = inner
        self.sink = sink
    }

    public var runsScripts: Bool { inner.runsScripts }

    static let time: Mutex<ISO8601DateFormatter> = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return Mutex(formatter)
    }()

    /// One line of the capture format.
    func record(_ direction: String, _ layer: String, _ bytes: [UInt8], eid: EID, target: ScriptTarget? = nil, note: String? = nil) {
        guard !bytes.isEmpty else { return }  // nothing travelled (the format has no empty exchanges)
        var object: [String: String] = ["dir": direction, "layer": layer, "hex": Hex.encode(bytes), "eid": eid.text]
        object["time"] = Self.time.withLock { $0.string(from: Date()) }
        switch target {
        case .isdR?: object["target"] = "isd-r"
        case .isdP(let aid)?: object["target"] = aid.text
        case nil: break
        }
        if let note { object["note"] = note }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), let line = String(data: data, encoding: .utf8) else { return }
        sink.write(line)
    }

    /// A comment line for a call that failed after its bytes were recorded (the tracer skips lines
    /// starting with #): the command stays without an answer in the capture, and says why.
    func failed(_ error: TransportError, eid: EID) {
        sink.write("# \(eid.text): no answer: \(error)")
    }

    public func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]? {
        record("to-card", "scp80", userData, eid: eid)
        let proofOfReceipt: [UInt8]?
        do throws(TransportError) { proofOfReceipt = try inner.deliverSMS(userData, to: eid) } catch {
            failed(error, eid: eid)
            throw error
        }
        if let proofOfReceipt { record("from-card", "scp80", proofOfReceipt, eid: eid) }
        return proofOfReceipt
    }

    public func deliverSMSAndTrigger(_ userData: [UInt8], to eid: EID) throws(TransportError) -> (proofOfReceipt: [UInt8]?, trigger: AdminSessionTrigger?) {
        record("to-card", "scp80", userData, eid: eid)
        let answer: (proofOfReceipt: [UInt8]?, trigger: AdminSessionTrigger?)
        do throws(TransportError) { answer = try inner.deliverSMSAndTrigger(userData, to: eid) } catch {
            failed(error, eid: eid)
            throw error
        }
        if let proofOfReceipt = answer.proofOfReceipt {
            record("from-card", "scp80", proofOfReceipt, eid: eid, note: answer.trigger == nil ? nil : "the card opens an SCP81 admin session")
        }
        return answer
    }

    public func moMessages(from eid: EID) throws(TransportError) -> [[UInt8]] {
        let messages = try inner.moMessages(from: eid)
        for message in messages { record("from-card", "scp80", message, eid: eid) }
        return messages
    }

    public func runScript(_ script: [UInt8], target: ScriptTarget, on eid: EID) throws(TransportError) -> [UInt8] {
        record("to-card", "script", script, eid: eid, target: target)
        let response: [UInt8]
        do throws(TransportError) { response = try inner.runScript(script, target: target, on: eid) } catch {
            failed(error, eid: eid)
            throw error
        }
        record("from-card", "script", response, eid: eid, target: target)
        return response
    }
}
