/// The immutable store behind the `XMLElement`s of one document.
///
/// Elements are stored in document order (pre-order), so an element's subtree is the contiguous range
/// `index ..< subtreeEnd`. Each element's children are listed contiguously in `childList` and its attributes in
/// `attributes`. Names, text and attribute values are `Span`s: byte ranges of `source` (a copy of the parsed
/// document) or, for text that needed decoding (references, line ends, several runs), of `decoded`. Each
/// namespace URI is one `String` in `namespaces` (index 0 is the empty namespace).
///
/// Everything but the namespace strings lives in one allocation that the tree owns and never changes, so reading
/// it needs neither reference counting nor bounds checks (indices come from the tree itself).
@usableFromInline
final class XMLTree: @unchecked Sendable {
    /// A byte range in `source` (`start >= 0`) or in `decoded` (at offset `~start`); `count < 0` marks an absent
    /// value (an element without a prefix).
    @usableFromInline
    struct Span: Sendable {
        @usableFromInline var start: Int32
        @usableFromInline var count: Int32

        static let empty = Span(start: 0, count: 0)
        static let absent = Span(start: 0, count: -1)

        var isAbsent: Bool { count < 0 }

        @inline(__always)
        static func source(_ start: Int, _ end: Int) -> Span {
            Span(start: Int32(truncatingIfNeeded: start), count: Int32(truncatingIfNeeded: end - start))
        }

        @inline(__always)
        static func decoded(_ start: Int, _ end: Int) -> Span {
            Span(start: ~Int32(truncatingIfNeeded: start), count: Int32(truncatingIfNeeded: end - start))
        }
    }

    @usableFromInline
    struct Node: Sendable {
        @usableFromInline var localName: Span
        /// `.absent` when the name has no prefix.
        @usableFromInline var prefix: Span
        /// Empty for elements with children.
        @usableFromInline var text: Span
        /// Index in `namespaces`.
        @usableFromInline var namespace: Int32
        @usableFromInline var firstChild: Int32 = 0
        @usableFromInline var childCount: Int32 = 0
        @usableFromInline var firstAttribute: Int32
        @usableFromInline var attributeCount: Int32
        /// One past the last element of this element's subtree.
        @usableFromInline var subtreeEnd: Int32 = 0
        /// Parsed trees: byte offset of the start tag. Constructed trees: the line given.
        @usableFromInline var position: Int
    }

    struct Attribute: Sendable {
        var localName: Span
        var value: Span
        var namespace: Int32
    }

    @usableFromInline let nodes: UnsafePointer<Node>
    @usableFromInline let nodeCount: Int
    /// The node records, owned by the tree (handed over by the parser or builder).
    private let nodeStorage: UnsafeMutablePointer<Node>
    @usableFromInline let childList: UnsafePointer<Int32>
    let attributes: UnsafePointer<Attribute>
    @usableFromInline let source: UnsafePointer<UInt8>
    let sourceCount: Int
    @usableFromInline let decoded: UnsafePointer<UInt8>
    @usableFromInline let namespaces: [String]
    /// True when `Node.position` is a byte offset in `source` (parsed trees).
    let positionsAreOffsets: Bool
    private let block: UnsafeMutableRawPointer

