// `m2mrsp smdp init|import|inventory`: the SM-DP's inventory on a SQLite file (issue #7, first part;
// docs/cli/smdp.md, docs/smdp.md): Profile Types with their TS.48/TCA template and ICCID pools,
// templates and keys sealed with the SM-DP's storage key.

import ArgumentParser
import Foundation
import M2MCore
import M2MCrypto
import M2MRoles
import M2MStorage

struct SMDPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smdp",
        abstract: "An SM-DP's inventory on a SQLite file: Profile Types, templates, ICCID pools.",
        subcommands: [Init.self, Import.self, Inventory.self]
    )

    struct Common: ParsableArguments {
        @Option(help: "The SM-DP database (SQLite).")
        var db: String

        @Option(name: .customLong("key-file"), help: "The storage key that seals templates and keys at rest (64 hex digits; `init` creates it, mode 0600).")
        var keyFile: String

        func open(createKey: Bool = false) throws -> SMDPInventory {
            let key = try StorageKeyFile.load(keyFile, create: createKey, role: "SM-DP")
            return try SMDPInventory(store: try SQLiteSMDPStore(path: db), storageKey: key)
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the database and the storage key (TEST ONLY key file, mode 0600).")
        @OptionGroup var common: Common

        func run() throws {
            _ = try common.open(createKey: true)
            print("SM-DP inventory at \(common.db), storage key at \(common.keyFile)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import a Profile Type: its owner, its template package (DER) and a pool of ICCIDs (CSV).",
            discussion: """
                The pool is CSV with a header line naming its columns: iccid (required), imsi, ki, opc (hex). Every entry \
                is checked against the template before anything is stored (the template parses, each entry personalises it); \
                a refused pool leaves nothing. Importing again adds ICCIDs to the type (and replaces its template).
                """
        )
        @OptionGroup var common: Common

        @Option(name: .customLong("profile-type"), help: "The Profile Type's name.")
        var profileType: String

        @Option(help: "The Operator that owns the Profile Type (OID).")
        var mno: String

        @Option(help: "The template: a TCA profile package (DER).")
        var template: String

        @Option(help: "The pool (CSV: iccid,imsi,ki,opc).")
        var pool: String

        func run() throws {
            let inventory = try common.open()
            let entries = try Self.readPool(try InputFile.read(pool), source: pool)
            do {
                let count = try inventory.importProfileType(profileType, mno: try OID(text: mno), template: try InputFile.read(template), pool: entries)
                print("\(count) ICCIDs imported into \(profileType)")
            } catch let error as InventoryError {
                throw SMSRFailure("\(error)")
            }
        }

        static func readPool(_ bytes: [UInt8], source: String) throws -> [PoolEntry] {
            let lines = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard let header = lines.first?.lowercased().split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }),
                let iccidColumn = header.firstIndex(of: "iccid")
            else { throw SMSRFailure("\(source): the first line names the columns (iccid,imsi,ki,opc)") }
            if let unknown = header.first(where: { !["iccid", "imsi", "ki", "opc"].contains($0) }) { throw SMSRFailure("\(source): unknown column '\(unknown)'") }
            return try lines.dropFirst().enumerated().map { (offset, line) in
                let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard fields.count == header.count else { throw SMSRFailure("\(source):\(offset + 2): \(fields.count) fields, the header names \(header.count)") }
                func field(_ name: String) -> String? { header.firstIndex(of: name).map { fields[$0] }.flatMap { $0.isEmpty ? nil : $0 } }
                func key(_ name: String) throws -> SecureBytes? {
                    guard let text = field(name) else { return nil }
                    guard let bytes = Hex.decode(text) else { throw SMSRFailure("\(source):\(offset + 2): \(name) is not hex") }
                    return SecureBytes(bytes)
                }
                do {
                    return PoolEntry(iccid: try ICCID(text: fields[iccidColumn]), imsi: try field("imsi").map { try IMSI(text: $0) }, ki: try key("ki"), opc: try key("opc"))
                } catch let error as IdentifierError {
                    throw SMSRFailure("\(source):\(offset + 2): \(error)")
                }
            }
        }
    }

    struct Inventory: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print how many ICCIDs each Profile Type has available, reserved, installed and released.")
        @OptionGroup var common: Common

        func run() throws {
            let counts = try common.open().counts()
            let types = counts.map(\.profileType).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            print("profile type".padding(24) + InventoryItem.State.allCases.map { $0.rawValue.padding(12) }.joined())
            for type in types {
                let row = InventoryItem.State.allCases.map { state in String(counts.first { $0.profileType == type && $0.state == state }?.count ?? 0).padding(12) }
                print(type.padding(24) + row.joined())
            }
        }
    }
}
