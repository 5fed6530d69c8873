// The m2mrsp command-line program. Every subcommand has --help and a page in docs/.

import ArgumentParser

@main
struct M2MRSPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "m2mrsp",
        abstract: "GSMA SGP.02 M2M eSIM Remote SIM Provisioning platform.",
        discussion: "Documentation: docs/README.md. Each subcommand has --help.",
        version: "0.1.0",
        subcommands: [SOAPCommand.self, PKICommand.self, PolicyCommand.self, EmulateCommand.self, SMSRCommand.self, SMDPCommand.self, ServeCommand.self, CallCommand.self, ListenCommand.self, TraceCommand.self, BenchCommand.self]
    )
}