    /// Creates a tree that takes over `nodes` (deallocated with the tree) and copies the rest into one block.
    init(
        source: UnsafeBufferPointer<UInt8>, decoded: [UInt8], namespaces: [String], nodes: NodeBuffer, childList: [Int32],
        attributes: [Attribute], positionsAreOffsets: Bool
    ) {
        // One block: attributes, child list, then the bytes (source, decoded).
        func aligned(_ offset: Int) -> Int { (offset + 7) & ~7 }
        let attributesOffset = 0
        let childListOffset = aligned(attributesOffset + attributes.count * MemoryLayout<Attribute>.stride)
        let sourceOffset = childListOffset + childList.count * MemoryLayout<Int32>.stride
        let decodedOffset = sourceOffset + source.count
        let size = decodedOffset + decoded.count
        let block = UnsafeMutableRawPointer.allocate(byteCount: max(size, 8), alignment: 8)
        self.block = block
        attributes.withUnsafeBufferPointer { attributes in
            let target = (block + attributesOffset).bindMemory(to: Attribute.self, capacity: attributes.count)
            if let base = attributes.baseAddress { target.initialize(from: base, count: attributes.count) }
        }
        childList.withUnsafeBufferPointer { childList in
            let target = (block + childListOffset).bindMemory(to: Int32.self, capacity: childList.count)
            if let base = childList.baseAddress { target.initialize(from: base, count: childList.count) }
        }
        let bytes = (block + sourceOffset).bindMemory(to: UInt8.self, capacity: source.count + decoded.count)
        if let base = source.baseAddress { bytes.initialize(from: base, count: source.count) }
        decoded.withUnsafeBufferPointer { decoded in
            if let base = decoded.baseAddress { (bytes + source.count).initialize(from: base, count: decoded.count) }
        }
        self.nodeStorage = nodes.base
        self.nodes = UnsafePointer(nodes.base)
        self.nodeCount = nodes.count
        self.attributes = UnsafePointer((block + attributesOffset).assumingMemoryBound(to: Attribute.self))
        self.childList = UnsafePointer((block + childListOffset).assumingMemoryBound(to: Int32.self))
        self.source = UnsafePointer(bytes)
        self.sourceCount = source.count
        self.decoded = UnsafePointer(bytes + source.count)
        self.namespaces = namespaces
        self.positionsAreOffsets = positionsAreOffsets
    }

    deinit {
        block.deallocate()
        nodeStorage.deallocate()
    }

    /// A growable buffer of node records, without the copy-on-write checks of an `Array` (the parser updates records
    /// in place all the time). Its owner deallocates it, or hands it to a tree.
    struct NodeBuffer {
        private(set) var base: UnsafeMutablePointer<Node>
        private(set) var count = 0
        private var capacity: Int

        init(capacity: Int) {
            self.capacity = max(capacity, 4)
            base = .allocate(capacity: self.capacity)
        }

        var isEmpty: Bool { count == 0 }

        @inline(__always)
        subscript(index: Int) -> Node {
            get { base[index] }
            nonmutating set { base[index] = newValue }
        }

        /// The record at `index`, to update in place.
        @inline(__always)
        func pointer(_ index: Int) -> UnsafeMutablePointer<Node> {
            base + index
        }

        @inline(__always)
        mutating func append(_ node: Node) {
            if count == capacity {
                grow()
            }
            (base + count).initialize(to: node)
            count &+= 1
        }

        private mutating func grow() {
            let newCapacity = capacity * 2
            let newBase = UnsafeMutablePointer<Node>.allocate(capacity: newCapacity)
            newBase.moveInitialize(from: base, count: count)
            base.deallocate()
            base = newBase
            capacity = newCapacity
        }

        func deallocate() {
            base.deallocate()
        }
    }

    // MARK: Bytes

    /// The bytes of a span (empty for an empty or absent one).
    @inlinable @inline(__always)
    func bytes(_ span: Span) -> UnsafeBufferPointer<UInt8> {
        guard span.count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        let base = span.start >= 0 ? source + Int(span.start) : decoded + Int(~span.start)
        return UnsafeBufferPointer(start: base, count: Int(span.count))
    }

    @inlinable @inline(__always)
    func withBytes<R, E: Error>(_ span: Span, _ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try body(bytes(span))
    }

