import Foundation
import M2MCore
import M2MWire
import Testing

// TCA profile packages on the GSMA TS.48 test profiles (Fixtures/profiles/PROVENANCE.md) and the EUICCResponse
// (spec/sgp02-oncard.md §5, §2.4). Expected values were read from the bytes independently of this reader.

enum ProfileFixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/profiles")

    static func load(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
    }

    struct Expected: Sendable, CustomTestStringConvertible {
        let file: String
        let size: Int
        let version: (Int, Int)
        let services: [String]
        let gfsteCount: Int
        let types: [String]
        let identifications: [Int]
        /// Sizes of header, MF, largest PE (opt-usim).
        let headerSize: Int
        let mfSize: Int
        let optUSIMSize: Int

        var testDescription: String { "\(file) v\(version.0).\(version.1)" }
    }

    static let commonTypes = [
        "header", "mf", "pukCodes", "pinCodes", "telecom", "pinCodes", "genericFileManagement", "usim", "opt-usim", "pinCodes",
        "akaParameter", "gsm-access", "csim", "opt-csim", "pinCodes", "cdmaParameter", "isim", "opt-isim", "pinCodes",
        "akaParameter", "genericFileManagement", "genericFileManagement", "securityDomain", "rfm", "rfm", "rfm", "rfm", "end",
    ]
    static let commonIDs = [4, 5, 2, 7, 3, 21, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28, 29]

    static let all: [Expected] = [
        Expected(
            file: "TS48v2_SAIP2.1_BERTLV.der", size: 12257, version: (2, 1),
            services: ["usim", "isim", "csim", "usim-test-algorithm", "ber-tlv"], gfsteCount: 9,
            types: commonTypes, identifications: commonIDs, headerSize: 140, mfSize: 763, optUSIMSize: 2607),
        Expected(
            file: "TS48v5_SAIP2.1A_NoBERTLV.der", size: 12060, version: (2, 1),
            services: ["usim", "isim", "csim", "usim-test-algorithm"], gfsteCount: 9,
            types: commonTypes, identifications: commonIDs, headerSize: 138, mfSize: 779, optUSIMSize: 2529),
        Expected(
            file: "TS48v5_SAIP2.3_BERTLV_SUCI.der", size: 12284, version: (2, 3),
            services: ["usim", "isim", "csim", "usim-test-algorithm", "ber-tlv", "get-identity", "profile-a-x25519", "profile-b-p256"],
            gfsteCount: 11,
            types: Array(commonTypes[0...11]) + ["df-5gs", "df-saip"] + Array(commonTypes[12...]),
            identifications: [4, 5, 2, 7, 3, 23, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31],
            headerSize: 162, mfSize: 779, optUSIMSize: 2529),
    ]

    /// The SUCI fixture split into its PEs (for building broken packages).
    static func suciElements() throws -> [[UInt8]] {
        try ProfilePackage(der: load("TS48v5_SAIP2.3_BERTLV_SUCI.der")).elements.map(\.encoded)
    }
}

/// A small seeded generator (SplitMix64), so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Luhn over decimal digits, independent of M2MCore.
func luhnValid(_ digits: String) -> Bool {
    var sum = 0
    for (position, character) in digits.reversed().enumerated() {
        guard var value = character.wholeNumberValue else { return false }
        if position % 2 == 1 {
            value *= 2
            if value > 9 { value -= 9 }
        }
        sum += value
    }
    return sum % 10 == 0
}

/// Parses `bytes` in segments drawn from `sizes`, returning the PEs and the summary, or the error.
func streamParse(
    _ bytes: [UInt8], options: ProfilePackage.Options = .init(), segment: (inout SeededGenerator) -> Int, seed: UInt64,
    maxBuffered: inout Int
) -> Result<([ProfileElement], ProfilePackageSummary), ProfilePackageError> {
    var generator = SeededGenerator(seed: seed)
    var stream = ProfilePackageStream(options: options)
    var elements: [ProfileElement] = []
    var offset = 0
    do throws(ProfilePackageError) {
        while offset < bytes.count {
            let size = min(segment(&generator), bytes.count - offset)
            elements += try stream.append(bytes[offset..<(offset + size)])
            maxBuffered = max(maxBuffered, stream.bufferedByteCount)
            offset += size
        }
        return .success((elements, try stream.finish()))
    } catch {
        return .failure(error)
    }
}

func parseError(_ bytes: [UInt8], options: ProfilePackage.Options = .init()) -> ProfilePackageError? {
    do throws(ProfilePackageError) {
        _ = try ProfilePackage(der: bytes, options: options)
        return nil
    } catch {
        return error
    }
}

@Suite("TCA profile package (TS.48) and EUICCResponse")
struct ProfilePackageTests {
    // MARK: Fixtures

