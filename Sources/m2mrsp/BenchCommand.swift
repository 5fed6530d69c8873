// `m2mrsp bench <suite>`: speed figures beside a baseline measured in the same run (docs/cli/bench.md).

import ArgumentParser
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark suite; each figure is printed beside a baseline measured in the same run.",
        discussion: "Build with -c release for meaningful numbers (`make bench`). Suites: soap, crypto, policy, emulator, smsr, download, server, change.",
        subcommands: [SOAPBench.self, CryptoBench.self, PolicyBench.self, EmulatorBench.self, SMSRBench.self, DownloadBench.self, ServerBench.self, ChangeBench.self]
    )
}