    func string(_ span: Span) -> String {
        guard span.count > 0 else { return "" }
        return withBytes(span) { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether the bytes of `span` are the UTF-8 of `string`.
    @inline(__always)
    func equals(_ span: Span, _ string: String) -> Bool {
        let utf8 = string.utf8
        guard utf8.count == Int(max(span.count, 0)) else { return false }
        return withBytes(span) { bytes in
            let compared = utf8.withContiguousStorageIfAvailable { other in
                bytes.count == 0 || memoryEqual(bytes.baseAddress!, other.baseAddress!, bytes.count)
            }
            return compared ?? bytes.elementsEqual(utf8)
        }
    }

    static func equal(_ lhs: XMLTree, _ a: Span, _ rhs: XMLTree, _ b: Span) -> Bool {
        guard max(a.count, 0) == max(b.count, 0) else { return false }
        return lhs.withBytes(a) { x in
            rhs.withBytes(b) { y in x.count == 0 || memoryEqual(x.baseAddress!, y.baseAddress!, x.count) }
        }
    }

    /// Index of `uri` in `namespaces`, if the document uses it.
    func namespaceIndex(of uri: String) -> Int32? {
        if uri.isEmpty { return 0 }
        for index in 1..<namespaces.count where namespaces[index] == uri {
            return Int32(index)
        }
        return nil
    }

    // MARK: Lines

    /// 1-based line of an element (0 for constructed elements without one).
    func line(of index: Int) -> Int {
        var cursor = LineCursor()
        return cursor.line(of: index, in: self)
    }

    /// Computes lines of parsed elements; cheap when asked in document order.
    struct LineCursor {
        private var offset = 0
        private var line = 1

        mutating func line(of index: Int, in tree: XMLTree) -> Int {
            let position = tree.nodes[index].position
            guard tree.positionsAreOffsets else { return position }
            if position < offset {
                offset = 0
                line = 1
            }
            line = lineNumber(in: UnsafeBufferPointer(start: tree.source, count: tree.sourceCount), at: position, from: offset, line: line)
            offset = position
            return line
        }
    }
}

/// Whether `a` and `b` (of equal length) are equal ignoring the case of ASCII letters.
@usableFromInline
func equalIgnoringASCIICase(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    for index in 0..<a.count {
        let p = a[index]
        let q = b[index]
        if p != q {
            guard p | 0x20 == q | 0x20, (p | 0x20) &- 0x61 < 26 else { return false }
        }
    }
    return true
}

/// Byte equality of two memory ranges of `count` bytes, eight at a time.
@inlinable
func memoryEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    var index = 0
    let x = UnsafeRawPointer(a)
    let y = UnsafeRawPointer(b)
    while count - index >= 8 {
        guard x.loadUnaligned(fromByteOffset: index, as: UInt64.self) == y.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        else { return false }
        index &+= 8
    }
    while index < count {
        guard a[index] == b[index] else { return false }
        index &+= 1
    }
    return true
}

/// The 1-based line of `target`, counting from `start` (which is on line `line`): LF, CRLF and lone CR each
/// end a line.
func lineNumber(in input: UnsafeBufferPointer<UInt8>, at target: Int, from start: Int, line startLine: Int) -> Int {
    let end = input.count
    let target = min(max(target, 0), end)
    var index = min(start, target)
    var line = startLine
    if let base = input.baseAddress {
        // Eight bytes at a time: count line feeds, plus carriage returns not followed by a line feed.
        let raw = UnsafeRawPointer(base)
        while target - index >= 8 {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let lineFeeds = zeroBytes(word ^ 0x0A0A_0A0A_0A0A_0A0A)
            var carriageReturns = zeroBytes(word ^ 0x0D0D_0D0D_0D0D_0D0D)
            if carriageReturns != 0 {
                // Little-endian: the byte after byte i is byte i + 1, eight bits higher.
                var followedByLineFeed = lineFeeds >> 8
                if index + 8 < end && input[index + 8] == ASCII.lineFeed {
                    followedByLineFeed |= 0x80 << 56
                }
                carriageReturns &= ~followedByLineFeed
            }
            line &+= countMarkedBytes(lineFeeds) &+ countMarkedBytes(carriageReturns)
            index &+= 8
        }
    }
    while index < target {
        let byte = input[index]
        if byte == ASCII.lineFeed {
            line &+= 1
        } else if byte == ASCII.carriageReturn && (index + 1 >= end || input[index + 1] != ASCII.lineFeed) {
            line &+= 1
        }
        index &+= 1
    }
    return line
}

/// High bit set in exactly the bytes of `word` that are zero.
@inline(__always)
private func zeroBytes(_ word: UInt64) -> UInt64 {
    let low: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
    return ~(((word & low) &+ low) | word | low)
}

/// Number of bytes whose high bit is set in a `zeroBytes` result (the multiply sums them into the top byte).
@inline(__always)
private func countMarkedBytes(_ marks: UInt64) -> Int {
    Int(truncatingIfNeeded: ((marks >> 7) &* 0x0101_0101_0101_0101) >> 56)
}

// MARK: - Building trees in code

extension XMLTree {
    /// Builds a tree from `XMLElement(name:…)` arguments, copying the given children's subtrees.
    struct Builder {
        private var bytes: [UInt8] = []
        private var namespaces: [String] = [""]
        private var nodes: [Node] = []
        private var childList: [Int32] = []
        private var attributes: [Attribute] = []

