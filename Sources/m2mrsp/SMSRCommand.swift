// `m2mrsp smsr`: an SM-SR on a database file, driven from the command line (docs/cli/smsr.md):
// create the database and its parties, register EIS (as `m2mrsp emulate --eis` prints them), run
// ES4 life-cycle functions on cards served by `m2mrsp emulate --serve-scp80`, recover after a
// crash, show an EIS. `--crash-at` kills the process at a named point of an operation (what
// scripts/crash-test.sh does to prove recovery). The SOAP server comes with issue #8.

import ArgumentParser
import Foundation
import M2MCore
import M2MCrypto
import M2MPolicy
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTransport

struct SMSRCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smsr",
        abstract: "Run the SM-SR on a database file: init, register EIS, enable/disable/delete Profiles over SCP80, recover, show.",
        subcommands: [Init.self, Register.self, Lifecycle.self, Recover.self, Show.self]
    )

    struct Common: ParsableArguments {
        @Option(help: "The SM-SR database (SQLite).")
        var db: String

        @Option(name: .customLong("key-file"), help: "The storage key that seals ISD-R keys at rest (64 hex digits; `init` creates it, mode 0600).")
        var keyFile: String

        @Option(help: "A `m2mrsp pki init` directory: its CI and EUM certificates are the registration trust.")
        var pki: String

        @Option(help: "This SM-SR's OID.")
        var smsr: String = "1.3.6.1.4.1.99999.2.1"

        @Option(help: "The cards' SCP80 endpoint (`m2mrsp emulate --serve-scp80`), HOST:PORT.")
        var scp80: String?

        @Option(help: "Append the ES5 traffic with the cards to this file, in `m2mrsp trace`'s capture format (JSON Lines).")
        var capture: String?

        @Option(help: "The Lua plugins directory.")
        var plugins: String = "plugins"

        @Option(help: "The policy bundles directory.")
        var policies: String = "policies"

        func manifest() throws -> [String: Any] {
            let url = URL(fileURLWithPath: pki).appendingPathComponent("pki.json")
            guard let data = FileManager.default.contents(atPath: url.path),
                let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { throw SMSRFailure("cannot read \(url.path) (is \(pki) a `m2mrsp pki init` directory?)") }
            return object
        }

        func id(_ role: String, _ manifest: [String: Any]) throws -> OID {
            guard let entry = manifest[role] as? [String: Any], let text = entry["id"] as? String else { throw SMSRFailure("pki.json has no \(role) id") }
            return try OID(text: text)
        }

        func certificate(_ path: String) throws -> X509Certificate {
            let url = URL(fileURLWithPath: pki).appendingPathComponent(path)
            guard let data = FileManager.default.contents(atPath: url.path) else { throw SMSRFailure("cannot read \(url.path)") }
            return try X509Certificate(pem: String(decoding: data, as: UTF8.self))
        }

        func storageKey(create: Bool) throws -> SecureBytes { try StorageKeyFile.load(keyFile, create: create, role: "SM-SR") }

        func open(faults: SMSRFaults = SMSRFaults(), createKey: Bool = false) throws -> SMSR {
            let manifest = try manifest()
            var configuration = SMSRConfiguration(smsrID: try OID(text: smsr), storageKey: try storageKey(create: createKey))
            configuration.acceptClearISDRKeys = true  // test fleets: `emulate --eis` prints keys in clear
            let trust = SMSRTrust(ci: try certificate("ci/ci.crt.pem"), eums: [try id("eum", manifest): try certificate("eum/eum.crt.pem")])
            let set = try PolicyLoader(pluginPaths: [plugins]).loadSet(bundles: PolicyLoader.bundleDirectories(under: policies))
            let engine = try PolicyEngine(set: set, decisionLog: NoDecisionLog())
            var transport: any EUICCTransport
            if let scp80 {
                let parts = scp80.split(separator: ":")
                guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("--scp80 '\(scp80)' is not HOST:PORT") }
                transport = try SCP80DatagramTransport(host: String(parts[0]), port: port)
            } else {
                transport = NoCards()
            }
            if let capture { transport = CapturingTransport(transport, sink: try CaptureFile(path: capture)) }
            let store = try SQLiteSMSRStore(path: db, codec: XMLDocumentCodec())
            return try SMSR(configuration: configuration, trust: trust, store: store, policy: engine, transport: transport, faults: faults)
        }
    }

    /// No card endpoint given: every ES5 exchange fails (registration and queries need none).
    struct NoCards: EUICCTransport {
        func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]? { throw TransportError(.unreachable, "no --scp80 endpoint given") }
        func moMessages(from eid: EID) throws(TransportError) -> [[UInt8]] { throw TransportError(.unreachable, "no --scp80 endpoint given") }
        func runScript(_ script: [UInt8], target: ScriptTarget, on eid: EID) throws(TransportError) -> [UInt8] {
            throw TransportError(.unreachable, "no --scp80 endpoint given")
        }
    }

    static func report(_ status: FunctionExecutionStatus) throws {
        print(status)
        if status.status == .failed || status.status == .expired { throw ExitCode(2) }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the database and the storage key; register the PKI's EUM, SM-DP, MNO and M2M SP as parties.")
        @OptionGroup var common: Common

        func run() throws {
            let smsr = try common.open(createKey: true)
            let manifest = try common.manifest()
            for (role, kind) in [("eum", Party.Role.eum), ("smdp", .smdp), ("mno", .mno), ("m2msp", .m2mSP)] {
                let oid = try common.id(role, manifest)
                try smsr.register(Party(oid: oid, role: kind))
                print("\(kind.rawValue)\t\(oid.text)")
            }
        }
    }

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "ES1.RegisterEIS of an EIS in JSON (as `m2mrsp emulate --eis N --pki DIR` prints it), as the PKI's EUM.")
        @OptionGroup var common: Common
        @Option(help: "The EIS (JSON).")
        var eis: String
        @Option(help: "The FunctionCallIdentifier (default: register-<EID>).")
        var fci: String?

        func run() throws {
            guard let data = FileManager.default.contents(atPath: eis) else { throw SMSRFailure("cannot read \(eis)") }
            let document = try JSONDecoder().decode(EIS.self, from: data)
            let smsr = try common.open()
            let caller = try common.id("eum", try common.manifest())
            let response = smsr.registerEIS(ES1.RegisterEISRequest(functionCallIdentifier: fci ?? "register-\(document.eid.text)", eis: document),
                                            context: RequestContext(caller: caller))
            try SMSRCommand.report(response.functionExecutionStatus)
        }
    }

    struct Lifecycle: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "profile",
            abstract: "ES4 EnableProfile, DisableProfile or DeleteProfile over SCP80 (cards served by `m2mrsp emulate --serve-scp80`).")
        @OptionGroup var common: Common
        @Argument(help: "enable, disable or delete.")
        var action: String
        @Option(help: "The eUICC.")
        var eid: String
        @Option(help: "The Profile.")
        var iccid: String
        @Option(help: "The caller (default: the PKI's MNO).")
        var caller: String?
        @Option(help: "The FunctionCallIdentifier (default: <action>-<ICCID>).")
        var fci: String?
        @Option(name: .customLong("crash-at"), help: "Kill this process (SIGKILL) at: beforeES5, afterES5, beforeCommit, afterCommit.")
        var crashAt: String?

        func validate() throws {
            guard ["enable", "disable", "delete"].contains(action) else { throw ValidationError("the action is enable, disable or delete") }
            if let crashAt, SMSRFaults.Point(rawValue: crashAt) == nil { throw ValidationError("--crash-at is beforeES5, afterES5, beforeCommit or afterCommit") }
        }

        func run() throws {
            let faults = SMSRFaults(crashAt: crashAt.flatMap(SMSRFaults.Point.init(rawValue:)), killProcess: true)
            let smsr = try common.open(faults: faults)
            let context = RequestContext(caller: try caller.map { try OID(text: $0) } ?? common.id("mno", try common.manifest()))
            let eid = try EID(text: self.eid)
            let iccid = try ICCID(text: self.iccid)
            let identifier = fci ?? "\(action)-\(iccid.text)"
            let status: FunctionExecutionStatus = switch action {
            case "enable": smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: identifier, eid: eid, iccid: iccid), context: context).functionExecutionStatus
            case "disable": smsr.disableProfile(ES4.DisableProfileRequest(functionCallIdentifier: identifier, eid: eid, iccid: iccid), context: context).functionExecutionStatus
            default: smsr.deleteProfile(ES4.DeleteProfileRequest(functionCallIdentifier: identifier, eid: eid, iccid: iccid), context: context).functionExecutionStatus
            }
            try SMSRCommand.report(status)
        }
    }

    struct Recover: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Finish the operations a crash left active: ask each card what happened, commit one outcome each.")
        @OptionGroup var common: Common

        func run() throws {
            let smsr = try common.open()
            print("\(try smsr.recover()) operation(s) recovered")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an EIS as stored (Profiles with their state), as JSON.")
        @OptionGroup var common: Common
        @Option(help: "The eUICC.")
        var eid: String

        func run() throws {
            let smsr = try common.open()
            guard let stored = try smsr.store.read({ try $0.eis(try EID(text: eid)) }) else { throw SMSRFailure("no EIS \(eid)") }
            let active = try smsr.store.read { try $0.activeOperations() }.count
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let profiles = stored.eis.profiles.map { ["iccid": $0.iccid.text, "aid": $0.isdPAID.text, "state": $0.state.rawValue, "fallBack": $0.fallbackAttribute ? "yes" : "no"] }
            let summary: [String: AnyEncodable] = ["eid": .string(eid), "version": .int(stored.version), "activeOperations": .int(active),
                                                   "profiles": .rows(profiles)]
            FileHandle.standardOutput.write(try encoder.encode(summary))
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
    }
}