    @Test("TS.48 fixtures parse: header fields, PE sequence, identifications, sizes", arguments: ProfileFixtures.all)
    func fixtures(_ expected: ProfileFixtures.Expected) throws {
        let bytes = try ProfileFixtures.load(expected.file)
        #expect(bytes.count == expected.size)
        let package = try ProfilePackage(der: bytes)
        let header = package.header
        #expect(header.majorVersion == expected.version.0)
        #expect(header.minorVersion == expected.version.1)
        #expect(header.profileType == "GSMA Generic eUICC Test Profile")
        #expect(header.iccidBytes == [0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x41])
        #expect(header.iccid.text == "89000123456789012341")
        #expect(luhnValid(header.iccid.digits))
        #expect(header.pol == nil)
        #expect(header.connectivityParameters == nil)
        #expect(header.mandatoryAIDs == nil && header.mandatoryAIDList.isEmpty)
        #expect(header.iotOptions == nil && header.extensions.isEmpty)
        #expect(header.mandatoryServiceNames == expected.services)
        #expect(header.mandatoryServices.count == expected.services.count * 2)  // one `8x 00` per service
        #expect(header.mandatoryGFSTEList.count == expected.gfsteCount)
        #expect(header.mandatoryGFSTEList.first?.text == "2.23.143.1.2.1")
        #expect(header.mandatoryGFSTEList.allSatisfy { $0.text.hasPrefix("2.23.143.1.2.") })

        #expect(package.elements.map(\.type.name) == expected.types)
        #expect(package.elements.dropFirst().map { $0.identification ?? -1 } == expected.identifications)
        #expect(package.summary.identifications == expected.identifications)
        #expect(package.elements.first?.identification == nil)
        #expect(package.elements.dropFirst().allSatisfy { $0.mandated && $0.isSupported })
        #expect(package.elements.enumerated().allSatisfy { $0.offset == $0.element.index })
        #expect(package.elements.first?.size == expected.headerSize)
        #expect(package.elements(of: .mf).map(\.size) == [expected.mfSize])
        #expect(package.elements.map(\.size).max() == expected.optUSIMSize)
        #expect(package.elements(of: .optUSIM).map(\.size) == [expected.optUSIMSize])
        #expect(package.elements.last?.encoded.count == 9)  // AA 07 A0 05 80 00 81 01 id

        // Sizes and counts: the metadata the emulator keeps; the bytes come back unchanged for the digest.
        #expect(package.totalSize == expected.size)
        #expect(package.elements.map(\.size).reduce(0, +) == expected.size)
        #expect(package.encoded == bytes)
        #expect(package.elements.allSatisfy { Array(bytes[$0.range]) == $0.encoded })
        #expect(package.summary.elementCount == expected.types.count)
        var counts: [String: Int] = [:]
        for name in expected.types { counts[name, default: 0] += 1 }
        #expect(Dictionary(uniqueKeysWithValues: package.counts.map { ($0.key.name, $0.value) }) == counts)
        #expect(package.count(of: .pinCodes) == 5 && package.count(of: .rfm) == 4 && package.count(of: .genericFileManagement) == 3)
        #expect(package.summary.skippedCount == 0)
        print("\(expected.file): \(package.summary)")
    }

    @Test("Header ICCID is plain BCD; MF/EF.ICCID carries the nibble-swapped form")
    func iccidForms() throws {
        for expected in ProfileFixtures.all {
            let package = try ProfilePackage(der: try ProfileFixtures.load(expected.file))
            let swapped = package.header.iccidBytes.map { $0 << 4 | $0 >> 4 }
            #expect(swapped == [0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14])
            let mf = try #require(package.elements(of: .mf).first).encoded
            #expect(mf.indices.contains { Array(mf[$0..<min($0 + 10, mf.count)]) == swapped })
            // Read swapped, the header would start with 98: not an ICCID at all.
            #expect(throws: IdentifierError.self) { try ICCID(text: "98001032547698103214") }
        }
    }

    @Test("A stand-alone ProfileHeader TLV parses the same as inside the package")
    func standaloneHeader() throws {
        let bytes = try ProfileFixtures.load("TS48v5_SAIP2.3_BERTLV_SUCI.der")
        let package = try ProfilePackage(der: bytes)
        let header = try ProfileHeader(encoded: package.elements[0].encoded)
        #expect(header == package.header)
        #expect(throws: ProfilePackageError(code: .malformed)) { try ProfileHeader(encoded: package.elements[0].encoded + [0]) }
        #expect(throws: ProfilePackageError(code: .invalidProfileHeader)) { try ProfileHeader(encoded: package.elements[1].encoded) }
    }

    // MARK: Streaming

    @Test("Streaming in random segments (1…1500 bytes, seeded) gives the same PEs, buffering only the open PE", arguments: ProfileFixtures.all)
    func streaming(_ expected: ProfileFixtures.Expected) throws {
        let bytes = try ProfileFixtures.load(expected.file)
        let whole = try ProfilePackage(der: bytes)
        let largest = whole.elements.map(\.size).max() ?? 0
        for seed in UInt64(1)...40 {
            var maxBuffered = 0
            let result = streamParse(bytes, segment: { Int.random(in: 1...1500, using: &$0) }, seed: seed, maxBuffered: &maxBuffered)
            let (elements, summary) = try result.get()
            #expect(elements == whole.elements)
            #expect(summary == whole.summary)
            #expect(maxBuffered < largest)
        }
        // SCP03t-like 1024-byte segments (WT trace), and the extreme of one byte at a time.
        for segment in [1024, 1] {
            var maxBuffered = 0
            let (elements, _) = try streamParse(bytes, segment: { _ in segment }, seed: 0, maxBuffered: &maxBuffered).get()
            #expect(elements == whole.elements)
            #expect(maxBuffered < largest)
        }
    }

    @Test("The stream returns each PE as soon as its last byte arrives, and stays complete after End")
    func streamingIncremental() throws {
        let bytes = try ProfileFixtures.load("TS48v2_SAIP2.1_BERTLV.der")
        let whole = try ProfilePackage(der: bytes)
        var stream = ProfilePackageStream()
        let headerEnd = whole.elements[0].size
        #expect(try stream.append(bytes[0..<(headerEnd - 1)]).isEmpty)
        #expect(stream.header == nil && stream.bufferedByteCount == headerEnd - 1)
        let first = try stream.append(bytes[(headerEnd - 1)..<(headerEnd + 4)])
        #expect(first.map(\.type) == [.header])
        #expect(stream.header == whole.header)
        #expect(stream.bufferedByteCount == 4 && stream.receivedByteCount == headerEnd + 4)
        let rest = try stream.append(bytes[(headerEnd + 4)...])
        #expect(rest.count == whole.elements.count - 1)
        #expect(stream.isComplete && stream.bufferedByteCount == 0)
        #expect(try stream.append([UInt8]()).isEmpty)
        #expect(try stream.finish() == whole.summary)
    }