        private mutating func span(_ string: String) -> Span {
            let start = bytes.count
            bytes.append(contentsOf: string.utf8)
            return .source(start, bytes.count)
        }

        private mutating func span(from tree: XMLTree, _ other: Span) -> Span {
            guard !other.isAbsent else { return .absent }
            let start = bytes.count
            tree.withBytes(other) { bytes.append(contentsOf: $0) }
            return .source(start, bytes.count)
        }

        private mutating func namespace(_ uri: String) -> Int32 {
            if let index = namespaces.firstIndex(of: uri) {
                return Int32(index)
            }
            namespaces.append(uri)
            return Int32(namespaces.count - 1)
        }

        mutating func addRoot(
            name: XMLName, prefix: String?, attributes list: [XMLAttribute], children: [XMLElement], text: String,
            line: Int
        ) {
            let firstAttribute = Int32(attributes.count)
            for attribute in list {
                attributes.append(
                    Attribute(localName: span(attribute.name.localName), value: span(attribute.value),
                              namespace: namespace(attribute.name.namespace))
                )
            }
            nodes.append(
                Node(
                    localName: span(name.localName), prefix: prefix.map { span($0) } ?? .absent,
                    text: children.isEmpty ? span(text) : .empty, namespace: namespace(name.namespace),
                    firstChild: Int32(childList.count), childCount: Int32(children.count),
                    firstAttribute: firstAttribute, attributeCount: Int32(list.count), position: line
                )
            )
            // Slots for the root's children, filled as each subtree is copied (in pre-order, iteratively).
            let slots = childList.count
            childList.append(contentsOf: repeatElement(0, count: children.count))
            for (offset, child) in children.enumerated() {
                copy(child, into: slots + offset)
            }
            nodes[0].subtreeEnd = Int32(nodes.count)
        }

        private mutating func copy(_ element: XMLElement, into slot: Int) {
            let tree = element.tree
            var lines = LineCursor()
            // (source index, slot in childList to fill, index of the parent's node to close when done)
            var pending: [(source: Int, slot: Int)] = [(element.index, slot)]
            var open: [(node: Int, sourceEnd: Int)] = []
            while let (index, slot) = pending.popLast() {
                while let last = open.last, index >= last.sourceEnd {
                    nodes[last.node].subtreeEnd = Int32(nodes.count)
                    open.removeLast()
                }
                let node = tree.nodes[index]
                let firstAttribute = Int32(attributes.count)
                for offset in 0..<Int(node.attributeCount) {
                    let attribute = tree.attributes[Int(node.firstAttribute) + offset]
                    attributes.append(
                        Attribute(localName: span(from: tree, attribute.localName), value: span(from: tree, attribute.value),
                                  namespace: namespace(tree.namespaces[Int(attribute.namespace)]))
                    )
                }
                let newIndex = nodes.count
                childList[slot] = Int32(newIndex)
                let firstChild = childList.count
                childList.append(contentsOf: repeatElement(0, count: Int(node.childCount)))
                nodes.append(
                    Node(
                        localName: span(from: tree, node.localName), prefix: span(from: tree, node.prefix),
                        text: span(from: tree, node.text), namespace: namespace(tree.namespaces[Int(node.namespace)]),
                        firstChild: Int32(firstChild), childCount: node.childCount,
                        firstAttribute: firstAttribute, attributeCount: node.attributeCount,
                        position: lines.line(of: index, in: tree)
                    )
                )
                open.append((newIndex, Int(node.subtreeEnd)))
                var offset = Int(node.childCount) - 1
                while offset >= 0 {
                    pending.append((Int(tree.childList[Int(node.firstChild) + offset]), firstChild + offset))
                    offset -= 1
                }
            }
            while let last = open.popLast() {
                nodes[last.node].subtreeEnd = Int32(nodes.count)
            }
        }

        func finish() -> XMLTree {
            var buffer = NodeBuffer(capacity: nodes.count)
            for node in nodes {
                buffer.append(node)
            }
            return bytes.withUnsafeBufferPointer { bytes in
                XMLTree(
                    source: bytes, decoded: [], namespaces: namespaces, nodes: buffer, childList: childList,
                    attributes: attributes, positionsAreOffsets: false
                )
            }
        }
    }
}
