/// The namespace declarations in scope, as a stack that grows at start tags and shrinks at end tags, and the
/// document's namespace table.
///
/// Prefixes are compared as bytes of the input, so resolving one allocates nothing. Each distinct namespace URI
/// becomes one `String` in `namespaces` (index 0 is the empty namespace, index 1 the `xml` namespace); elements
/// and attributes refer to it by index.
struct NamespaceScope {
    struct Binding {
        /// Offset of the prefix in the input (its length is 0 for the default namespace).
        var prefixStart: Int
        var prefixLength: Int
        /// Index in `namespaces`.
        var namespace: Int32
    }

    /// Index of the `xml` namespace, bound to the `xml` prefix without a declaration.
    static let xmlNamespace: Int32 = 1

    private var bindings: [Binding] = []
    private(set) var namespaces: [String] = ["", xmlNamespaceURI]
    /// The caller's strings for URIs it expects, used instead of new ones.
    var knownNamespaces: [String] = []
    /// Hash index of `namespaces`, built only when a document uses many of them.
    private var indexByURI: [String: Int32] = [:]

    private static let linearSearchLimit = 16

    init() {
        bindings.reserveCapacity(8)
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

    /// The namespace bound to the prefix `input[prefixStart..<prefixEnd]` (empty range: the default namespace).
    @inline(__always)
    func lookup(prefixStart: Int, prefixEnd: Int, in input: XMLInput) -> Int32? {
        let length = prefixEnd - prefixStart
        var index = bindings.count - 1
        while index >= 0 {
            if bindings[index].prefixLength == length
                && input.bytesEqual(bindings[index].prefixStart, prefixStart, count: length)
            {
                return bindings[index].namespace
            }
            index -= 1
        }
        if length == 3 && input.equals(prefixStart, prefixEnd, "xml") {
            return Self.xmlNamespace
        }
        return nil
    }

    /// The index of the namespace with these URI bytes, adding it when it is new.
    mutating func intern(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        if bytes.isEmpty {
            return 0
        }
        if namespaces.count <= Self.linearSearchLimit {
            for index in 1..<namespaces.count where Self.equal(namespaces[index], bytes) {
                return Int32(index)
            }
        } else {
            let string = String(decoding: bytes, as: UTF8.self)
            if let index = indexByURI[string] {
                return index
            }
        }
        let string = knownNamespaces.first { Self.equal($0, bytes) } ?? String(decoding: bytes, as: UTF8.self)
        namespaces.append(string)
        let index = Int32(namespaces.count - 1)
        if namespaces.count > Self.linearSearchLimit {
            if indexByURI.isEmpty {
                for (offset, uri) in namespaces.enumerated() {
                    indexByURI[uri] = Int32(offset)
                }
            } else {
                indexByURI[string] = index
            }
        }
        return index
    }

    private static func equal(_ string: String, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let utf8 = string.utf8
        guard utf8.count == bytes.count else { return false }
        return utf8.withContiguousStorageIfAvailable { stored in
            memoryEqual(stored.baseAddress!, bytes.baseAddress!, bytes.count)
        } ?? utf8.elementsEqual(bytes)
    }
}