    @Test("The stream rejects at the first bad PE, before the rest arrives, and stays failed")
    func streamingFailFast() throws {
        let pes = try ProfileFixtures.suciElements()
        // MF first: refused on its tag and length alone (4 bytes), before the header could come.
        var stream = ProfilePackageStream()
        #expect(throws: ProfilePackageError(code: .headerNotFirst)) { try stream.append(pes[1].prefix(4)) }
        #expect(throws: ProfilePackageError(code: .headerNotFirst)) { try stream.append(pes[0]) }
        #expect(throws: ProfilePackageError(code: .headerNotFirst)) { try stream.finish() }

        // A bad identification in PE 3 is refused when PE 3 completes, not at finish().
        var broken = pes
        broken[3] = try ProfilePackageTests.settingIdentification(of: pes[3], to: 4)
        stream = ProfilePackageStream()
        #expect(try stream.append(broken[0] + broken[1] + broken[2]).count == 3)
        do throws(ProfilePackageError) {
            _ = try stream.append(broken[3].prefix(broken[3].count - 1))
            _ = try stream.append(broken[3].suffix(1))
            Issue.record("duplicate identification accepted")
        } catch {
            #expect(error.code == .duplicateIdentification && error.elementIndex == 3 && error.identification == 4)
        }

        // An absurd length is refused on arrival of the length, whatever follows.
        stream = ProfilePackageStream()
        _ = try stream.append(pes[0])
        #expect(throws: ProfilePackageError(code: .elementTooLarge)) { try stream.append([0xB0, 0x83, 0xFF, 0xFF, 0xFF]) }
    }

    // MARK: EUICCResponse

    @Test("EUICCResponse: the real card's success bytes 30 07 A0 05 30 03 80 01 00")
    func euiccResponseSuccess() throws {
        let real: [UInt8] = [0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00]
        #expect(EUICCResponse.success.encoded == real)
        #expect(EUICCResponse(peStatus: [PEStatus(status: .ok)]).encoded == real)
        let decoded = try EUICCResponse(encoded: real)
        #expect(decoded == .success)
        #expect(decoded.isSuccess)
        #expect(decoded.peStatus.first?.status == .ok && decoded.peStatus.first?.identification == nil)
    }

