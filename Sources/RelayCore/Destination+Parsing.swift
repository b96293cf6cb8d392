extension Destination {
    /// What could be read of one `destinations[i]` entry: `id` and `name` even when the rest is broken (for the
    /// duplicate checks), `complete` only when the entry has no problem.
    struct Reading {
        var id: Int?
        var name: String?
        var complete: Destination?
    }

    static func read(_ reader: MappingReader) -> Reading {
        let id = reader.integer("id", required: true, atLeast: 1)
        let name = reader.string("name", required: true)
        let kindName = reader.string("kind", required: true)

        var kind: Kind?
        var kindKnown = true
        switch kindName {
        case "realtime": kind = RealtimeSettings.read(reader).map(Kind.realtime)
        case "batch": kind = BatchSettings.read(reader, destinationName: name).map(Kind.batch)
        case "url": kind = URLSettings.read(reader).map(Kind.url)
        case "cookie": kind = CookieSettings.read(reader).map(Kind.cookie)
        case let other?:
            kindKnown = false
            reader.report("kind", "unknown kind \"\(other)\" (\(Kind.names.joined(separator: ", ")))")
        case nil:
            kindKnown = false
        }

        let mappings = readMappings(reader, rules: AliasRules(kindName: kindName, kind: kind))
        // Without a known kind, the other keys cannot be judged: reporting them all would bury the real problem.
        if kindKnown { reader.reportUnknownKeys() }

        var complete: Destination?
        if let id, let name, let kind, let mappings {
            complete = Destination(id: id, name: name, kind: kind, mappings: mappings)
        }
        return Reading(id: id, name: name, complete: complete)
    }

    private static func readMappings(_ reader: MappingReader, rules: AliasRules) -> [SegmentMapping]? {
        guard let nodes = reader.sequence("mappings", required: true) else { return nil }
        var mappings: [SegmentMapping] = []
        var indices: [Int] = []  // of each kept mapping in the file, for duplicate reports
        var valid = true
        for (index, node) in nodes.enumerated() {
            let path = "\(reader.path("mappings"))[\(index)]"
            guard let entry = MappingReader(node, path: path, validation: reader.validation) else {
                valid = false
                continue
            }
            guard let mapping = SegmentMapping.read(entry, rules: rules) else {
                valid = false
                continue
            }
            if let first = mappings.firstIndex(of: mapping) {
                entry.report(nil, "same mapping as mappings[\(indices[first])]")
                valid = false
                continue
            }
            mappings.append(mapping)
            indices.append(index)
        }
        return valid ? mappings : nil
    }
}
