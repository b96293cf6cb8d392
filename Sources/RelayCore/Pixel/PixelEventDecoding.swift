import RelayEncoding

/// One walk over a pixel event's JSON with the shared strict scanner. With `materialize` off (the audit's hot path)
/// no string is built: the pixel id is hashed where it lies in the record.
struct PixelEventDecoding {
    struct Fields {
        var kind: PixelEvent.Kind = .fired
        var key = PixelKey(hi: 0, lo: 0)
        var pixelID: String?
        var destinationID: Int64 = 0
        var uuid: String?
        var ts: Int64 = 0
        var aliases: [String] = []
        var url: String?
        var source: PixelEvent.Source?
    }

    /// A pixel id longer than this is refused: ids the edge issues are about 40 bytes.
    static let maxPixelIDBytes = 256

    private var scanner: JSONScanner
    private let materialize: Bool

    init(_ scanner: JSONScanner, materialize: Bool) {
        self.scanner = scanner
        self.materialize = materialize
    }

    private enum Key: UInt16, CaseIterable {
        case type = 1, pixelID = 2, destinationID = 4, ts = 8, uuid = 16, url = 32, source = 64, aliases = 128

        var name: StaticString {
            switch self {
            case .type: "type"
            case .pixelID: "pixel_id"
            case .destinationID: "destination_id"
            case .ts: "ts"
            case .uuid: "uuid"
            case .url: "url"
            case .source: "source"
            case .aliases: "aliases"
            }
        }

        var text: String { name.description }
    }

    mutating func run() throws(MalformedInput) -> Fields {
        var fields = Fields()
        var seen: UInt16 = 0
        scanner.skipWhitespace()
        guard scanner.next == UInt8(ascii: "{") else { throw MalformedInput("not a JSON object") }
        if try scanner.beginObject() {
            repeat {
                let raw = try scanner.objectKey()
                if let key = knownKey(raw) {
                    guard seen & key.rawValue == 0 else { throw MalformedInput("\(key.text): duplicate key") }
                    seen |= key.rawValue
                    try read(key, into: &fields)
                } else {
                    try scanner.skipValue(depth: 1)
                }
                scanner.skipWhitespace()
                guard !scanner.isAtEnd else { throw MalformedInput("unterminated object at end of input") }
            } while try scanner.nextMember()
        }
        scanner.skipWhitespace()
        guard scanner.isAtEnd else { throw scanner.syntaxError("trailing characters after the object") }
        let required = [Key.type, .pixelID, .destinationID, .ts]
        if seen & Self.requiredMask != Self.requiredMask, let key = required.first(where: { seen & $0.rawValue == 0 }) {
            throw MalformedInput("\(key.text): missing")
        }
        return fields
    }

    private static let requiredMask = Key.type.rawValue | Key.pixelID.rawValue | Key.destinationID.rawValue
        | Key.ts.rawValue

    /// The known key a key token names, if any. Without escapes (all but forged records) its length leaves one
    /// candidate, compared once, instead of every name in turn.
    private func knownKey(_ raw: JSONScanner.RawString) -> Key? {
        guard !raw.hasEscapes else { return Key.allCases.first { scanner.equals(raw, $0.name) } }
        let candidate: Key
        switch raw.end - raw.start {
        case 2: candidate = .ts
        case 3: candidate = .url
        case 4: candidate = scanner.bytes[raw.start] == UInt8(ascii: "t") ? .type : .uuid
        case 6: candidate = .source
        case 7: candidate = .aliases
        case 8: candidate = .pixelID
        case 14: candidate = .destinationID
        default: return nil
        }
        return scanner.equals(raw, candidate.name) ? candidate : nil
    }

    private mutating func read(_ key: Key, into fields: inout Fields) throws(MalformedInput) {
        switch key {
        case .type:
            let raw = try string(key)
            if scanner.equals(raw, "fired") { fields.kind = .fired }
            else if scanner.equals(raw, "received") { fields.kind = .received }
            else { throw MalformedInput("type: expected \"fired\" or \"received\"") }
        case .pixelID:
            let raw = try string(key)
            guard raw.end > raw.start else { throw MalformedInput("pixel_id: empty") }
            let tooLong = scanner.withContent(raw) { content -> Bool in
                guard content.count <= Self.maxPixelIDBytes else { return true }
                fields.key = PixelKey(content.assumingMemoryBound(to: UInt8.self))
                return false
            }
            guard !tooLong else { throw MalformedInput("pixel_id: longer than \(Self.maxPixelIDBytes) bytes") }
            if materialize { fields.pixelID = scanner.string(raw) }
        case .destinationID:
            fields.destinationID = try integer(key)
        case .ts:
            fields.ts = try integer(key)
        case .uuid:
            let raw = try string(key)
            if materialize { fields.uuid = scanner.string(raw) }
        case .url:
            let raw = try string(key)
            if materialize { fields.url = scanner.string(raw) }
        case .source:
            let raw = try string(key)
            // Compared where it lies: no String per event.
            let named = scanner.withContent(raw) { content in
                PixelEvent.Source.allCases.first { $0.rawValue.utf8.elementsEqual(content) }
            }
            guard let source = named else {
                throw MalformedInput("source: expected edge, redirect, beacon or partner")
            }
            fields.source = source
        case .aliases:
            guard scanner.next == UInt8(ascii: "[") else { throw MalformedInput("aliases: expected an array") }
            if try scanner.beginArray() {
                repeat {
                    guard scanner.next == UInt8(ascii: "\"") else { throw MalformedInput("aliases: expected strings") }
                    let raw = try scanner.scanString()
                    if materialize { fields.aliases.append(scanner.string(raw)) }
                } while try scanner.nextElement()
            }
        }
    }

    private mutating func string(_ key: Key) throws(MalformedInput) -> JSONScanner.RawString {
        guard scanner.next == UInt8(ascii: "\"") else { throw MalformedInput("\(key.text): expected a string") }
        return try scanner.scanString()
    }

    private mutating func integer(_ key: Key) throws(MalformedInput) -> Int64 {
        guard scanner.nextKind == .number else { throw MalformedInput("\(key.text): expected an integer") }
        guard let value = try scanner.scanNumber().integer else {
            throw MalformedInput("\(key.text): expected an integer in the 64-bit range")
        }
        return value
    }
}
