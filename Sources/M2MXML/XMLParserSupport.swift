/// The namespace declarations in scope, as a stack that grows at start tags and shrinks at end tags.
///
/// Prefixes are compared as bytes of the input, so resolving one allocates nothing; the prefix and URI strings
/// are created once per declaration (URIs once per document) and shared by every name that uses them.
struct NamespaceScope {
    struct Binding {
        /// Offset of the prefix in the input (its length is 0 for the default namespace).
        var prefixStart: Int
        var prefixLength: Int
        var prefix: String
        var uri: String
    }

    private var bindings: [Binding] = []
    /// URIs already seen in this document, reused by later declarations of the same URI.
    private var internedURIs: [(bytes: [UInt8], string: String)] = []

    private static let maxInternedURIs = 64
    private static let xmlBinding = Binding(prefixStart: -1, prefixLength: 3, prefix: "xml", uri: xmlNamespaceURI)

    init() {
        bindings.reserveCapacity(16)
    }

    /// Current height of the stack, to be passed to `pop(to:)` when the element that declared more ends.
    var mark: Int { bindings.count }

    mutating func push(_ binding: Binding) {
        bindings.append(binding)
    }

    mutating func pop(to mark: Int) {
        if bindings.count > mark {
            bindings.removeLast(bindings.count - mark)
        }
    }

    /// Whether the prefix was already declared at or above `mark` (that is, on the current start tag).
    func isDeclared(prefixStart: Int, prefixLength: Int, since mark: Int, in input: XMLInput) -> Bool {
        var index = mark
        while index < bindings.count {
            if bindings[index].prefixLength == prefixLength
                && input.bytesEqual(bindings[index].prefixStart, prefixStart, count: prefixLength)
            {
                return true
            }
            index &+= 1
        }
        return false
    }

    /// The binding in scope for the prefix `input[prefixStart..<prefixEnd]` (empty range: the default namespace).
    func lookup(prefixStart: Int, prefixEnd: Int, in input: XMLInput) -> Binding? {
        let length = prefixEnd - prefixStart
        var index = bindings.count - 1
        while index >= 0 {
            // Compare in place: copying the binding would retain its strings on every probe.
            if bindings[index].prefixLength == length
                && input.bytesEqual(bindings[index].prefixStart, prefixStart, count: length)
            {
                return bindings[index]
            }
            index -= 1
        }
        if length == 3 && input.equals(prefixStart, prefixEnd, "xml") {
            return Self.xmlBinding
        }
        return nil
    }

    /// A string for the URI bytes, shared with earlier declarations of the same URI.
    mutating func uri(for bytes: UnsafeBufferPointer<UInt8>) -> String {
        for entry in internedURIs where entry.bytes.count == bytes.count {
            if entry.bytes.withUnsafeBufferPointer({ $0.elementsEqual(bytes) }) {
                return entry.string
            }
        }
        let string = String(decoding: bytes, as: UTF8.self)
        if internedURIs.count < Self.maxInternedURIs {
            internedURIs.append((Array(bytes), string))
        }
        return string
    }
}

/// Character data collected for the innermost open element.
///
/// The common case (one run with no references and no carriage returns) is kept as a slice of the input and
/// becomes a `String` in one step; anything else is decoded into a buffer reused across elements.
struct TextCollector {
    private enum Kind {
        case empty
        case slice
        case buffer
    }

    private var kind = Kind.empty
    private var start = 0
    private var end = 0
    private var buffer: [UInt8] = []
    /// A reference was decoded: the text counts as content even if it decodes to whitespace.
    var hasReference = false

    var isEmpty: Bool { kind == .empty }

    /// Number of bytes collected so far.
    var count: Int {
        switch kind {
        case .empty: return 0
        case .slice: return end - start
        case .buffer: return buffer.count
        }
    }

    mutating func reset() {
        kind = .empty
        hasReference = false
    }

    /// Records the first run of text as a slice of the input.
    mutating func setSlice(_ start: Int, _ end: Int) {
        kind = .slice
        self.start = start
        self.end = end
    }

    /// Hands out the decoding buffer, holding the text collected so far (the caller appends and gives it back).
    mutating func takeBuffer(from input: XMLInput) -> [UInt8] {
        var result: [UInt8] = []
        swap(&result, &buffer)
        switch kind {
        case .empty:
            result.removeAll(keepingCapacity: true)
        case .slice:
            result.removeAll(keepingCapacity: true)
            result.append(contentsOf: input.slice(start, end))
        case .buffer:
            break
        }
        kind = .buffer
        return result
    }

    mutating func restoreBuffer(_ bytes: consuming [UInt8]) {
        buffer = bytes
    }

    /// Whether the text is more than whitespace.
    func isSignificant(in input: XMLInput) -> Bool {
        if hasReference {
            return true
        }
        switch kind {
        case .empty: return false
        case .slice: return !input.isWhitespace(start, end)
        case .buffer: return !buffer.allSatisfy(ASCII.isWhitespace)
        }
    }

    func string(in input: XMLInput) -> String {
        switch kind {
        case .empty: return ""
        case .slice: return input.string(start, end)
        case .buffer: return String(decoding: buffer, as: UTF8.self)
        }
    }
}
