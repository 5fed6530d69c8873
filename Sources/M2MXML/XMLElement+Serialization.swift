extension XMLElement {
    /// Re-serialises this subtree in `XMLWriter`'s format, declaring on the root the namespaces it uses with the
    /// given preferred prefixes (keyed by namespace URI; fallback `ns0`, `ns1`…). Used to extract a SOAP body element
    /// as a standalone document.
    ///
    /// A preferred prefix of `""` makes that namespace the default namespace for elements (attributes in it still
    /// get a generated prefix). Declarations are written in order of first use, so output is deterministic.
    /// The original `prefix` of each element is ignored, and `text` is written only for elements without children.
    public func serialized(preferredPrefixes: [String: String] = [:], declaration: Bool = true, indent: Int = 2) -> [UInt8] {
        let serializer = TreeSerializer(tree: tree, root: index, preferredPrefixes: preferredPrefixes, indent: indent)
        return serializer.run(declaration: declaration)
    }
}

/// Writes a subtree of an `XMLTree` straight from its bytes (the same output `XMLWriter` gives for the same
/// calls). The tree stores elements in document order, so the subtree is the contiguous range
/// `root ..< nodes[root].subtreeEnd` and is written in one forward pass over its arrays, pinned once.
private struct TreeSerializer {
    let tree: XMLTree
    let root: Int
    let indent: Int
    let plan: NamespacePlan

    init(tree: XMLTree, root: Int, preferredPrefixes: [String: String], indent: Int) {
        self.tree = tree
        self.root = root
        self.indent = min(max(0, indent), 16)
        self.plan = NamespacePlan(tree: tree, root: root, preferredPrefixes: preferredPrefixes)
    }

    func run(declaration: Bool) -> [UInt8] {
        // The parsed document is a good estimate of the output size.
        let sink = ByteSink(capacity: tree.positionsAreOffsets ? tree.sourceCount + 256 : 512)
        if declaration {
            sink.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        }
        var pass = Pass(tree: tree, namespaces: tree.namespaces, plan: plan, indent: indent, sink: sink)
        pass.write(root: root)
        if indent > 0 {
            sink.append(ASCII.lineFeed)
        }
        return sink.bytes
    }

    private struct Pass {
        let tree: XMLTree
        let namespaces: [String]
        let plan: NamespacePlan
        let indent: Int
        let sink: ByteSink

        var nodes: UnsafePointer<XMLTree.Node> { tree.nodes }
        var attributes: UnsafePointer<XMLTree.Attribute> { tree.attributes }

        @inline(__always)
        func bytes(_ span: XMLTree.Span) -> UnsafeBufferPointer<UInt8> {
            tree.bytes(span)
        }

        mutating func write(root: Int) {
            let end = Int(nodes[root].subtreeEnd)
            // Open elements with children: (index, default namespace inside).
            var open: [(index: Int, defaultNamespace: Int32)] = []
            open.reserveCapacity(16)
            var index = root
            while index < end {
                while let last = open.last, index >= Int(nodes[last.index].subtreeEnd) {
                    open.removeLast()
                    newline(depth: open.count)
                    writeEndTag(nodes[last.index])
                }
                let node = nodes[index]
                if let parent = open.last {
                    // The first child (in document order, right after its parent) closes the parent's start tag.
                    if index == parent.index + 1 {
                        sink.append(ASCII.greaterThan)
                    }
                    newline(depth: open.count)
                }
                let inside = writeStartTag(node, inheritedDefault: open.last?.defaultNamespace ?? 0, isRoot: index == root)
                if node.childCount == 0 {
                    if node.text.count > 0 {
                        sink.append(ASCII.greaterThan)
                        sink.appendEscaped(bytes(node.text), attribute: false)
                        writeEndTag(node)
                    } else {
                        sink.append(ASCII.slash, ASCII.greaterThan)
                    }
                } else {
                    open.append((index, inside))
                }
                index += 1
            }
            while let last = open.popLast() {
                newline(depth: open.count)
                writeEndTag(nodes[last.index])
            }
        }

        /// Writes `<prefix:name` and its declarations and attributes (without the closing `>`); returns the
        /// default namespace in effect inside the element.
        private func writeStartTag(_ node: XMLTree.Node, inheritedDefault: Int32, isRoot: Bool) -> Int32 {
            var defaultNamespace = inheritedDefault
            var declaration: Int32 = -1
            let namespace = node.namespace
            sink.append(ASCII.lessThan)
            if namespace == 0 {
                if defaultNamespace != 0 {
                    declaration = 0
                    defaultNamespace = 0
                }
            } else {
                let entry = plan.entries[Int(namespace)]
                if entry.isXML {
                    sink.append("xml:")
                } else if let prefix = entry.elementPrefix, !prefix.isEmpty {
                    sink.append(prefix)
                    sink.append(ASCII.colon)
                } else if defaultNamespace != namespace {
                    declaration = namespace
                    defaultNamespace = namespace
                }
            }
            sink.append(bytes(node.localName))
            if declaration >= 0 {
                sink.append(" xmlns=\"")
                appendEscaped(namespaces[Int(declaration)])
                sink.append(ASCII.doubleQuote)
            }
            if isRoot {
                for (prefix, uri) in plan.declarations {
                    sink.append(" xmlns:")
                    sink.append(prefix)
                    sink.append(ASCII.equals, ASCII.doubleQuote)
                    appendEscaped(uri)
                    sink.append(ASCII.doubleQuote)
                }
            }
            var offset = Int(node.firstAttribute)
            let last = offset + Int(node.attributeCount)
            while offset < last {
                let attribute = attributes[offset]
                sink.append(ASCII.space)
                if attribute.namespace != 0 {
                    let prefix = plan.attributePrefix(attribute.namespace)
                    if !prefix.isEmpty {
                        sink.append(prefix)
                        sink.append(ASCII.colon)
                    }
                }
                sink.append(bytes(attribute.localName))
                sink.append(ASCII.equals, ASCII.doubleQuote)
                sink.appendEscaped(bytes(attribute.value), attribute: true)
                sink.append(ASCII.doubleQuote)
                offset += 1
            }
            return defaultNamespace
        }

