// `m2mrsp trace CAPTURE --keys KEYRING`: decode and verify captured ES5/ES8 traffic (docs/cli/trace.md,
// docs/trace.md). Exit status 0 when no check failed, 1 when one did, 2 when the input cannot be read.

import ArgumentParser
import Foundation
import M2MCore
import M2MTrace

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Decode and verify captured ES5/ES8 traffic (APDUs, scripts, SCP80, SCP81 HTTP, SCP03t) with the keys you have.",
        discussion: """
            CAPTURE is JSON Lines, one exchange per line: {"dir": "to-card"|"from-card", "layer": "apdu"|"script"|"scp80"|\
            "scp81-http"|"scp03t", "hex": "…", "time": …, "note": …}. The keyring (JSON) holds whatever you have: pk_ci, \
            pk_ecasd_ecka, esk_dp_ecka, isd_p_aid, scp03, scp80 key sets. Prints every exchange decoded, each check passed, \
            failed or skipped (a missing key skips, it does not fail), and a summary naming the first failure. Exit status: \
            0 no check failed, 1 a check failed, 2 unreadable input. Format and examples: docs/trace.md.
            """
    )

    @Argument(help: "The capture (JSON Lines), or '-' for standard input.")
    var capture: String

    @Option(name: .customLong("keys"), help: "The keyring (JSON). Without it only the formats are decoded.")
    var keys: String?

    @Option(help: "Trace only this card's exchanges (lines with another \"eid\" are left out).")
    var eid: String?

    @Flag(help: "Print the report as JSON (entries, profile elements, summary).")
    var json = false

    @Option(name: .customLong("extract-profile"), help: "Write the decrypted profile package (DER) to this file.")
    var extractProfile: String?

    func run() throws {
        var exchanges: [TraceExchange]
        var keyring = TraceKeyring()
        do {
            exchanges = try TraceCapture.parse(try InputFile.read(capture), source: capture)
            if let eid {
                guard let card = try? EID(text: eid) else { throw ValidationError("--eid '\(eid)' is not an EID") }
                exchanges = exchanges.filter { $0.eid == nil || $0.eid == card }
            }
            if let keys { keyring = try TraceKeyring.parse(try InputFile.read(keys), source: keys) }
        } catch let error as TraceInputError {
            FileHandle.standardError.write(Data("m2mrsp trace: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let report = Tracer.run(exchanges, keyring: keyring)
        if json {
            FileHandle.standardOutput.write(Data(try report.json()))
        } else {
            FileHandle.standardOutput.write(Data(report.text().utf8))
        }
        if let extractProfile {
            guard let package = report.profilePackage else {
                FileHandle.standardError.write(Data("m2mrsp trace: no profile package was decrypted; nothing written to \(extractProfile)\n".utf8))
                throw ExitCode(report.hasFailures ? 1 : 2)
            }
            try Data(package).write(to: URL(fileURLWithPath: extractProfile))
            FileHandle.standardError.write(Data("m2mrsp trace: \(package.count) bytes of profile package written to \(extractProfile)\n".utf8))
        }
        if report.hasFailures { throw ExitCode(1) }
    }
}
