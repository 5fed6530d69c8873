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
            let rounds = quick ? 1 : 3
            let seconds = quick ? 0.4 : 1.5
            let baselineParse = {
                let parser = XMLParser(data: data)
                parser.shouldProcessNamespaces = true
                parser.delegate = delegate
                precondition(parser.parse())
            }
            // (1) XML level: M2MXML parse + serialise of the tree.
            let (xml, xmlBaseline) = try Bench.compare(rounds: rounds, seconds: seconds, {
                let root = try XMLReader.parse(bytes)
                let out = root.serialized(preferredPrefixes: Namespace.preferredPrefixes)
                precondition(!out.isEmpty)
            }, baseline: baselineParse)
            figures.append(BenchFigure(
                name: "\(name) (\(bytes.count) B) XML parse+serialise", value: xml, unit: "envelopes/s",
                baseline: xmlBaseline, ratio: xml / xmlBaseline, target: 2.0, meets: xml / xmlBaseline >= 2.0))
            // (2) The whole SGP.02 path: parse, typed decode (validating every identifier), serialise.
            let (typed, typedBaseline) = try Bench.compare(rounds: rounds, seconds: seconds, {
                let envelope = try SOAPCodec.decode(bytes)
                let out = SOAPCodec.encode(envelope)
                precondition(out.count == bytes.count)
            }, baseline: baselineParse)
            figures.append(BenchFigure(
                name: "\(name) (\(bytes.count) B) SGP.02 parse+decode+serialise", value: typed, unit: "envelopes/s",
                baseline: typedBaseline, ratio: typed / typedBaseline, target: 2.0, meets: typed / typedBaseline >= 2.0))
            if breakdown {
                let root = try XMLReader.parse(bytes)
                let envelope = try SOAPCodec.decode(root)
                let parse = try Bench.rate(seconds: seconds) { _ = try XMLReader.parse(bytes) }
                let decode = try Bench.rate(seconds: seconds) { _ = try SOAPCodec.decode(root) }
                let write = Bench.rate(seconds: seconds) { _ = SOAPCodec.encode(envelope) }
                let xmlWrite = Bench.rate(seconds: seconds) { _ = root.serialized(preferredPrefixes: Namespace.preferredPrefixes) }
                print("  \(name): XML parse \(Bench.format(parse))/s, typed decode \(Bench.format(decode))/s, "
                      + "SOAP serialise \(Bench.format(write))/s, XML tree serialise \(Bench.format(xmlWrite))/s")
            }
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
