// `m2mrsp bench soap`: parse + typed decode + serialise of SGP.02 envelopes (ES4.EnableProfile and
// ES1.RegisterEIS) beside FoundationXML's XMLParser merely parsing the same bytes. Target: ≥ 2×.

import ArgumentParser
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import M2MSOAP
import M2MXML
import M2MTestKit

struct SOAPBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soap",
        abstract: "SOAP envelopes/s (parse + typed decode + serialise) beside XMLParser parsing the same bytes."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run (a few seconds).")
    var quick = false

    @Flag(help: "Also print where the time goes: XML parse, typed decode, serialise (no baseline).")
    var breakdown = false

    func run() throws {
        let cases: [(String, [UInt8])] = [
            ("ES4.EnableProfile", SOAPCodec.encode(SampleMessages.enableProfileEnvelope())),
            ("ES1.RegisterEIS", SOAPCodec.encode(SampleMessages.registerEISEnvelope())),
        ]
        var figures: [BenchFigure] = []
        for (name, bytes) in cases {
            // Check before timing: the round trip is exact.
            guard SOAPCodec.encode(try SOAPCodec.decode(bytes)) == bytes else {
                throw ValidationError("\(name): round trip is not byte-identical")
            }
            let data = Data(bytes)
            let delegate = CountingDelegate()
            let (ours, baseline) = try Bench.compare(rounds: quick ? 1 : 3, seconds: quick ? 0.5 : 1.5, {
                let envelope = try SOAPCodec.decode(bytes)
                let out = SOAPCodec.encode(envelope)
                precondition(out.count == bytes.count)
            }, baseline: {
                let parser = XMLParser(data: data)
                parser.shouldProcessNamespaces = true
                parser.delegate = delegate
                precondition(parser.parse())
            })
            if breakdown {
                let root = try XMLReader.parse(bytes)
                let envelope = try SOAPCodec.decode(root)
                let seconds = quick ? 0.3 : 1.0
                let parse = try Bench.rate(seconds: seconds) { _ = try XMLReader.parse(bytes) }
                let typed = try Bench.rate(seconds: seconds) { _ = try SOAPCodec.decode(root) }
                let write = Bench.rate(seconds: seconds) { _ = SOAPCodec.encode(envelope) }
                print("  \(name): XML parse \(Bench.format(parse))/s, typed decode \(Bench.format(typed))/s, serialise \(Bench.format(write))/s")
            }
            let ratio = ours / baseline
            figures.append(BenchFigure(
                name: "\(name) envelope (\(bytes.count) B) parse+decode+serialise", value: ours, unit: "envelopes/s",
                baseline: baseline, ratio: ratio, target: 2.0, meets: ratio >= 2.0))
        }
        try Bench.print(BenchReport(suite: "soap", figures: figures), json: json)
    }
}

/// XMLParser baseline delegate: counts elements, as the least a real consumer would do.
final class CountingDelegate: NSObject, XMLParserDelegate {
    var elements = 0
    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        elements += 1
    }
}