        private func writeEndTag(_ node: XMLTree.Node) {
            sink.append(ASCII.lessThan, ASCII.slash)
            let namespace = Int(node.namespace)
            if namespace != 0 {
                let entry = plan.entries[namespace]
                if entry.isXML {
                    sink.append("xml:")
                } else if let prefix = entry.elementPrefix, !prefix.isEmpty {
                    sink.append(prefix)
                    sink.append(ASCII.colon)
                }
            }
            sink.append(bytes(node.localName))
            sink.append(ASCII.greaterThan)
        }

        @inline(__always)
        private func newline(depth: Int) {
            guard indent > 0 else { return }
            sink.append(ASCII.lineFeed)
            sink.appendSpaces(depth * indent)
        }

        private func appendEscaped(_ string: String) {
            string.withUTF8Bytes { sink.appendEscaped($0, attribute: true) }
        }
    }
}

/// The prefixes chosen for serialising one subtree, per namespace index of its tree.
private struct NamespacePlan {
    struct Entry {
        /// Prefix for element names (`""` = default namespace); nil when unused or not assigned.
        var elementPrefix: String?
        /// Non-empty prefix declared on the root, if any.
        var declaredPrefix: String?
        /// The `xml` namespace: always written with the `xml` prefix, never declared.
        var isXML = false
        var seen = false
        var usedByElements = false
        var usedByAttributes = false
    }

    /// One entry per namespace of the tree.
    var entries: [Entry]
    /// `(prefix, uri)` for the `xmlns:prefix` declarations on the root, in order of first use.
    var declarations: [(String, String)] = []

    init(tree: XMLTree, root: Int, preferredPrefixes: [String: String]) {
        entries = Array(repeating: Entry(), count: tree.namespaces.count)
        for index in 1..<max(tree.namespaces.count, 1) where tree.namespaces[index] == xmlNamespaceURI {
            entries[index].isXML = true
        }
        entries[0].seen = true

        // Namespaces in order of first use (elements in document order, each followed by its attributes).
        var order: [Int] = []
        let end = Int(tree.nodes[root].subtreeEnd)
        var lastElementNamespace: Int32 = -1
        let nodes = tree.nodes
        let attributes = tree.attributes
        do {
            do {
                for index in root..<end {
                    let node = nodes[index]
                    let namespace = Int(node.namespace)
                    if node.namespace != lastElementNamespace {
                        lastElementNamespace = node.namespace
                        if !entries[namespace].isXML {
                            if !entries[namespace].seen {
                                entries[namespace].seen = true
                                order.append(namespace)
                            }
                            entries[namespace].usedByElements = true
                        }
                    }
                    var offset = Int(node.firstAttribute)
                    let last = offset + Int(node.attributeCount)
                    while offset < last {
                        let namespace = Int(attributes[offset].namespace)
                        offset += 1
                        guard namespace != 0, !entries[namespace].isXML else { continue }
                        if !entries[namespace].seen {
                            entries[namespace].seen = true
                            order.append(namespace)
                        }
                        entries[namespace].usedByAttributes = true
                    }
                }
            }
        }

        // Preferred prefixes first, so generated ones can avoid them.
        var taken: [String] = []
        var hasDefault = false
        for namespace in order {
            guard let preferred = preferredPrefixes[tree.namespaces[namespace]] else { continue }
            if preferred.isEmpty {
                if !hasDefault && entries[namespace].usedByElements {
                    hasDefault = true
                    entries[namespace].elementPrefix = ""
                }
            } else if ASCII.isNCName(preferred), preferred != "xml", preferred != "xmlns", !taken.contains(preferred) {
                taken.append(preferred)
                entries[namespace].declaredPrefix = preferred
            }
        }
        var counter = 0
        for namespace in order where entries[namespace].declaredPrefix == nil {
            let needsPrefix = entries[namespace].usedByAttributes || entries[namespace].elementPrefix == nil
            guard needsPrefix else { continue }
            var candidate = "ns\(counter)"
            while taken.contains(candidate) {
                counter += 1
                candidate = "ns\(counter)"
            }
            counter += 1
            taken.append(candidate)
            entries[namespace].declaredPrefix = candidate
        }
        for namespace in order {
            guard let prefix = entries[namespace].declaredPrefix else { continue }
            if entries[namespace].elementPrefix == nil {
                entries[namespace].elementPrefix = prefix
            }
            declarations.append((prefix, tree.namespaces[namespace]))
        }
    }

    /// The prefix for attributes in `namespace` (`""` for no namespace).
    func attributePrefix(_ namespace: Int32) -> String {
        if namespace == 0 {
            return ""
        }
        let entry = entries[Int(namespace)]
        if entry.isXML {
            return "xml"
        }
        return entry.declaredPrefix ?? ""
    }
}
