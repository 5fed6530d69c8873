import Foundation
import M2MSOAP

/// Paths of the repository (tests run from a source checkout).
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let golden = root.appendingPathComponent("Tests/M2MSOAPTests/Golden")
    static let xsd = root.appendingPathComponent("xsd")

    /// Every golden envelope, sorted.
    static func goldenFiles() throws -> [URL] {
        var files: [URL] = []
        for interface in try FileManager.default.contentsOfDirectory(atPath: golden.path).sorted() where interface.hasPrefix("ES") {
            let folder = golden.appendingPathComponent(interface)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() where name.hasSuffix(".xml") {
                files.append(folder.appendingPathComponent(name))
            }
        }
        return files
    }

    static func bytes(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }
}

/// Runs `xmllint --noout --nonet --schema <schema> files…` (installed by scripts/bootstrap.sh).
enum XMLLint {
    struct Result {
        let status: Int32
        let output: String
    }

    static func validate(schema: String, files: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xmllint", "--noout", "--nonet", "--schema", schema] + files
        process.currentDirectoryURL = Repo.xsd
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self).split(separator: "\n")
            .filter { !$0.contains("Skipping import") && !$0.contains("element import: Schemas parser warning") }
            .joined(separator: "\n")
        return Result(status: process.terminationStatus, output: output)
    }

    static func temporaryFile(_ bytes: [UInt8], name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-xmllint-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }
}
