// GlobalPlatform (Amendment E) format certificates as SGP.02 uses them: CERT.DP.ECDSA,
// CERT.SR.ECDSA (signed by the CI) and CERT.ECASD.ECKA (signed by the EUM). spec/sgp02-oncard.md §4.1:
//
//   7F21 L
//     93 L    serial number
//     42 L    CA identifier
//     5F20 L  subject identifier
//     95 L    key usage
//     [5F25 4 effective date YYYYMMDD BCD]
//     5F24 4  expiration date YYYYMMDD BCD
//     73 L    discretionary data { C8 01 <01 SM-DP | 02 SM-SR>, … }
//     7F49 L  public key { B0 L 04‖X‖Y, F0 01 <key parameter reference> }
//     5F37 L  signature: ECDSA-SHA256 over the TLVs 93 … 7F49, plain r‖s
//
// Parsing keeps the exact bytes of the signed part, so verification never depends on re-encoding;
// serialising a parsed certificate gives back its bytes.

public import M2MCore

/// A GP-format certificate.
public struct GPCertificate: Hashable, Sendable, CustomStringConvertible {
    /// Certificate roles carried in discretionary data tag C8.
    public enum Role: UInt8, Sendable, Hashable {
        case smdp = 0x01
        case smsr = 0x02
    }

    public var serialNumber: [UInt8]
    public var caIdentifier: [UInt8]
    public var subjectIdentifier: [UInt8]
    public var keyUsage: [UInt8]
    /// YYYYMMDD as 4 BCD bytes.
    public var effectiveDate: [UInt8]?
    public var expirationDate: [UInt8]
    /// The TLVs inside tag 73.
    public var discretionaryData: [TLV]
    /// The public point (04‖X‖Y).
    public var publicKeyPoint: [UInt8]
    /// Key parameter reference (F0): 00 P-256, 03 brainpoolP256r1; nil when the point was bare.
    public var keyParameterReference: UInt8?
    /// r‖s.
    public var signature: [UInt8]

    public init(
        serialNumber: [UInt8], caIdentifier: [UInt8], subjectIdentifier: [UInt8], keyUsage: [UInt8], effectiveDate: [UInt8]? = nil,
        expirationDate: [UInt8], discretionaryData: [TLV], publicKeyPoint: [UInt8], keyParameterReference: UInt8?, signature: [UInt8] = []
    ) {
        self.serialNumber = serialNumber
        self.caIdentifier = caIdentifier
        self.subjectIdentifier = subjectIdentifier
        self.keyUsage = keyUsage
        self.effectiveDate = effectiveDate
        self.expirationDate = expirationDate
        self.discretionaryData = discretionaryData
        self.publicKeyPoint = publicKeyPoint
        self.keyParameterReference = keyParameterReference
        self.signature = signature
    }

    /// The role in discretionary data (C8), if any.
    public var role: Role? {
        guard let c8 = discretionaryData.first(where: { $0.tag == 0xC8 }), c8.value.count == 1 else { return nil }
        return Role(rawValue: c8.value[0])
    }

    /// The 7F49 TLV as encoded.
    var publicKeyTLV: TLV {
        if let reference = keyParameterReference {
            return TLV(0x7F49, children: [TLV(0xB0, publicKeyPoint), TLV(0xF0, [reference])])
        }
        return TLV(0x7F49, publicKeyPoint)
    }

    /// The signed part: the TLVs 93 … 7F49 concatenated (what 5F37 signs).
    public var signedData: [UInt8] {
        var out = TLV(0x93, serialNumber).encoded + TLV(0x42, caIdentifier).encoded + TLV(0x5F20, subjectIdentifier).encoded
        out += TLV(0x95, keyUsage).encoded
        if let effectiveDate { out += TLV(0x5F25, effectiveDate).encoded }
        out += TLV(0x5F24, expirationDate).encoded
        out += TLV(0x73, children: discretionaryData).encoded
        out += publicKeyTLV.encoded
        return out
    }

    /// The whole certificate, tag 7F21 included.
    public var encoded: [UInt8] { TLV(0x7F21, signedData + TLV(0x5F37, signature).encoded).encoded }

    /// Parses a certificate (with or without its 7F21 wrapper). Unknown tags are refused.
    public init(encoded bytes: [UInt8]) throws(TLVError) {
        var content = bytes
        if bytes.starts(with: [0x7F, 0x21]) {
            let outer = try TLV.parseOne(bytes)
            content = outer.value
        }
        let items = try TLV.parseAll(content)
        var index = 0
        func take(_ tag: TLVTag, optional: Bool = false) throws(TLVError) -> TLV? {
            guard index < items.count, items[index].tag == tag else {
                if optional { return nil }
                throw TLVError(code: .missingTag, detail: "certificate tag \(tag) missing or out of order")
            }
            index += 1
            return items[index - 1]
        }
        serialNumber = try take(0x93)!.value
        caIdentifier = try take(0x42)!.value
        subjectIdentifier = try take(0x5F20)!.value
        keyUsage = try take(0x95)!.value
        effectiveDate = try take(0x5F25, optional: true)?.value
        expirationDate = try take(0x5F24)!.value
        discretionaryData = try take(0x73)!.children()
        let key = try take(0x7F49)!
        if key.value.first == 0x04 || key.value.first == 0x02 || key.value.first == 0x03 {
            publicKeyPoint = key.value
            keyParameterReference = nil
        } else {
            let parts = try key.children()
            guard let point = parts.first(where: { $0.tag == 0xB0 })?.value else {
                throw TLVError(code: .missingTag, detail: "7F49 has no B0 point")
            }
            publicKeyPoint = point
            keyParameterReference = parts.first(where: { $0.tag == 0xF0 })?.value.first
        }
        signature = try take(0x5F37)!.value
        guard index == items.count else { throw TLVError(code: .unexpectedTag, detail: "tag \(items[index].tag) after the signature") }
        for date in [effectiveDate, expirationDate].compactMap({ $0 }) where !GPCertificate.isBCDDate(date) {
            throw TLVError(code: .invalidValue, detail: "date \(Hex.encode(date)) is not YYYYMMDD BCD")
        }
        guard expirationDate.count == 4 else { throw TLVError(code: .invalidValue, detail: "expiration date is 4 bytes") }
    }

    static func isBCDDate(_ date: [UInt8]) -> Bool {
        guard date.count == 4, date.allSatisfy({ $0 >> 4 <= 9 && $0 & 0x0F <= 9 }) else { return false }
        let month = Int(date[2] >> 4) * 10 + Int(date[2] & 0x0F)
        let day = Int(date[3] >> 4) * 10 + Int(date[3] & 0x0F)
        return (1...12).contains(month) && (1...31).contains(day)
    }

    /// A YYYYMMDD BCD date.
    public static func bcdDate(year: Int, month: Int, day: Int) -> [UInt8] {
        func bcd(_ v: Int) -> UInt8 { UInt8((v / 10) << 4 | v % 10) }
        return [bcd(year / 100), bcd(year % 100), bcd(month), bcd(day)]
    }

    /// The expiration date as YYYYMMDD digits.
    public var expirationText: String { Hex.encode(expirationDate) }

    public var description: String {
        "GPCertificate(serial \(Hex.encode(serialNumber)), CA \(Hex.encode(caIdentifier)), subject \(Hex.encode(subjectIdentifier)), role \(role.map { String(describing: $0) } ?? "none"), expires \(expirationText))"
    }
}
