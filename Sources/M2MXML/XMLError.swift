/// An error detected while reading a document.
///
/// Equality and hashing use `code` only, so tests and callers can match on the kind of failure:
/// `#expect(throws: XMLError(code: .truncated)) { ... }`.
public struct XMLError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: UInt8, Sendable {
            case truncated
            case malformed
            case doctypeForbidden
            case processingInstructionForbidden
            case unboundPrefix
            case duplicateAttribute
            case mismatchedEndTag
            case invalidCharacter
            case unknownEntity
            case unsupportedEncoding
            case limitExceeded
            case mixedContent
            case trailingContent
            case noRootElement
        }

        private let backing: Backing

        private init(_ backing: Backing) {
            self.backing = backing
        }

        /// The input ended inside markup or before the root element was closed.
        public static let truncated = Code(.truncated)
        /// The input violates XML 1.0 / Namespaces 1.0 syntax.
        public static let malformed = Code(.malformed)
        /// A document type declaration was found (never processed, so entity expansion attacks are impossible).
        public static let doctypeForbidden = Code(.doctypeForbidden)
        /// A processing instruction other than the leading XML declaration was found (SOAP 1.2 forbids them).
        public static let processingInstructionForbidden = Code(.processingInstructionForbidden)
        /// An element or attribute uses a prefix that is not declared.
        public static let unboundPrefix = Code(.unboundPrefix)
        /// Two attributes of one element have the same expanded name, or a prefix is declared twice.
        public static let duplicateAttribute = Code(.duplicateAttribute)
        /// An end tag does not match the innermost open start tag.
        public static let mismatchedEndTag = Code(.mismatchedEndTag)
        /// Invalid UTF-8, a forbidden control character, or a character reference to a non-XML character.
        public static let invalidCharacter = Code(.invalidCharacter)
        /// An entity reference other than the five predefined ones.
        public static let unknownEntity = Code(.unknownEntity)
        /// The document declares an encoding other than UTF-8 (or starts with a UTF-16 byte order mark).
        public static let unsupportedEncoding = Code(.unsupportedEncoding)
        /// One of the `XMLLimits` was exceeded; the detail names it.
        public static let limitExceeded = Code(.limitExceeded)
        /// Non-whitespace text in an element that also has child elements.
        public static let mixedContent = Code(.mixedContent)
        /// Something other than whitespace or comments follows the root element.
        public static let trailingContent = Code(.trailingContent)
        /// The input contains no root element at all.
        public static let noRootElement = Code(.noRootElement)

        public var description: String {
            String(describing: backing)
        }
    }

    /// The kind of failure.
    public let code: Code
    /// 1-based line where the failure was detected (0 when unknown).
    public let line: Int
    /// Human-readable explanation; never echoes more than a short excerpt of the input.
    public let detail: String

    /// Creates an error.
    public init(code: Code, line: Int = 0, detail: String = "") {
        self.code = code
        self.line = line
        self.detail = detail
    }

    public var description: String {
        var result = "XML error (\(code))"
        if line > 0 {
            result += " at line \(line)"
        }
        if !detail.isEmpty {
            result += ": " + detail
        }
        return result
    }

    public static func == (lhs: XMLError, rhs: XMLError) -> Bool {
        lhs.code == rhs.code
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
    }
}