enum AnyEncodable: Encodable {
    case string(String)
    case int(Int)
    case rows([[String: String]])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let v): try container.encode(v)
        case .int(let v): try container.encode(v)
        case .rows(let v): try container.encode(v)
        }
    }
}

/// The 32-byte storage key a role seals secrets with, in a file of its own (hex; mode 0600 when created).
enum StorageKeyFile {
    static func load(_ path: String, create: Bool, role: String) throws -> SecureBytes {
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).split(separator: "\n").first { !$0.hasPrefix("#") }.map(String.init) ?? ""
            guard let bytes = Hex.decode(text.trimmingCharacters(in: .whitespaces)), bytes.count == 32 else {
                throw SMSRFailure("\(path) does not hold a 32-byte key in hex")
            }
            return SecureBytes(bytes)
        }
        guard create else { throw SMSRFailure("no storage key at \(path) (run `m2mrsp \(role.lowercased().replacingOccurrences(of: "-", with: "")) init` first)") }
        let key = SecureRandom.bytes(32)
        let text = "# m2mrsp \(role) storage key (TEST ONLY: keep a production key in a key store)\n" + Hex.encode(key) + "\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw SMSRFailure("cannot write \(path)")
        }
        return SecureBytes(key)
    }
}

struct SMSRFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
