// The fast DER walk (raw memory, no messages) must accept nothing the checked walk refuses: on the
// TS.48 fixtures and on thousands of seeded mutations of them (byte flips, truncations, length
// bumps, both length rules, small depth limits), whenever quickWalk says yes the checked walk says
// yes, and on the unmutated fixtures both say yes.

import Foundation
@testable import M2MWire
import Testing

@Suite("DER walk: fast path agrees with the checked walk")
struct DERWalkTests {
    static func fixtures() throws -> [[UInt8]] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/profiles")
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".der") }.sorted()
            .map { Array(try Data(contentsOf: directory.appendingPathComponent($0))) }
    }

    static func checked(_ bytes: [UInt8], depth: Int, maximumDepth: Int, minimal: Bool) -> Bool {
        (try? DERScan.checkedWalk(bytes, from: 0, to: bytes.count, depth: depth, maximumDepth: maximumDepth, minimalLengths: minimal)) != nil
    }

    @Test("Fixtures and seeded mutations: quick ⊆ checked, and equal on valid input")
    func agreement() throws {
        var seed: UInt64 = 0x5EED_0F_DE12
        func next() -> UInt64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return seed >> 33
        }
        var refusedByBoth = 0
        for package in try Self.fixtures() {
            for minimal in [true, false] {
                #expect(DERScan.quickWalk(package, from: 0, to: package.count, depth: 0, maximumDepth: 32, minimalLengths: minimal))
                #expect(Self.checked(package, depth: 0, maximumDepth: 32, minimal: minimal))
            }
            for round in 0..<3000 {
                var bytes = package
                switch round % 4 {
                case 0: bytes[Int(next()) % bytes.count] ^= UInt8(truncatingIfNeeded: 1 << (next() % 8))
                case 1: bytes.removeLast(Int(next()) % 64 + 1)
                case 2: bytes[Int(next()) % bytes.count] = [0x00, 0x1F, 0x80, 0x81, 0x84, 0xFF, 0x20, 0xBF][Int(next()) % 8]
                default:
                    let at = Int(next()) % bytes.count
                    bytes.insert(contentsOf: [0x81, 0x05], at: at)
                }
                let minimal = round % 3 != 0
                let maximumDepth = round % 5 == 0 ? 3 + Int(next()) % 4 : 32
                let depth = round % 7 == 0 ? 1 : 0
                let quick = DERScan.quickWalk(bytes, from: 0, to: bytes.count, depth: depth, maximumDepth: maximumDepth, minimalLengths: minimal)
                let full = Self.checked(bytes, depth: depth, maximumDepth: maximumDepth, minimal: minimal)
                #expect(!quick || full, "quick walk accepted what the checked walk refuses (round \(round))")
                #expect(quick == full, "the walks disagree (round \(round)): quick \(quick), checked \(full)")
                if !full { refusedByBoth += 1 }
            }
        }
        #expect(refusedByBoth > 1000)  // the mutations do reach the refusal paths
    }
}
