// The two curves of the GSMA eSIM PKI (spec/sgp02-oncard.md §4.3): NIST P-256 and brainpoolP256r1.

internal import COpenSSL

/// An elliptic curve this platform supports.
public enum Curve: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    case p256 = "P-256"
    case brainpoolP256r1 = "brainpoolP256r1"

    /// OpenSSL's group name.
    var groupName: String {
        switch self {
        case .p256: "P-256"
        case .brainpoolP256r1: "brainpoolP256r1"
        }
    }

    var nid: Int32 {
        switch self {
        case .p256: NID_X9_62_prime256v1
        case .brainpoolP256r1: NID_brainpoolP256r1
        }
    }

    /// The group order n, big endian (a private scalar is 1 ≤ d < n).
    public var order: [UInt8] {
        switch self {
        case .p256: Curve.p256Order
        case .brainpoolP256r1: Curve.brainpoolOrder
        }
    }

    static let p256Order: [UInt8] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
    ]
    static let brainpoolOrder: [UInt8] = [
        0xA9, 0xFB, 0x57, 0xDB, 0xA1, 0xEE, 0xA9, 0xBC, 0x3E, 0x66, 0x0A, 0x90, 0x9D, 0x83, 0x8D, 0x71,
        0x8C, 0x39, 0x7A, 0xA3, 0xB5, 0x61, 0xA6, 0xF7, 0x90, 0x1E, 0x0E, 0x82, 0x97, 0x48, 0x56, 0xA7,
    ]

    /// True when `scalar` (big endian, at most 32 bytes) is a valid private scalar: 1 ≤ d < n.
    public func isValidScalar(_ scalar: some ContiguousBytes) -> Bool {
        scalar.withUnsafeBytes { bytes -> Bool in
            guard bytes.count <= coordinateSize, bytes.contains(where: { $0 != 0 }) else { return false }
            let padded = [UInt8](repeating: 0, count: coordinateSize - bytes.count) + bytes
            for (a, b) in zip(padded, order) where a != b { return a < b }
            return false  // d == n
        }
    }

    /// Bytes of one coordinate or of the scalar.
    public var coordinateSize: Int { 32 }

    /// GP Amendment E key parameter reference (tag F0): 00 P-256, 03 brainpoolP256r1.
    public var keyParameterReference: UInt8 {
        switch self {
        case .p256: 0x00
        case .brainpoolP256r1: 0x03
        }
    }

    public init?(keyParameterReference: UInt8) {
        switch keyParameterReference {
        case 0x00: self = .p256
        case 0x03: self = .brainpoolP256r1
        default: return nil
        }
    }

    /// Accepts `p256`, `P-256`, `prime256v1`, `secp256r1`, `brainpoolP256r1` (any case).
    public init?(name: String) {
        switch name.lowercased() {
        case "p256", "p-256", "prime256v1", "secp256r1": self = .p256
        case "brainpoolp256r1", "brainpool", "bp256": self = .brainpoolP256r1
        default: return nil
        }
    }

    public var description: String { rawValue }
}
