// `m2mrsp soap decode|encode|functions|validate`: inspect and craft SGP.02 SOAP traffic (docs/cli/soap.md).

import ArgumentParser
import Foundation
import M2MCore
import M2MSOAP
import M2MXML

struct SOAPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soap",
        abstract: "Decode, encode and list SGP.02 SOAP 1.2 messages.",
        subcommands: [Decode.self, Encode.self, Functions.self]
    )

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print an SGP.02 envelope as typed JSON (header, Action, function, every field).",
            discussion: """
                Reads a SOAP 1.2 envelope from FILE, or standard input when FILE is '-' or absent, checks it \
                (well-formed, no DTD, SOAP 1.2, WS-Addressing, Action matches body, every element per the schema) \
                and prints its JSON form. On bad input it prints the error with its SGP.02 subject/reason codes \
                and the SOAP Fault a server would answer with, and exits 1.
                """
        )

        @Argument(help: "Envelope file, or '-' for standard input.")
        var file: String = "-"

        @Option(help: "Largest document accepted, in bytes.")
        var maxBytes: Int = 4 << 20

        func run() throws {
            let bytes = try InputFile.read(file)
            var limits = XMLLimits.default
            limits.maxDocumentBytes = maxBytes
            do {
                let json = try EnvelopeJSON.json(fromEnvelope: bytes, limits: limits)
                FileHandle.standardOutput.write(json)
                FileHandle.standardOutput.write(Data("\n".utf8))
            } catch let error as SOAPError {
                throw ReportedSOAPError(error: error)
            }
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build an SGP.02 envelope from its JSON form (as `soap decode` prints it).",
            discussion: """
                Reads JSON from FILE or standard input, validates every identifier (EID check digits, ICCID \
                Luhn, OIDs …) and writes the SOAP 1.2 envelope. When the header has no \"action\", the canonical \
                Action of the message is used.
                """
        )

        @Argument(help: "JSON file, or '-' for standard input.")
        var file: String = "-"

        @Flag(help: "Write the envelope on one line instead of indented.")
        var compact = false

        func run() throws {
            let data = Data(try InputFile.read(file))
            do {
                let bytes = try EnvelopeJSON.envelope(fromJSON: data, indent: compact ? 0 : 2)
                FileHandle.standardOutput.write(Data(bytes))
            } catch let error as SOAPError {
                throw ReportedSOAPError(error: error)
            }
        }
    }

    struct Functions: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every SGP.02 function with its pattern, section, caller and body elements."
        )

        @Option(help: "Only this interface (ES1, ES2, ES3, ES4, ES4A, ES7).")
        var interface: String?

        func run() throws {
            var count = 0
            for info in FunctionInfo.all where interface == nil || info.id.interface.rawValue.lowercased() == interface!.lowercased() {
                let elements = [info.message.descriptor.elementName] + (info.response.map { [$0.descriptor.elementName] } ?? [])
                let source = info.source == .gsma ? "GSMA v3" : "m2mrsp v4"
                print("\(info.id.description.padding(47)) §\(info.section.padding(7)) \(info.pattern.rawValue.padding(13)) \(source.padding(10)) \(info.caller) → \(info.receiver)")
                print("    \(elements.joined(separator: ", "))")
                count += 1
            }
            print("\(count) functions")
        }
    }
}

/// A SOAP error as the CLI reports it: message, SGP.02 codes and the Fault a server would send.
struct ReportedSOAPError: Error, CustomStringConvertible {
    let error: SOAPError
    var description: String {
        var text = "error: \(error)"
        if let function = error.function { text += "\n  function: \(function)" }
        text += "\n  status: \(error.executionStatus)"
        text += "\n  fault: \(error.fault)"
        return text
    }
}

enum InputFile {
    static func read(_ path: String) throws -> [UInt8] {
        if path == "-" {
            return Array(FileHandle.standardInput.readDataToEndOfFile())
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read \(path)")
        }
        return Array(data)
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
