/// A strict, allocation-light reader of the pixel event JSON. The audit's hot path (`sighting`) validates the whole
/// document but materializes only what the join needs: the type, a hash of `pixel_id`, the destination and `ts`.
enum PixelEventDecoder {
    static func decode(_ bytes: [UInt8]) throws(MalformedPixelEvent) -> PixelEvent {
        var result: PixelEvent?
        var failure: MalformedPixelEvent?
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = PixelScanner(buffer, materialize: true)
            do throws(MalformedPixelEvent) {
                let parsed = try scanner.parseEvent()
                result = PixelEvent(kind: parsed.kind, pixelID: parsed.pixelID ?? "",
                                    destinationID: parsed.destinationID, uuid: parsed.uuid ?? "", ts: parsed.ts,
                                    aliases: parsed.aliases, url: parsed.url, source: parsed.source ?? "")
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return result!
    }

    static func sighting(_ bytes: [UInt8]) throws(MalformedPixelEvent) -> PixelSighting {
        var result: PixelSighting?
        var failure: MalformedPixelEvent?
        bytes.withUnsafeBufferPointer { buffer in
            var scanner = PixelScanner(buffer, materialize: false)
            do throws(MalformedPixelEvent) {
                let parsed = try scanner.parseEvent()
                result = PixelSighting(kind: parsed.kind, key: parsed.key, destinationID: parsed.destinationID,
                                       ts: parsed.ts)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return result!
    }
}

/// What the join needs of one pixel event.
public struct PixelSighting: Sendable, Hashable {
    public var kind: PixelEvent.Kind
    public var key: PixelKey
    public var destinationID: Int64
    public var ts: Int64

    public init(kind: PixelEvent.Kind, key: PixelKey, destinationID: Int64, ts: Int64) {
        self.kind = kind
        self.key = key
        self.destinationID = destinationID
        self.ts = ts
    }

    public init(_ event: PixelEvent) {
        self.init(kind: event.kind, key: PixelKey(event.pixelID), destinationID: event.destinationID, ts: event.ts)
    }

    /// Decodes a pixel event's JSON for the join (the whole document is validated).
    public static func decode(_ bytes: [UInt8]) throws(MalformedPixelEvent) -> PixelSighting {
        try PixelEventDecoder.sighting(bytes)
    }
}

struct ParsedPixelEvent {
    var kind: PixelEvent.Kind = .fired
    var key = PixelKey(hi: 0, lo: 0)
    var pixelID: String?
    var destinationID: Int64 = 0
    var uuid: String?
    var ts: Int64 = 0
    var aliases: [String] = []
    var url: String?
    var source: String?
}

enum Field {
    case type, pixelID, destinationID, ts, uuid, url, source, aliases, other

    init(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) {
        func match(_ literal: StaticString) -> Bool {
            guard end - start == literal.utf8CodeUnitCount else { return false }
            let p = literal.utf8Start
            for k in 0..<(end - start) where b[start + k] != p[k] { return false }
            return true
        }
        switch end - start {
        case 2: self = match("ts") ? .ts : .other
        case 3: self = match("url") ? .url : .other
        case 4: self = match("type") ? .type : match("uuid") ? .uuid : .other
        case 6: self = match("source") ? .source : .other
        case 7: self = match("aliases") ? .aliases : .other
        case 8: self = match("pixel_id") ? .pixelID : .other
        case 14: self = match("destination_id") ? .destinationID : .other
        default: self = .other
        }
    }
}

struct PixelScanner {
    private let bytes: UnsafeBufferPointer<UInt8>
    private let materialize: Bool
    private var i = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>, materialize: Bool) {
        self.bytes = bytes
        self.materialize = materialize
    }

    private func fail(_ reason: String) -> MalformedPixelEvent {
        MalformedPixelEvent(i < bytes.count ? "\(reason) at byte \(i)" : "\(reason) at end of input")
    }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(MalformedPixelEvent) {
        skipWhitespace()
        guard i < bytes.count, bytes[i] == byte else { throw fail("expected \(what)") }
        i += 1
    }

    private mutating func peek() -> UInt8? {
        skipWhitespace()
        return i < bytes.count ? bytes[i] : nil
    }

    mutating func parseEvent() throws(MalformedPixelEvent) -> ParsedPixelEvent {
        var event = ParsedPixelEvent()
        var seen: UInt8 = 0  // bits: type, pixel_id, destination_id, ts
        guard peek() == UInt8(ascii: "{") else { throw fail("not a JSON object") }
        i += 1
        if peek() == UInt8(ascii: "}") {
            i += 1
        } else {
            while true {
                let (keyStart, keyEnd, keyEscaped) = try scanString()
                try expect(UInt8(ascii: ":"), "':'")
                // Field names are compared as bytes (no String per field on the hot path).
                let field = keyEscaped ? Field.other : Field(bytes, keyStart, keyEnd)
                switch field {
                case .type:
                    let (s, e, _) = try stringValue("type")
                    if equals(s, e, "fired") { event.kind = .fired }
                    else if equals(s, e, "received") { event.kind = .received }
                    else { throw MalformedPixelEvent("type: expected \"fired\" or \"received\"") }
                    seen |= 1
                case .pixelID:
                    let (s, e, escaped) = try stringValue("pixel_id")
                    guard e > s else { throw MalformedPixelEvent("pixel_id: empty") }
                    guard e - s <= 256 else { throw MalformedPixelEvent("pixel_id: longer than 256 bytes") }
                    if escaped {
                        let text = unescaped(s, e)
                        event.key = PixelKey(text)
                        if materialize { event.pixelID = text }
                    } else {
                        event.key = PixelKey(UnsafeBufferPointer(rebasing: bytes[s..<e]))
                        if materialize { event.pixelID = text(s, e, false) }
                    }
                    seen |= 2
                case .destinationID:
                    event.destinationID = try integer("destination_id")
                    seen |= 4
                case .ts:
                    event.ts = try integer("ts")
                    seen |= 8
                case .uuid:
                    let (s, e, escaped) = try stringValue("uuid")
                    if materialize { event.uuid = text(s, e, escaped) }
                case .url:
                    let (s, e, escaped) = try stringValue("url")
                    if materialize { event.url = text(s, e, escaped) }
                case .source:
                    let (s, e, escaped) = try stringValue("source")
                    if materialize { event.source = text(s, e, escaped) }
                case .aliases:
                    guard peek() == UInt8(ascii: "[") else { throw MalformedPixelEvent("aliases: expected an array") }
                    i += 1
                    if peek() == UInt8(ascii: "]") {
                        i += 1
                    } else {
                        while true {
                            guard peek() == UInt8(ascii: "\"") else {
                                throw MalformedPixelEvent("aliases: expected strings")
                            }
                            let (s, e, escaped) = try scanString()
                            if materialize { event.aliases.append(text(s, e, escaped)) }
                            guard let next = peek() else { throw fail("unterminated array") }
                            i += 1
                            if next == UInt8(ascii: "]") { break }
                            guard next == UInt8(ascii: ",") else { throw fail("expected ',' or ']'") }
                        }
                    }
                case .other:
                    try skipValue(depth: 0)
                }
                guard let next = peek() else { throw fail("unterminated object") }
                i += 1
                if next == UInt8(ascii: "}") { break }
                guard next == UInt8(ascii: ",") else { throw fail("expected ',' or '}'") }
            }
        }
        skipWhitespace()
        guard i == bytes.count else { throw fail("trailing characters") }
        if seen & 1 == 0 { throw MalformedPixelEvent("type: missing") }
        if seen & 2 == 0 { throw MalformedPixelEvent("pixel_id: missing") }
        if seen & 4 == 0 { throw MalformedPixelEvent("destination_id: missing") }
        if seen & 8 == 0 { throw MalformedPixelEvent("ts: missing") }
        return event
    }

    private func equals(_ s: Int, _ e: Int, _ literal: StaticString) -> Bool {
        guard e - s == literal.utf8CodeUnitCount else { return false }
        let p = literal.utf8Start
        for k in 0..<(e - s) where bytes[s + k] != p[k] { return false }
        return true
    }

    private func text(_ s: Int, _ e: Int, _ escaped: Bool) -> String {
        escaped ? unescaped(s, e) : String(decoding: UnsafeBufferPointer(rebasing: bytes[s..<e]), as: UTF8.self)
    }

    private mutating func stringValue(_ field: String) throws(MalformedPixelEvent) -> (Int, Int, Bool) {
        guard peek() == UInt8(ascii: "\"") else { throw MalformedPixelEvent("\(field): expected a string") }
        return try scanString()
    }

    private mutating func integer(_ field: String) throws(MalformedPixelEvent) -> Int64 {
        skipWhitespace()
        var negative = false
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var value: Int64 = 0
        var digits = 0
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
            if o1 || o2 { throw MalformedPixelEvent("\(field): integer out of range") }
            value = a
            digits += 1
            i += 1
        }
        guard digits > 0 else { throw MalformedPixelEvent("\(field): expected an integer") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            throw MalformedPixelEvent("\(field): expected an integer")
        }
        return negative ? -value : value
    }

    /// Scans a string starting at the quote; returns the content range and whether it holds escapes.
    private mutating func scanString() throws(MalformedPixelEvent) -> (Int, Int, Bool) {
        skipWhitespace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        i += 1
        let start = i
        var escaped = false
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let end = i
                i += 1
                return (start, end, escaped)
            } else if b == UInt8(ascii: "\\") {
                escaped = true
                i += 2
            } else if b < 0x20 {
                throw fail("control character in string")
            } else {
                i += 1
            }
        }
        throw fail("unterminated string")
    }

    private func unescaped(_ s: Int, _ e: Int) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(e - s)
        var k = s
        while k < e {
            let b = bytes[k]
            guard b == UInt8(ascii: "\\"), k + 1 < e else { out.append(b); k += 1; continue }
            let c = bytes[k + 1]
            k += 2
            switch c {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var value: UInt32 = 0
                var n = 0
                while n < 4, k < e, let h = Self.hex(bytes[k]) { value = value << 4 | h; k += 1; n += 1 }
                out += Array(String(Unicode.Scalar(value).map(Character.init) ?? "\u{FFFD}").utf8)
            default: out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> UInt32? {
        switch b {
        case 0x30...0x39: UInt32(b - 0x30)
        case 0x41...0x46: UInt32(b - 0x41 + 10)
        case 0x61...0x66: UInt32(b - 0x61 + 10)
        default: nil
        }
    }

    private mutating func skipValue(depth: Int) throws(MalformedPixelEvent) {
        guard depth < 64 else { throw fail("nested too deeply") }
        guard let b = peek() else { throw fail("expected a value") }
        switch b {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "{"):
            i += 1
            if peek() == UInt8(ascii: "}") { i += 1; return }
            while true {
                _ = try scanString()
                try expect(UInt8(ascii: ":"), "':'")
                try skipValue(depth: depth + 1)
                guard let next = peek() else { throw fail("unterminated object") }
                i += 1
                if next == UInt8(ascii: "}") { return }
                guard next == UInt8(ascii: ",") else { throw fail("expected ',' or '}'") }
            }
        case UInt8(ascii: "["):
            i += 1
            if peek() == UInt8(ascii: "]") { i += 1; return }
            while true {
                try skipValue(depth: depth + 1)
                guard let next = peek() else { throw fail("unterminated array") }
                i += 1
                if next == UInt8(ascii: "]") { return }
                guard next == UInt8(ascii: ",") else { throw fail("expected ',' or ']'") }
            }
        default:
            let start = i
            while i < bytes.count {
                let c = bytes[i]
                if c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == UInt8(ascii: "]") || c == 0x20
                    || c == 0x0A || c == 0x0D || c == 0x09 { break }
                i += 1
            }
            let word = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
            if word == "true" || word == "false" || word == "null" || Double(word) != nil { return }
            i = start
            throw fail("invalid value")
        }
    }
}
