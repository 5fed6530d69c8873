// ISO/IEC 7816-4 APDUs as GlobalPlatform uses them, built through named constructors.

public import M2MCore

/// A status word (SW1SW2).
public struct StatusWord: Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let rawValue: UInt16
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt16) { self.rawValue = value }
    public init(sw1: UInt8, sw2: UInt8) { rawValue = UInt16(sw1) << 8 | UInt16(sw2) }

    public var sw1: UInt8 { UInt8(rawValue >> 8) }
    public var sw2: UInt8 { UInt8(rawValue & 0xFF) }
    public var bytes: [UInt8] { [sw1, sw2] }

    /// 9000, 61xx, or a warning 62xx/63xx (R-MAC is computed on these, GP Amd D).
    public var isSuccessOrWarning: Bool { rawValue == 0x9000 || sw1 == 0x61 || sw1 == 0x62 || sw1 == 0x63 }

    public static let success: StatusWord = 0x9000
    /// Wrong data.
    public static let wrongData: StatusWord = 0x6A80
    /// Not enough memory space.
    public static let notEnoughMemory: StatusWord = 0x6A84
    /// Referenced data not found.
    public static let referencedDataNotFound: StatusWord = 0x6A88
    /// Conditions of use not satisfied.
    public static let conditionsNotSatisfied: StatusWord = 0x6985
    /// Security status not satisfied.
    public static let securityStatusNotSatisfied: StatusWord = 0x6982
    /// SGP.02: the POL1 of the Profile forbids the operation.
    public static let pol1Forbids: StatusWord = 0x69E1
    /// Memory failure.
    public static let memoryFailure: StatusWord = 0x6581
    /// Wrong P1/P2.
    public static let wrongP1P2: StatusWord = 0x6A86
    /// Instruction not supported.
    public static let insNotSupported: StatusWord = 0x6D00
    /// Class not supported.
    public static let claNotSupported: StatusWord = 0x6E00
    /// Wrong length.
    public static let wrongLength: StatusWord = 0x6700

    public var description: String { Hex.encode(bytes) }
}

/// A command APDU (short length encoding).
public struct CommandAPDU: Hashable, Sendable, CustomStringConvertible {
    public var cla: UInt8
    public var ins: UInt8
    public var p1: UInt8
    public var p2: UInt8
    public var data: [UInt8]
    /// Expected response length; nil = no Le, 0 = Le 00 (up to 256).
    public var le: UInt8?

    public init(cla: UInt8, ins: UInt8, p1: UInt8, p2: UInt8, data: [UInt8] = [], le: UInt8? = nil) {
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le
    }

    /// CLA INS P1 P2 [Lc data] [Le].
    public var bytes: [UInt8] {
        var out = [cla, ins, p1, p2]
        if !data.isEmpty {
            precondition(data.count <= 255, "extended APDUs are not used here")
            out.append(UInt8(data.count))
            out += data
        }
        if let le { out.append(le) }
        return out
    }

    /// Parses a short APDU (cases 1–4).
    public init(bytes: [UInt8]) throws(TLVError) {
        guard bytes.count >= 4 else { throw TLVError(code: .truncated, detail: "an APDU has at least 4 bytes") }
        cla = bytes[0]
        ins = bytes[1]
        p1 = bytes[2]
        p2 = bytes[3]
        switch bytes.count {
        case 4:
            data = []
            le = nil
        case 5:
            data = []
            le = bytes[4]
        default:
            let lc = Int(bytes[4])
            guard lc > 0 else { throw TLVError(code: .badLength, detail: "Lc 00 with a body") }
            if bytes.count == 5 + lc {
                data = Array(bytes[5...])
                le = nil
            } else if bytes.count == 6 + lc {
                data = Array(bytes[5..<(5 + lc)])
                le = bytes[5 + lc]
            } else {
                throw TLVError(code: .badLength, detail: "Lc \(lc) does not match \(bytes.count - 5) bytes")
            }
        }
    }

    public var description: String { Hex.encode(bytes) }

    // MARK: GlobalPlatform commands (GPC 2.3 §11)

    /// INITIALIZE UPDATE (80 50 KVN 00 08 <host challenge> 00).
    public static func initializeUpdate(keyVersion: UInt8, hostChallenge: [UInt8]) -> CommandAPDU {
        CommandAPDU(cla: 0x80, ins: 0x50, p1: keyVersion, p2: 0x00, data: hostChallenge, le: 0x00)
    }

    /// STORE DATA (80 E2 P1 block).
    public static func storeData(p1: UInt8, block: UInt8 = 0, data: [UInt8], le: UInt8? = nil) -> CommandAPDU {
        CommandAPDU(cla: 0x80, ins: 0xE2, p1: p1, p2: block, data: data, le: le)
    }
}

/// A response APDU: data and status word.
public struct ResponseAPDU: Hashable, Sendable, CustomStringConvertible {
    public var data: [UInt8]
    public var sw: StatusWord

    public init(data: [UInt8] = [], sw: StatusWord) {
        self.data = data
        self.sw = sw
    }

    public init(bytes: [UInt8]) throws(TLVError) {
        guard bytes.count >= 2 else { throw TLVError(code: .truncated, detail: "a response has at least SW1 SW2") }
        data = Array(bytes.dropLast(2))
        sw = StatusWord(sw1: bytes[bytes.count - 2], sw2: bytes[bytes.count - 1])
    }

    public var bytes: [UInt8] { data + sw.bytes }
    public var description: String { Hex.encode(bytes) }
}
