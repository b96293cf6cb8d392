import RelayCore

/// A destination's distinct aliases, numbered in configuration order, and the interned sets of them that users hold.
///
/// Users share a handful of alias combinations, so each user stores one 32-bit set number instead of a list of
/// strings; set 0 is the empty set. Aliases within a set are kept sorted by number, which is configuration order, so
/// lines list them in that order.
struct AliasCatalog: Sendable {
    let aliases: [String]
    let aliasBytes: [[UInt8]]
    private let numbers: [String: UInt16]

    init(_ destination: Destination) {
        var aliases: [String] = []
        var numbers: [String: UInt16] = [:]
        for mapping in destination.mappings where numbers[mapping.alias] == nil {
            numbers[mapping.alias] = UInt16(truncatingIfNeeded: aliases.count)
            aliases.append(mapping.alias)
        }
        self.aliases = aliases
        self.numbers = numbers
        aliasBytes = aliases.map { Array($0.utf8) }
    }

    func number(of alias: String) -> UInt16? { numbers[alias] }
}

/// Interned alias sets (sorted alias numbers). Set 0 is the empty set.
struct AliasSetPool: Sendable {
    private(set) var sets: [[UInt16]] = [[]]
    private var lookup: [[UInt16]: Int32] = [[]: 0]

    /// Sets of up to four aliases by a packed key (alias + 1 in each 16 bits): the common case hashes one word.
    private var small: [UInt64: Int32] = [0: 0]

    /// The number of `set`, which must be sorted and free of duplicates.
    mutating func intern(_ set: [UInt16]) -> Int32 {
        if set.count <= 4, set.allSatisfy({ $0 < UInt16.max }) {
            var key: UInt64 = 0
            for alias in set { key = key << 16 | UInt64(alias + 1) }
            if let number = small[key] { return number }
            let number = add(set)
            small[key] = number
            return number
        }
        if let number = lookup[set] { return number }
        return add(set)
    }

    private mutating func add(_ set: [UInt16]) -> Int32 {
        if let number = lookup[set] { return number }
        let number = Int32(sets.count)
        sets.append(set)
        lookup[set] = number
        return number
    }

    subscript(number: Int32) -> [UInt16] { sets[Int(number)] }

    /// Members of `a` not in `b`, both sorted.
    func difference(_ a: Int32, _ b: Int32) -> [UInt16] {
        if a == b || a == 0 { return [] }
        let right = sets[Int(b)]
        return sets[Int(a)].filter { !right.contains($0) }
    }

    var byteSize: Int { sets.reduce(0) { $0 + $1.count * 2 + 48 } }
}
