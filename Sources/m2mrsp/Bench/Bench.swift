// The benchmark harness behind `m2mrsp bench <suite>`: each figure is measured beside a baseline
// in the same run, because only ratios within one run are comparable on a noisy machine. `--json`
// prints {"suite", "figures": [{"name", "value", "unit", "baseline", "ratio", "target", "meets"}]};
// `--quick` runs a short version (< 30 s).

import Foundation

struct BenchFigure: Codable {
    let name: String
    let value: Double
    let unit: String
    let baseline: Double
    let ratio: Double
    let target: Double
    let meets: Bool
    /// A target on the value itself (e.g. "≥ 10000 EIS/s", "≤ 2 ms"), printed instead of the ratio target.
    var absoluteTarget: String? = nil
}

struct BenchReport: Codable {
    let suite: String
    let figures: [BenchFigure]
}

enum Bench {
    /// Runs `body` repeatedly for about `seconds` (after a warm-up) and returns operations per second.
    static func rate(seconds: Double, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<50 { try body() }
        var iterations = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var now = start
        let deadline = start + UInt64(seconds * 1e9)
        while now < deadline {
            for _ in 0..<64 { try body() }
            iterations += 64
            now = DispatchTime.now().uptimeNanoseconds
        }
        return Double(iterations) / (Double(now - start) / 1e9)
    }

    /// Interleaves the measured code and its baseline in rounds and keeps the best round of each,
    /// so a burst of noise on the machine does not decide the ratio.
    static func compare(rounds: Int, seconds: Double, _ measured: () throws -> Void, baseline: () throws -> Void) rethrows -> (Double, Double) {
        var best = (0.0, 0.0)
        for _ in 0..<rounds {
            best.0 = max(best.0, try rate(seconds: seconds, measured))
            best.1 = max(best.1, try rate(seconds: seconds, baseline))
        }
        return best
    }

    static func print(_ report: BenchReport, json: Bool) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            FileHandle.standardOutput.write(try encoder.encode(report))
            FileHandle.standardOutput.write(Data("\n".utf8))
            return
        }
        Swift.print("bench \(report.suite)")
        for f in report.figures {
            let target: String
            if let absolute = f.absoluteTarget {
                target = "(target \(absolute)) \(f.meets ? "meets" : "MISSES")"
            } else if f.target > 0 {
                target = "(target ≥ \(String(format: "%.2f", f.target))×) \(f.meets ? "meets" : "MISSES")"
            } else {
                target = "(no target)"
            }
            let line = "  \(f.name): \(format(f.value)) \(f.unit)  baseline \(format(f.baseline)) \(f.unit)  ratio \(String(format: "%.2f", f.ratio))× \(target)"
            Swift.print(line)
        }
    }

    static func format(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
    }
}