    @Test("EUICCResponse: failures, status words, round trips and strict decoding")
    func euiccResponseFailures() throws {
        let failure = EUICCResponse(peStatus: [PEStatus(status: .invalidRequestFormat, identification: 29)], profileInstallationAborted: true)
        #expect(failure.encoded == [0x30, 0x0C, 0xA0, 0x08, 0x30, 0x06, 0x80, 0x01, 0x05, 0x81, 0x01, 0x1D, 0x81, 0x00])
        #expect(try EUICCResponse(encoded: failure.encoded) == failure)
        #expect(!failure.isSuccess)

        let full = EUICCResponse(
            peStatus: [
                PEStatus(status: .ok, identification: 1), PEStatus(status: .badValues, identification: 300, additionalInformation: 7, offset: 70000),
                PEStatus(status: try #require(PEStatus.Status(statusWord: 0x6A80))),
            ],
            profileInstallationAborted: true, statusMessage: "ICCID refusé")
        #expect(try EUICCResponse(encoded: full.encoded) == full)
        #expect(PEStatus.Status(statusWord: 0x6A80)?.rawValue == 27264)
        #expect(PEStatus.Status(statusWord: 0x9000)?.name == "sw-9000")
        #expect(PEStatus.Status(statusWord: 0x4000) == nil)
        #expect(PEStatus(status: try #require(PEStatus.Status(statusWord: 0x9000))).tlv.encoded == [0x30, 0x05, 0x80, 0x03, 0x00, 0x90, 0x00])
        #expect(PEStatus.Status.unsupportedProfileVersion.name == "unsupported-profile-version")

        // An extension field in PEStatus ([4]) is skipped; other oddities are refused.
        #expect(try EUICCResponse(encoded: [0x30, 0x0A, 0xA0, 0x08, 0x30, 0x06, 0x80, 0x01, 0x00, 0x84, 0x01, 0x01]) == .success)
        let bad: [([UInt8], TLVError.Code)] = [
            ([0x31, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00], .unexpectedTag),  // SET, not SEQUENCE
            ([0x30, 0x02, 0x81, 0x00], .missingTag),  // no peStatus
            ([0x30, 0x09, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00], .truncated),
            ([0x30, 0x0A, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00, 0x81, 0x01, 0x00], .invalidValue),  // NULL with content
            ([0x30, 0x05, 0xA0, 0x03, 0x30, 0x01, 0x81], .truncated),
            ([0x30, 0x04, 0xA0, 0x02, 0x30, 0x00], .missingTag),  // PEStatus without status
            ([0x30, 0x08, 0xA0, 0x06, 0x30, 0x04, 0x80, 0x02, 0x00, 0x05], .invalidValue),  // non-minimal INTEGER
            ([0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0xFF], .invalidValue),  // negative
            ([0x30, 0x0C, 0xA0, 0x0A, 0x30, 0x08, 0x80, 0x01, 0x00, 0x81, 0x03, 0x00, 0x9C, 0x40], .invalidValue),  // id 40000
            ([0x30, 0x0A, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00, 0x82, 0x01, 0x41], .invalidValue),  // message of 1 char
            ([0x30, 0x0A, 0xA0, 0x08, 0x30, 0x06, 0x81, 0x01, 0x01, 0x80, 0x01, 0x00], .unexpectedTag),  // out of order
            ([0x30, 0x09, 0x81, 0x00, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00], .unexpectedTag),
        ]
        for (bytes, code) in bad {
            #expect(throws: TLVError(code: code), "\(Hex.encode(bytes))") { try EUICCResponse(encoded: bytes) }
        }
    }

    @Test("Every error code maps to its PEStatus; the failure answer carries identification and in-PE offset")
    func statusMapping() throws {
        let expected: [String: Int] = [
            "empty": 5, "truncated": 5, "malformed": 5, "notAProfileElement": 5, "missingElementHeader": 5, "headerNotFirst": 5,
            "mfNotSecond": 5, "duplicateElement": 5, "dataAfterEnd": 5, "missingEnd": 5, "missingPrerequisite": 5,
            "invalidElementHeader": 3, "duplicateIdentification": 3, "invalidProfileHeader": 3, "invalidICCID": 3,
            "mandatoryServiceWithoutElement": 3, "unsupportedProfileVersion": 31, "unsupportedElement": 1,
            "elementTooLarge": 4, "packageTooLarge": 4,
        ]
        #expect(Dictionary(uniqueKeysWithValues: ProfilePackageError.Code.all.map { ($0.name, $0.status.rawValue) }) == expected)

        var pes = try ProfileFixtures.suciElements()
        pes[2] = try ProfilePackageTests.settingIdentification(of: pes[2], to: 4)
        let error = try #require(parseError(pes.flatMap { $0 }))
        #expect(error.code == .duplicateIdentification)
        #expect(error.peStatus == PEStatus(status: .badValues, identification: 4, offset: 2))
        #expect(error.euiccResponse.encoded == [0x30, 0x0F, 0xA0, 0x0B, 0x30, 0x09, 0x80, 0x01, 0x03, 0x81, 0x01, 0x04, 0x83, 0x01, 0x02, 0x81, 0x00])
        #expect(try EUICCResponse(encoded: error.euiccResponse.encoded) == EUICCResponse.failure(error))
    }

    // MARK: Broken packages

    /// Sets the identification of a PE whose PEHeader is `A0 05 80 00 81 01 id`.
    static func settingIdentification(of pe: [UInt8], to id: UInt8) throws -> [UInt8] {
        let valueOffset = pe[1] < 0x80 ? 2 : 2 + Int(pe[1] & 0x7F)
        try #require(Array(pe[valueOffset..<(valueOffset + 6)]) == [0xA0, 0x05, 0x80, 0x00, 0x81, 0x01])
        var copy = pe
        copy[valueOffset + 6] = id
        return copy
    }

    /// A ProfileHeader PE made of `fields` (the TS.48 values unless replaced).
    static func header(_ fields: [TLV]) -> [UInt8] { TLV(0xA0, children: fields).encoded }

    static let ts48HeaderFields: [TLV] = [
        TLV(0x80, [2]), TLV(0x81, [3]), TLV(0x82, Array("GSMA Generic eUICC Test Profile".utf8)),
        TLV(0x83, [0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x41]),
        TLV(0xA5, [0x81, 0x00, 0x82, 0x00, 0x83, 0x00]),
        TLV(0xA6, children: [TLV(0x06, [0x67, 0x81, 0x0F, 0x01, 0x02, 0x01])]),
    ]

    func expectRefusal(
        _ bytes: [UInt8], _ code: ProfilePackageError.Code, index: Int? = nil, options: ProfilePackage.Options = .init(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error = parseError(bytes, options: options) else {
            Issue.record("accepted, expected \(code)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.peStatus.status == code.status, sourceLocation: sourceLocation)
        if let index { #expect(error.elementIndex == index, "\(error)", sourceLocation: sourceLocation) }
        // The same bytes in random segments fail identically.
        var buffered = 0
        if case .failure(let streamed) = streamParse(
            bytes, options: options, segment: { Int.random(in: 1...300, using: &$0) }, seed: UInt64(bytes.count), maxBuffered: &buffered)
        {
            #expect(streamed.code == error.code && streamed.elementIndex == error.elementIndex && streamed.offset == error.offset, sourceLocation: sourceLocation)
        } else {
            Issue.record("streaming accepted, expected \(code)", sourceLocation: sourceLocation)
        }
    }

    @Test("Order and occurrence: missing header, header not first, MF not second, duplicates, PEs after End, missing End")
    func ordering() throws {
        let pes = try ProfileFixtures.suciElements()
        func join(_ list: [[UInt8]]) -> [UInt8] { list.flatMap { $0 } }
        expectRefusal(join(Array(pes.dropFirst())), .headerNotFirst, index: 0)
        expectRefusal(join([pes[1], pes[0]] + pes[2...]), .headerNotFirst, index: 0)
        expectRefusal(join([pes[0], pes[2], pes[1]] + pes[3...]), .mfNotSecond, index: 1)
        expectRefusal(join([pes[0], pes[1], pes[0]] + pes[2...]), .duplicateElement, index: 2)
        expectRefusal(join(Array(pes[0...3]) + [pes[1]] + pes[4...]), .duplicateElement, index: 4)
        expectRefusal(join(Array(pes[0...4]) + [pes[4]] + pes[5...]), .duplicateElement, index: 5)  // telecom twice
        expectRefusal(join(pes + [pes[25]]), .dataAfterEnd, index: 30)  // an rfm after End
        expectRefusal(join(pes + [pes[29]]), .dataAfterEnd, index: 30)  // a second End
        expectRefusal(join(pes) + [0x00], .dataAfterEnd, index: 30)  // one trailing byte
        expectRefusal(join(Array(pes.dropLast())), .missingEnd, index: 29)
        expectRefusal(join(Array(pes.prefix(1))), .mfNotSecond)
        expectRefusal([], .empty)
        // End early: with usim/isim/csim mandatory, End checks their PEs; without mandatory services, whatever
        // follows End is refused.
        expectRefusal(join(Array(pes[0...1]) + [pes[29]] + pes[2...28]), .mandatoryServiceWithoutElement, index: 2)
        var noServices = ProfilePackageTests.ts48HeaderFields
        noServices[4] = TLV(0xA5, [])
        expectRefusal(join([ProfilePackageTests.header(noServices), pes[1], pes[29]] + pes[2...28]), .dataAfterEnd, index: 3)
        #expect(try ProfilePackage(der: join([ProfilePackageTests.header(noServices), pes[1], pes[29]])).elements.count == 3)
        // opt-usim without usim (pySim check_optional_ordering), df-5gs before usim.
        expectRefusal(join(Array(pes[0...6]) + pes[8...]), .missingPrerequisite, index: 7)
        expectRefusal(join(Array(pes[0...6]) + [pes[12]] + pes[7...11] + pes[13...]), .missingPrerequisite, index: 7)
        // csim mandatory in the header, but neither PE-CSIM nor PE-OPT-CSIM come (pySim check_mandatory_services).
        expectRefusal(join(Array(pes[0...13]) + pes[16...]), .mandatoryServiceWithoutElement, index: 27)
    }

    @Test("Identification numbers and PEHeaders")
    func elementHeaders() throws {
        let pes = try ProfileFixtures.suciElements()
        func join(_ list: [[UInt8]]) -> [UInt8] { list.flatMap { $0 } }
        var broken = pes
        broken[2] = try ProfilePackageTests.settingIdentification(of: pes[2], to: 4)  // pukCodes takes the MF's number
        expectRefusal(join(broken), .duplicateIdentification, index: 2)
        broken = pes
        broken[29] = try ProfilePackageTests.settingIdentification(of: pes[29], to: 0x1E)  // End takes the last rfm's
        expectRefusal(join(broken), .duplicateIdentification, index: 29)

        // mandated field moved after identification ([2] then [1]): out of order.
        broken = pes
        broken[2][4] = 0x82
        expectRefusal(join(broken), .invalidElementHeader, index: 2)
        // mandated NULL with content: 80 01 00 instead of 80 00 81 ...
        broken = pes
        broken[2][5] = 0x01
        expectRefusal(join(broken), .invalidElementHeader, index: 2)
        // No PEHeader: the first component retagged A1.
        broken = pes
        broken[2][2] = 0xA1
        expectRefusal(join(broken), .missingElementHeader, index: 2)
        // identification as a non-minimal INTEGER (81 02 00 05) and out of UInt15 range (81 03 01 00 00).
        let puk = try ProfilePackage(der: join(pes)).elements[2]
        let body = Array(puk.value.dropFirst(7))
        for header: [UInt8] in [[0xA0, 0x06, 0x80, 0x00, 0x81, 0x02, 0x00, 0x05], [0xA0, 0x07, 0x80, 0x00, 0x81, 0x03, 0x01, 0x00, 0x00]] {
            broken = pes
            broken[2] = TLV(0xA3, header + body).encoded
            expectRefusal(join(broken), .invalidElementHeader, index: 2)
        }
        // PEHeader without identification.
        broken = pes
        broken[2] = TLV(0xA3, [0xA0, 0x02, 0x80, 0x00] + body).encoded
        expectRefusal(join(broken), .invalidElementHeader, index: 2)
        // Not mandated: accepted.
        broken = pes
        broken[2] = TLV(0xA3, [0xA0, 0x03, 0x81, 0x01, 0x05] + body).encoded
        let relaxed = try ProfilePackage(der: join(broken))
        #expect(relaxed.elements[2].mandated == false && relaxed.elements[2].identification == 5)
    }

    @Test("ProfileHeader values: version, ICCID, fields, optional pol/connectivity/AIDs")
    func headerValues() throws {
        let pes = try ProfileFixtures.suciElements()
        let rest = pes.dropFirst().flatMap { $0 }
        var fields = ProfilePackageTests.ts48HeaderFields
        func with(_ change: (inout [TLV]) -> Void) -> [UInt8] {
            var copy = ProfilePackageTests.ts48HeaderFields
            change(&copy)
            return ProfilePackageTests.header(copy) + rest
        }
        // The hand-made header is accepted and read back.
        let plain = try ProfilePackage(der: ProfilePackageTests.header(fields) + rest)
        #expect(plain.header.mandatoryServiceNames == ["usim", "isim", "csim"] && plain.header.minorVersion == 3)

        // Optional fields present: pol, connectivityParameters, eUICC-Mandatory-AIDs, iotOptions, an extension [10].
        let aid: [UInt8] = [0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02]
        fields.insert(TLV(0x84, [0x02]), at: 4)
        fields.append(TLV(0x87, [0xA0, 0x03, 0x06, 0x01, 0x91]))
        fields.append(TLV(0xA8, children: [TLV(0x30, children: [TLV(0x80, aid), TLV(0x81, [0x01, 0x00])])]))
        fields.append(TLV(0xA9, children: [TLV(0x80, [1, 2, 3, 4, 5, 6, 7])]))
        fields.append(TLV(0x8A, [0xEE]))
        let rich = try ProfilePackage(der: ProfilePackageTests.header(fields) + rest).header
        #expect(rich.pol == [0x02])
        #expect(rich.connectivityParameters == [0xA0, 0x03, 0x06, 0x01, 0x91])
        #expect(rich.mandatoryAIDList == [ProfileHeader.MandatoryAID(aid: aid, version: [0x01, 0x00])])
        #expect(rich.mandatoryAIDs == TLV(0x30, children: [TLV(0x80, aid), TLV(0x81, [0x01, 0x00])]).encoded)
        #expect(rich.iotOptions == [0x80, 0x07, 1, 2, 3, 4, 5, 6, 7])
        #expect(rich.extensions == [TLV(0x8A, [0xEE])])

        // Versions: unsupported major → 31; options decide.
        expectRefusal(with { $0[0] = TLV(0x80, [9]) }, .unsupportedProfileVersion, index: 0)
        expectRefusal(with { $0[0] = TLV(0x80, [1]) }, .unsupportedProfileVersion, index: 0)
        #expect(throws: Never.self) { try ProfilePackage(der: with { $0[0] = TLV(0x80, [1]) }, options: .init(supportedMajorVersions: 1...3)) }
        let fixture = try ProfileFixtures.load("TS48v2_SAIP2.1_BERTLV.der")
        expectRefusal(fixture, .unsupportedProfileVersion, index: 0, options: .init(supportedMajorVersions: 3...3))

        // ICCID: wrong Luhn digit, a non-BCD nibble, a digit after F padding, 9 bytes, not 89….
        expectRefusal(with { $0[3] = TLV(0x83, [0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x42]) }, .invalidICCID, index: 0)
        expectRefusal(with { $0[3] = TLV(0x83, [0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23, 0x4A]) }, .invalidICCID)
        expectRefusal(with { $0[3] = TLV(0x83, [0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0xF3, 0x41]) }, .invalidICCID)
        expectRefusal(with { $0[3] = TLV(0x83, [0x89, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0x01, 0x23]) }, .invalidICCID)
        expectRefusal(with { $0[3] = TLV(0x83, [0x98, 0x00, 0x10, 0x32, 0x54, 0x76, 0x98, 0x10, 0x32, 0x14]) }, .invalidICCID)
        // 19 digits + F padding with a correct check digit is fine.
        let nineteen = try #require(try? ICCID(withoutCheckDigit: "890001234567890123"))
        let padded = Array(nineteen.digits.utf8) + [0x46]
        let iccidBytes = stride(from: 0, to: 20, by: 2).map { UInt8(hexDigit(padded[$0]) << 4 | hexDigit(padded[$0 + 1])) }
        let short = try ProfilePackage(der: with { $0[3] = TLV(0x83, iccidBytes) })
        #expect(short.header.iccid.digits == nineteen.digits && short.header.iccid.text.hasSuffix("F"))

        // Missing, repeated, misordered, mistyped fields.
        expectRefusal(with { $0.remove(at: 3) }, .invalidProfileHeader, index: 0)  // no iccid
        expectRefusal(with { $0.remove(at: 1) }, .invalidProfileHeader)  // no minor-version
        expectRefusal(with { $0.remove(at: 5) }, .invalidProfileHeader)  // no GFSTE list
        expectRefusal(with { $0.swapAt(2, 3) }, .invalidProfileHeader)
        expectRefusal(with { $0.insert(TLV(0x81, [1]), at: 2) }, .invalidProfileHeader)
        expectRefusal(with { $0[2] = TLV(0x82, []) }, .invalidProfileHeader)  // profileType of 0 characters
        expectRefusal(with { $0[2] = TLV(0x82, [0xC3, 0x28]) }, .invalidProfileHeader)  // not UTF-8
        expectRefusal(with { $0[2] = TLV(0x82, [UInt8](repeating: 0x41, count: 101)) }, .invalidProfileHeader)
        expectRefusal(with { $0[0] = TLV(0x80, [0x00, 0x02]) }, .invalidProfileHeader)  // non-minimal INTEGER
        expectRefusal(with { $0[0] = TLV(0xA0, [0x02, 0x01, 0x02]) }, .invalidProfileHeader)  // constructed version
        expectRefusal(with { $0[4] = TLV(0xA5, [0x81, 0x01, 0x00]) }, .invalidProfileHeader)  // a service that is not NULL
        expectRefusal(with { $0[4] = TLV(0xA5, [0x82, 0x00, 0x81, 0x00]) }, .invalidProfileHeader)  // services out of order
        expectRefusal(with { $0[4] = TLV(0xA5, [0x81, 0x00, 0x88, 0x00]) }, .invalidProfileHeader)  // gba-isim without isim
        expectRefusal(with { $0[5] = TLV(0xA6, [0x04, 0x01, 0x00]) }, .invalidProfileHeader)  // GFSTE not an OID
        expectRefusal(with { $0[5] = TLV(0xA6, [0x06, 0x02, 0x67, 0x81]) }, .invalidProfileHeader)  // OID cut in an arc
        expectRefusal(with { $0.append(TLV(0xA8, children: [TLV(0x30, children: [TLV(0x80, [1, 2, 3])])])) }, .invalidProfileHeader)
        expectRefusal(with { $0.append(TLV(0xA9, children: [TLV(0x80, [1, 2])])) }, .invalidProfileHeader)  // pix too short
        expectRefusal(with { $0.append(TLV(0x1E, [0x41])) }, .invalidProfileHeader)  // a universal tag
    }

    @Test("Unknown, rfu and unsupported PEs: skipped unless mandated (pe-not-supported)")
    func unsupportedElements() throws {
        let pes = try ProfileFixtures.suciElements()
        func join(_ list: [[UInt8]]) -> [UInt8] { list.flatMap { $0 } }
        let optional = TLV(0xAB, [0xA0, 0x03, 0x81, 0x01, 0x64, 0x04, 0x01, 0xFF]).encoded  // rfu1, id 100, not mandated
        let package = try ProfilePackage(der: join(Array(pes[0...1]) + [optional] + pes[2...]))
        #expect(package.elements[2].type == .rfu1 && !package.elements[2].isSupported && package.summary.skippedCount == 1)
        #expect(package.count(of: .rfu1) == 1)

        let mandated = TLV(0xAB, [0xA0, 0x05, 0x80, 0x00, 0x81, 0x01, 0x64]).encoded
        expectRefusal(join(Array(pes[0...1]) + [mandated] + pes[2...]), .unsupportedElement, index: 2)
        expectRefusal(join(Array(pes[0...1]) + [[0xAB, 0x00]] + pes[2...]), .unsupportedElement, index: 2)  // PE-Dummy, no header
        let future = TLV(0xBF30, [0xA0, 0x05, 0x80, 0x00, 0x81, 0x01, 0x64]).encoded
        #expect(ProfileElementType(tag: 0xBF30).name == "unknown(BF30)" && !ProfileElementType(tag: 0xBF30).isDefined)
        expectRefusal(join(Array(pes[0...1]) + [future] + pes[2...]), .unsupportedElement, index: 2)
        let futureOptional = TLV(0xBF30, [0xA0, 0x03, 0x81, 0x01, 0x64]).encoded
        #expect(try ProfilePackage(der: join(Array(pes[0...1]) + [futureOptional] + pes[2...])).summary.skippedCount == 1)
        #expect(ProfileElementType(tag: 0xBF21) == .optIoT && ProfileElementType(tag: 0xBE) == .dfSNPN)

        // A card without CSIM: PE-CSIM is mandated in TS.48, so pe-not-supported with its identification.
        let error = try #require(parseError(join(pes), options: .init(unsupportedTypes: [.csim])))
        #expect(error.code == .unsupportedElement && error.identification == 15 && error.peStatus.status == .peNotSupported)
        // Not a ProfileElement at all: a universal SEQUENCE, a primitive context tag.
        expectRefusal(join(Array(pes[0...1]) + [[0x30, 0x00]] + pes[2...]), .notAProfileElement, index: 2)
        expectRefusal(join(Array(pes[0...1]) + [[0x83, 0x01, 0x00]] + pes[2...]), .notAProfileElement, index: 2)
    }

    @Test("Lengths are never trusted: corrupted, huge, indefinite, non-minimal, too deep")
    func lengths() throws {
        let pes = try ProfileFixtures.suciElements()
        func join(_ list: [[UInt8]]) -> [UInt8] { list.flatMap { $0 } }
        #expect(Array(pes[1].prefix(4)) == [0xB0, 0x82, 0x03, 0x07])
        var broken = pes
        broken[1][3] = 0x08  // MF one byte longer: swallows the next PE's tag
        expectRefusal(join(broken), .malformed, index: 1)
        broken[1][3] = 0x06  // one byte shorter: its last child overruns it
        expectRefusal(join(broken), .malformed, index: 1)
        broken = pes
        broken[1] = [0xB0, 0x83, 0xFF, 0xFF, 0xFF] + pes[1].dropFirst(4)
        expectRefusal(join(broken), .elementTooLarge, index: 1)
        broken[1] = [0xB0, 0x80] + pes[1].dropFirst(4) + [0x00, 0x00]
        expectRefusal(join(broken), .malformed, index: 1)
        broken[1] = [0xB0, 0x84, 0x00, 0x00, 0x03, 0x07] + pes[1].dropFirst(4)
        expectRefusal(join(broken), .malformed, index: 1)
        // Inside the header: iccid announces more than the header holds (118 bytes remain) …
        broken = pes
        #expect(broken[0][42] == 0x83 && broken[0][43] == 0x0A)
        broken[0][43] = 0x7F
        expectRefusal(join(broken), .malformed, index: 0)
        // … while a profileType swallowing the next fields still leaves well-formed DER: refused on its value.
        broken = pes
        #expect(broken[0][9] == 0x82 && broken[0][10] == 0x1F)
        broken[0][10] = 0x7F
        expectRefusal(join(broken), .invalidProfileHeader, index: 0)
        // Tags: four bytes, long form for a small number.
        expectRefusal(join(Array(pes[0...1]) + [[0xBF, 0x81, 0x81, 0x01, 0x00]] + pes[2...]), .malformed, index: 2)
        expectRefusal(join(Array(pes[0...1]) + [[0xBF, 0x05, 0x00]] + pes[2...]), .malformed, index: 2)

        // Non-minimal length on End: tolerated by default, refused in strict DER mode.
        let endLong: [UInt8] = [0xAA, 0x81, 0x07] + pes[29].dropFirst(2)
        let lenient = join(Array(pes.dropLast()) + [endLong])
        #expect(try ProfilePackage(der: lenient).totalSize == 12285)
        expectRefusal(lenient, .malformed, index: 29, options: .init(requireMinimalLengths: true))
        #expect(try ProfilePackage(der: join(pes), options: .init(requireMinimalLengths: true)).elements.count == 30)

        // Size limits: not-enough-memory.
        expectRefusal(join(pes), .elementTooLarge, index: 8, options: .init(maximumElementSize: 2000))
        expectRefusal(join(pes), .packageTooLarge, options: .init(maximumPackageSize: 10000))
        // Nesting deeper than the limit (TS.48 reaches 6).
        var nested = TLV(0x30, [])
        for _ in 0..<20 { nested = TLV(0xA1, children: [nested]) }
        let deep = TLV(0xA9, [0xA0, 0x03, 0x81, 0x01, 0x64] + nested.encoded).encoded
        expectRefusal(join(Array(pes[0...1]) + [deep] + pes[2...]), .malformed, index: 2)
        #expect(throws: ProfilePackageError(code: .malformed)) { try ProfilePackage(der: join(pes), options: .init(maximumDepth: 5)) }
        #expect(throws: Never.self) { try ProfilePackage(der: join(pes), options: .init(maximumDepth: 6)) }
    }

    @Test("Truncated at many offsets: a typed error every time, identical when streamed")
    func truncation() throws {
        let bytes = try ProfileFixtures.load("TS48v5_SAIP2.3_BERTLV_SUCI.der")
        let package = try ProfilePackage(der: bytes)
        let boundaries = package.elements.map(\.offset)
        var cuts = Set(stride(from: 0, to: bytes.count, by: 7))
        for boundary in boundaries { cuts.formUnion([boundary - 1, boundary, boundary + 1, boundary + 2].filter { $0 >= 0 && $0 < bytes.count }) }
        var codes: [String: Int] = [:]
        for cut in cuts.sorted() {
            let expected: ProfilePackageError.Code
            if cut == 0 {
                expected = .empty
            } else if let k = boundaries.firstIndex(of: cut) {
                expected = k == 1 ? .mfNotSecond : .missingEnd
            } else {
                expected = .truncated
            }
            let error = parseError(Array(bytes[0..<cut]))
            #expect(error?.code == expected, "cut at \(cut)")
            #expect(error?.peStatus.status == .invalidRequestFormat)
            codes[expected.name, default: 0] += 1
            if cut % 5 == 0 || boundaries.contains(cut) {
                var buffered = 0
                let streamed = streamParse(Array(bytes[0..<cut]), segment: { Int.random(in: 1...700, using: &$0) }, seed: UInt64(cut), maxBuffered: &buffered)
                if case .failure(let streamedError) = streamed {
                    #expect(streamedError.code == expected && streamedError.offset == error?.offset && streamedError.elementIndex == error?.elementIndex)
                } else {
                    Issue.record("streamed truncation at \(cut) accepted")
                }
            }
        }
        #expect(codes["truncated", default: 0] > 1500 && codes["missingEnd", default: 0] == 28)
        // A truncated PE names its index, start and where the data stopped.
        let error = try #require(parseError(Array(bytes[0..<(boundaries[8] + 100)])))
        #expect(error.elementIndex == 8 && error.elementOffset == boundaries[8] && error.offset == boundaries[8] + 100)
        #expect(error.elementType == .optUSIM)
    }

    @Test("Garbage and seeded mutations of the fixtures: typed errors or a faithful parse, never a crash; streaming agrees")
    func mutationFuzz() throws {
        let fixtures = try ProfileFixtures.all.map { try ProfileFixtures.load($0.file) }
        var generator = SeededGenerator(seed: 0x5EED_CAFE)
        var refused = 0
        var accepted = 0
        var seenCodes: Set<String> = []
        let statuses = Set(ProfilePackageError.Code.all.map(\.status))

        // Pure garbage.
        for _ in 0..<500 {
            let garbage = (0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let error = try #require(parseError(garbage))
            #expect(statuses.contains(error.peStatus.status))
        }

        for round in 0..<3000 {
            var bytes = fixtures[round % fixtures.count]
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                guard !bytes.isEmpty else { break }
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<7, using: &generator) {
                case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &generator)
                case 1: bytes[at] = UInt8.random(in: 0...255, using: &generator)
                case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...64, using: &generator)))
                case 3: bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: at)
                case 4: bytes.removeSubrange(at...)
                case 5:  // a length byte right after a likely tag
                    if at + 1 < bytes.count, bytes[at] & 0xE0 == 0xA0 { bytes[at + 1] = UInt8.random(in: 0...255, using: &generator) }
                default:  // duplicate a slice
                    let length = Int.random(in: 1...200, using: &generator)
                    bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + length)], at: Int.random(in: 0...bytes.count, using: &generator))
                }
            }
            let whole: Result<ProfilePackage, ProfilePackageError>
            do throws(ProfilePackageError) {
                whole = .success(try ProfilePackage(der: bytes))
            } catch {
                whole = .failure(error)
            }
            switch whole {
            case .success(let package):
                accepted += 1
                #expect(package.encoded == bytes)
                #expect(package.elements.first?.type == .header && package.elements.last?.type == .end)
            case .failure(let error):
                refused += 1
                seenCodes.insert(error.code.name)
                #expect(error.peStatus.status == error.code.status)
                #expect(try EUICCResponse(encoded: error.euiccResponse.encoded) == error.euiccResponse)
            }
            if round % 5 == 0 {
                var buffered = 0
                let streamed = streamParse(bytes, segment: { Int.random(in: 1...1500, using: &$0) }, seed: UInt64(round), maxBuffered: &buffered)
                switch (whole, streamed) {
                case (.success(let package), .success(let (elements, summary))):
                    #expect(elements == package.elements && summary == package.summary)
                case (.failure(let a), .failure(let b)):
                    #expect(a.code == b.code && a.elementIndex == b.elementIndex && a.offset == b.offset, "round \(round): \(a) vs \(b)")
                default:
                    Issue.record("round \(round): whole and streamed parsing disagree")
                }
            }
        }
        print("mutation fuzz: \(refused) refused, \(accepted) accepted; codes \(seenCodes.sorted())")
        #expect(refused > 1800)
        #expect(seenCodes.count >= 8)
    }
}

private func hexDigit(_ byte: UInt8) -> Int { byte <= 0x39 ? Int(byte - 0x30) : Int(byte - 0x41 + 10) }
