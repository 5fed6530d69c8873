extension XMLElement {
    /// Re-serialises this subtree with `XMLWriter`, declaring on the root the namespaces it uses with the given
    /// preferred prefixes (keyed by namespace URI; fallback `ns0`, `ns1`…). Used to extract a SOAP body element as a
    /// standalone document.
    ///
    /// A preferred prefix of `""` makes that namespace the default namespace for elements (attributes in it still
    /// get a generated prefix). Declarations are written in order of first use, so output is deterministic.
    /// The original `prefix` of each element is ignored, and `text` is written only for elements without children.
    public func serialized(preferredPrefixes: [String: String] = [:], declaration: Bool = true, indent: Int = 2) -> [UInt8] {
        let plan = NamespacePlan(root: self, preferredPrefixes: preferredPrefixes)
        var writer = XMLWriter(declaration: declaration, indent: indent)

        struct Cursor {
            var element: XMLElement
            var nextChild: Int
            var defaultNamespace: String
        }

        /// Writes the start tag (and, for leaves, the whole element); returns the default namespace in effect inside.
        func open(_ element: XMLElement, inheritedDefault: String, isRoot: Bool) -> String {
            var defaultNamespace = inheritedDefault
            var declaration: String? = nil
            let namespace = element.name.namespace
            var prefix = ""
            if namespace.isEmpty {
                if !defaultNamespace.isEmpty {
                    declaration = ""
                    defaultNamespace = ""
                }
            } else if namespace == xmlNamespaceURI {
                prefix = "xml"
            } else if let elementPrefix = plan.elementPrefix(for: namespace), !elementPrefix.isEmpty {
                prefix = elementPrefix
            } else if defaultNamespace != namespace {
                declaration = namespace
                defaultNamespace = namespace
            }
            writer.startElement(prefix: prefix, localName: element.name.localName)
            if let declaration {
                writer.attribute(prefix: "", localName: "xmlns", value: declaration)
            }
            if isRoot {
                for (declaredPrefix, uri) in plan.declarations {
                    writer.attribute(prefix: "xmlns", localName: declaredPrefix, value: uri)
                }
            }
            for attribute in element.attributes {
                writer.attribute(
                    prefix: plan.attributePrefix(for: attribute.name.namespace),
                    localName: attribute.name.localName,
                    value: attribute.value
                )
            }
            if element.children.isEmpty {
                writer.text(element.text)
                writer.endElement()
            }
            return defaultNamespace
        }

        let rootDefault = open(self, inheritedDefault: "", isRoot: true)
        guard !children.isEmpty else { return writer.bytes }
        var stack = [Cursor(element: self, nextChild: 0, defaultNamespace: rootDefault)]
        while let top = stack.indices.last {
            let index = stack[top].nextChild
            guard index < stack[top].element.children.count else {
                writer.endElement()
                stack.removeLast()
                continue
            }
            stack[top].nextChild = index + 1
            let child = stack[top].element.children[index]
            let childDefault = open(child, inheritedDefault: stack[top].defaultNamespace, isRoot: false)
            if !child.children.isEmpty {
                stack.append(Cursor(element: child, nextChild: 0, defaultNamespace: childDefault))
            }
        }
        return writer.bytes
    }
}

/// The prefixes chosen for serialising one subtree.
private struct NamespacePlan {
    private struct Entry {
        var uri: String
        var usedByElements = false
        var usedByAttributes = false
        /// Prefix for element names (`""` = default namespace); nil until assigned.
        var elementPrefix: String?
        /// Non-empty prefix declared on the root, if any.
        var declaredPrefix: String?
    }

    /// Namespaces in order of first use.
    private var entries: [Entry] = []
    private var indexByURI: [String: Int] = [:]
    /// `(prefix, uri)` for the `xmlns:prefix` declarations on the root, in order of first use.
    private(set) var declarations: [(String, String)] = []

    init(root: XMLElement, preferredPrefixes: [String: String]) {
        // Collect namespaces in document order (iteratively: subtrees may be deep). Consecutive names mostly
        // share a namespace, so the last one is checked before hashing.
        var lastURI: String? = nil
        var lastIndex = 0
        func note(_ namespace: String, attribute: Bool) {
            guard !namespace.isEmpty, namespace != xmlNamespaceURI else { return }
            let index: Int
            if namespace == lastURI {
                index = lastIndex
            } else if let known = entryIndex(for: namespace) {
                index = known
            } else {
                index = entries.count
                entries.append(Entry(uri: namespace))
                indexByURI[namespace] = index
            }
            if attribute {
                entries[index].usedByAttributes = true
            } else {
                entries[index].usedByElements = true
            }
            lastURI = namespace
            lastIndex = index
        }
        func noteNames(of element: XMLElement) {
            note(element.name.namespace, attribute: false)
            for attribute in element.attributes {
                note(attribute.name.namespace, attribute: true)
            }
        }
        noteNames(of: root)
        var pending: [(children: [XMLElement], next: Int)] = [(root.children, 0)]
        while let top = pending.indices.last {
            let index = pending[top].next
            guard index < pending[top].children.count else {
                pending.removeLast()
                continue
            }
            pending[top].next = index + 1
            noteNames(of: pending[top].children[index])
            if !pending[top].children[index].children.isEmpty {
                pending.append((pending[top].children[index].children, 0))
            }
        }

        // Preferred prefixes first, so generated ones can avoid them.
        var taken: Set<String> = []
        var hasDefault = false
        for index in entries.indices {
            guard let preferred = preferredPrefixes[entries[index].uri] else { continue }
            if preferred.isEmpty {
                if !hasDefault && entries[index].usedByElements {
                    hasDefault = true
                    entries[index].elementPrefix = ""
                }
            } else if ASCII.isNCName(preferred), preferred != "xml", preferred != "xmlns", !taken.contains(preferred) {
                taken.insert(preferred)
                entries[index].declaredPrefix = preferred
            }
        }
        var counter = 0
        for index in entries.indices where entries[index].declaredPrefix == nil {
            let needsPrefix = entries[index].usedByAttributes || entries[index].elementPrefix == nil
            guard needsPrefix else { continue }
            var candidate = "ns\(counter)"
            while taken.contains(candidate) {
                counter += 1
                candidate = "ns\(counter)"
            }
            counter += 1
            taken.insert(candidate)
            entries[index].declaredPrefix = candidate
        }
        for index in entries.indices {
            guard let prefix = entries[index].declaredPrefix else { continue }
            if entries[index].elementPrefix == nil {
                entries[index].elementPrefix = prefix
            }
            declarations.append((prefix, entries[index].uri))
        }
    }

    /// Few namespaces (the usual case) are found by comparison, which is cheap for the shared URI strings of a
    /// parsed tree; many go through the hash index.
    private func entryIndex(for namespace: String) -> Int? {
        if entries.count <= 8 {
            return entries.firstIndex { $0.uri == namespace }
        }
        return indexByURI[namespace]
    }

    private func entry(for namespace: String) -> Entry? {
        entryIndex(for: namespace).map { entries[$0] }
    }

    /// The prefix for elements in `namespace` (`""` for the default namespace).
    func elementPrefix(for namespace: String) -> String? {
        entry(for: namespace)?.elementPrefix
    }

    /// The prefix for attributes in `namespace` (`""` for no namespace).
    func attributePrefix(for namespace: String) -> String {
        if namespace.isEmpty {
            return ""
        }
        if namespace == xmlNamespaceURI {
            return "xml"
        }
        return entry(for: namespace)?.declaredPrefix ?? ""
    }
}
