// Names and meanings the tracer prints: GlobalPlatform / SGP.02 commands, the DGIs of STORE DATA,
// status words as eUICCs answer them (spec/sgp02-oncard.md §2; docs/emulator.md), SCP03t errors.

import M2MCore
import M2MWire

enum Vocabulary {
    static func command(_ apdu: CommandAPDU) -> String {
        switch (apdu.ins, apdu.p1) {
        case (0xE6, 0x0C): return "INSTALL [for install and make selectable]"
        case (0xE6, 0x20): return "INSTALL [for personalization]"
        case (0xE6, 0x08): return "INSTALL [for make selectable]"
        case (0xE6, _): return "INSTALL (P1 \(Hex.encode([apdu.p1])))"
        case (0xE2, _): return "STORE DATA"
        case (0xE4, _): return "DELETE"
        case (0xF2, _): return "GET STATUS"
        case (0xCA, _), (0xCB, _): return "GET DATA"
        case (0x50, _): return "INITIALIZE UPDATE"
        case (0x82, _): return "EXTERNAL AUTHENTICATE"
        case (0xD8, _): return "PUT KEY"
        case (0xF0, _): return "SET STATUS"
        case (0xA4, _): return "SELECT"
        case (0xC0, _): return "GET RESPONSE"
        default: return "INS \(Hex.encode([apdu.ins]))"
        }
    }

    static func dgi(_ tag: UInt16) -> String {
        switch tag {
        case 0x3A01: "CERT.DP.ECDSA or CERT.SR.ECDSA (key establishment, step 1)"
        case 0x3A02: "key agreement: CRT, ePK, signature (key establishment, step 2)"
        case 0x3A03: "enable Profile"
        case 0x3A04: "disable Profile"
        case 0x3A05: "set fall-back attribute"
        case 0x3A06: "set emergency attribute (this platform's coding, docs/emulator.md)"
        case 0x3A07: "connectivity parameters"
        case 0x3A08: "notification confirmation"
        case 0x0070: "personalisation data (70)"
        default: "DGI \(Hex.encode([UInt8(tag >> 8), UInt8(tag & 0xFF)]))"
        }
    }

    static func statusWord(_ sw: StatusWord) -> String {
        switch sw.rawValue {
        case 0x9000: return "success"
        case 0x6A88: return "referenced data not found"
        case 0x6A80: return "incorrect data"
        case 0x6A84: return "not enough memory"
        case 0x6A86: return "incorrect P1/P2"
        case 0x6985: return "conditions of use not satisfied"
        case 0x6982: return "security status not satisfied"
        case 0x69E1: return "POL1 forbids it (or the Profile is the fall-back one)"
        case 0x6581: return "memory failure"
        case 0x6700: return "wrong length"
        case 0x6D00: return "instruction not supported"
        case 0x6E00: return "class not supported"
        case 0x6A82: return "file or application not found"
        default:
            if sw.sw1 == 0x61 { return "\(sw.sw2) more bytes available" }
            if sw.sw1 == 0x63 || sw.sw1 == 0x62 { return "warning" }
            return "error"
        }
    }

    static func scp03tError(_ tlv: TLV) -> String? {
        let step: String
        switch tlv.tag {
        case 0x9F44: step = "INITIALIZE UPDATE refused"
        case 0x9F45: step = "EXTERNAL AUTHENTICATE refused"
        case 0x9F46: step = "command TLV refused"
        default: return nil
        }
        let reason = switch tlv.value.last {
        case 0x01?: "structure error"
        case 0x02?: "security error"
        case 0x03?: "referenced data not found"
        default: "reason \(Hex.encode(tlv.value))"
        }
        return "\(step): \(reason)"
    }

    static func lifeCycle(_ byte: UInt8) -> String {
        switch byte {
        case 0x03: "INSTALLED"
        case 0x07: "SELECTABLE"
        case 0x0F: "PERSONALIZED"
        case 0x1F: "DISABLED"
        case 0x3F: "ENABLED"
        default: Hex.encode([byte])
        }
    }

    static func notificationType(_ byte: UInt8) -> String {
        switch byte {
        case 0x01: "eUICC declaration (first network attach)"
        case 0x02: "Profile change succeeded"
        case 0x03: "Profile change failed, rolled back"
        case 0x04: "void"
        case 0x05: "Profile change after fall-back"
        default: "type \(Hex.encode([byte]))"
        }
    }
}
