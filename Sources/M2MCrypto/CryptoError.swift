// M2MCrypto's error type. Every failing OpenSSL call is followed by `OpenSSLErrorStack.drain()`,
// so the error carries OpenSSL's own reasons and the queue is left empty.

internal import COpenSSL
public import M2MCore

/// The OpenSSL error queue at the moment of a failure.
public struct OpenSSLErrorStack: Sendable, Hashable, CustomStringConvertible {
    public let entries: [String]

    /// Empties the calling thread's OpenSSL error queue into a value.
    static func drain() -> OpenSSLErrorStack {
        var entries: [String] = []
        while true {
            var file: UnsafePointer<CChar>?
            var line: Int32 = 0
            var function: UnsafePointer<CChar>?
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(&file, &line, &function, &data, &flags)
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            var text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let data, flags & ERR_TXT_STRING != 0 { text += " (\(String(cString: data)))" }
            entries.append(text)
        }
        return OpenSSLErrorStack(entries: entries)
    }

    public var description: String { entries.isEmpty ? "no OpenSSL detail" : entries.joined(separator: "; ") }
}

/// A cryptographic operation failed or an input is not acceptable.
public struct CryptoError: Error, Hashable, Sendable, CustomStringConvertible, FunctionExecutionStatusConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        /// A key, point or scalar is malformed, not on the curve, or of the wrong size.
        public static let invalidKey = Code(name: "invalidKey")
        /// A signature did not verify, or is malformed.
        public static let invalidSignature = Code(name: "invalidSignature")
        /// A MAC, cryptogram or receipt did not match.
        public static let invalidMAC = Code(name: "invalidMAC")
        /// An input has the wrong length or format (padding, block size, TLV).
        public static let invalidInput = Code(name: "invalidInput")
        /// A certificate is malformed, expired, or not issued by the expected CA.
        public static let invalidCertificate = Code(name: "invalidCertificate")
        /// A replay counter or sequence counter check failed.
        public static let counterRejected = Code(name: "counterRejected")
        /// The secure channel is not in a state that allows this operation.
        public static let wrongState = Code(name: "wrongState")
        /// OpenSSL failed for a reason that is not the input's fault.
        public static let openSSLFailure = Code(name: "openSSLFailure")
        /// The curve or algorithm is not supported.
        public static let unsupported = Code(name: "unsupported")
        /// A TLS handshake or record failed (unknown PSK identity, wrong key, protocol error, peer gone).
        public static let tlsFailure = Code(name: "tlsFailure")
    }

    public let code: Code
    public let detail: String
    public let openSSL: OpenSSLErrorStack?

    public init(code: Code, detail: String = "", openSSL: OpenSSLErrorStack? = nil) {
        self.code = code
        self.detail = detail
        self.openSSL = openSSL
    }

    public static func == (lhs: CryptoError, rhs: CryptoError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        var text = "\(code)"
        if !detail.isEmpty { text += ": \(detail)" }
        if let openSSL, !openSSL.entries.isEmpty { text += " [OpenSSL: \(openSSL)]" }
        return text
    }

    /// Verification failures are 6.1 (Verification Failed); the rest map to security or processing errors.
    public var executionStatus: FunctionExecutionStatus {
        switch code {
        case .invalidSignature, .invalidMAC, .invalidCertificate:
            .failed(.generic, .verificationFailed, message: description)
        case .counterRejected: .failed(.generic, .securityError, message: description)
        case .invalidKey, .invalidInput: .failed(.protocolFormat, .invalid, message: description)
        case .unsupported: .failed(.generic, .unsupported, message: description)
        default: .failed(.functionProvider, .executionError, message: description)
        }
    }

    /// A failure right after an OpenSSL call: drains the queue into the error.
    @inline(never)
    static func openSSL(_ code: Code, _ detail: String) -> CryptoError {
        CryptoError(code: code, detail: detail, openSSL: OpenSSLErrorStack.drain())
    }
}
