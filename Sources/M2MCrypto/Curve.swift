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
