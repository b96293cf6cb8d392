/// A strict JSON (RFC 8259) tokenizer over UTF-8 bytes that allocates nothing.
///
/// Every decoder of outside JSON is built on it (qualification events, pixel events, audit reports, receipts): a
/// decoder walks the structure it knows with `beginObject`/`objectKey`/`nextMember` and skips everything else with
/// `skipValue`, which still checks the full grammar, so a document is accepted only if it is valid JSON and valid
/// UTF-8 throughout. `nan`, `inf`, bad escapes and lone surrogates are refused; duplicate keys are the decoder's to
/// refuse, since only it knows which keys it reads (a bit per known key is enough).
public struct JSONScanner {
    /// Deeper nesting is refused so that skipping unknown values cannot exhaust the stack.
    public static let maxDepth = 512

    public enum Kind: String {
        case object, array, string, number, boolean, null
    }

    /// A string token, still in the input: `start..<end` excludes the quotes.
    public struct RawString {
        public var start: Int
        public var end: Int
        public var hasEscapes: Bool
        /// Unicode scalars in the decoded string.
        public var scalarCount: Int
    }

    /// A number token; `integer` is set when it has neither fraction nor exponent and fits in an `Int64`.
    public struct RawNumber {
        public var start: Int
        public var integer: Int64?
    }

    public let bytes: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public var isAtEnd: Bool { position >= bytes.count }

    /// The next byte, or 0 at the end (0 is never valid outside a string, so callers need no separate check).
    @inline(__always)
    public var next: UInt8 { position < bytes.count ? bytes[position] : 0 }

    // MARK: Errors

    public func syntaxError(_ detail: String, at offset: Int? = nil) -> MalformedInput {
        MalformedInput("not valid JSON at byte \(offset ?? position): \(detail)")
    }

    /// Describes whatever is at the current position when it is not what the grammar allows.
    public func unexpected(expecting: String) -> MalformedInput {
        guard !isAtEnd else { return syntaxError("unexpected end of input, expected \(expecting)") }
        let byte = bytes[position]
        if byte >= 0x21 && byte < 0x7F {
            return syntaxError("unexpected '\(Character(Unicode.Scalar(byte)))', expected \(expecting)")
        }
        return syntaxError("unexpected byte 0x\(hex(byte)), expected \(expecting)")
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    // MARK: Structure

    @inline(__always)
    public mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// The kind of the value at the current position, judged by its first byte.
    public var nextKind: Kind? {
        switch next {
        case UInt8(ascii: "{"): .object
        case UInt8(ascii: "["): .array
        case UInt8(ascii: "\""): .string
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): .boolean
        case UInt8(ascii: "n"): .null
        default: nil
        }
    }

    /// Consumes `{`; returns `false` (having consumed `}`) for an empty object.
    public mutating func beginObject() throws(MalformedInput) -> Bool {
        guard next == UInt8(ascii: "{") else { throw unexpected(expecting: "'{'") }
        position += 1
        skipWhitespace()
        if next == UInt8(ascii: "}") {
            position += 1
            return false
        }
        return true
    }

    /// Reads `"key" :` and the whitespace after it, leaving the position on the value.
    public mutating func objectKey() throws(MalformedInput) -> RawString {
        guard next == UInt8(ascii: "\"") else { throw unexpected(expecting: "a string key") }
        let key = try scanString()
        skipWhitespace()
        guard next == UInt8(ascii: ":") else { throw unexpected(expecting: "':' after an object key") }
        position += 1
        skipWhitespace()
        return key
    }

    /// After a member's value: consumes `,` (returns `true`) or `}` (returns `false`).
    public mutating func nextMember() throws(MalformedInput) -> Bool {
        try separatorOrEnd(UInt8(ascii: "}"), expecting: "',' or '}'")
    }

    /// Consumes `[`; returns `false` (having consumed `]`) for an empty array.
    public mutating func beginArray() throws(MalformedInput) -> Bool {
        guard next == UInt8(ascii: "[") else { throw unexpected(expecting: "'['") }
        position += 1
        skipWhitespace()
        if next == UInt8(ascii: "]") {
            position += 1
            return false
        }
        return true
    }

    /// After an element: consumes `,` (returns `true`) or `]` (returns `false`).
    public mutating func nextElement() throws(MalformedInput) -> Bool {
        try separatorOrEnd(UInt8(ascii: "]"), expecting: "',' or ']'")
    }

    /// Consumes `,` (returns `true`, and the whitespace after it) or `end` (returns `false`).
    private mutating func separatorOrEnd(_ end: UInt8, expecting: String) throws(MalformedInput) -> Bool {
        skipWhitespace()
        if next == UInt8(ascii: ",") {
            position += 1
            skipWhitespace()
            return true
        }
        guard next == end else { throw unexpected(expecting: expecting) }
        position += 1
        return false
    }

    /// Consumes any value, checking its grammar; `depth` is the nesting level of the value itself.
    @discardableResult
    public mutating func skipValue(depth: Int) throws(MalformedInput) -> Kind {
        guard let kind = nextKind else { throw unexpected(expecting: "a value") }
        switch kind {
        case .object:
            guard depth <= Self.maxDepth else { throw syntaxError("nesting deeper than \(Self.maxDepth) levels") }
            if try beginObject() {
                repeat {
                    _ = try objectKey()
                    try skipValue(depth: depth + 1)
                } while try nextMember()
            }
        case .array:
            guard depth <= Self.maxDepth else { throw syntaxError("nesting deeper than \(Self.maxDepth) levels") }
            if try beginArray() {
                repeat {
                    try skipValue(depth: depth + 1)
                } while try nextElement()
            }
        case .string:
            _ = try scanString()
        case .number:
            _ = try scanNumber()
        case .boolean:
            if !consumeLiteral("true") && !consumeLiteral("false") { throw unexpected(expecting: "a value") }
        case .null:
            if !consumeLiteral("null") { throw unexpected(expecting: "a value") }
        }
        return kind
    }

    /// Consumes `null` if it is next.
    public mutating func consumeNull() -> Bool {
        consumeLiteral("null")
    }

    private mutating func consumeLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        for offset in 0..<count where bytes[position + offset] != literal.utf8Start[offset] {
            return false
        }
        position += count
        return true
    }

    // MARK: Numbers

    /// Reads a number per the JSON grammar (no leading zeros, no `+`, digits on both sides of `.`).
    public mutating func scanNumber() throws(MalformedInput) -> RawNumber {
        let start = position
        var negative = false
        if next == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard isDigit(next) else { throw unexpected(expecting: "a digit") }
        var magnitude: UInt64 = 0
        var overflow = false
        if next == UInt8(ascii: "0") {
            position += 1
            if isDigit(next) { throw syntaxError("leading zero in a number", at: start) }
        } else {
            while isDigit(next) {
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(next &- UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                magnitude = sum
                position += 1
            }
        }
        var integral = true
        if next == UInt8(ascii: ".") {
            integral = false
            position += 1
            guard isDigit(next) else { throw unexpected(expecting: "a digit after '.'") }
            while isDigit(next) { position += 1 }
        }
        if next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
            integral = false
            position += 1
            if next == UInt8(ascii: "+") || next == UInt8(ascii: "-") { position += 1 }
            guard isDigit(next) else { throw unexpected(expecting: "a digit in the exponent") }
            while isDigit(next) { position += 1 }
        }
        var value: Int64?
        if integral && !overflow {
            if negative {
                if magnitude <= UInt64(Int64.max) {
                    value = -Int64(magnitude)
                } else if magnitude == UInt64(Int64.max) + 1 {
                    value = .min
                }
            } else if magnitude <= UInt64(Int64.max) {
                value = Int64(magnitude)
            }
        }
        return RawNumber(start: start, integer: value)
    }

    /// A number token's value as a `Double` (finite, since JSON has no `nan` or `inf`).
    public func double(_ raw: RawNumber) -> Double? {
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[raw.start..<position]), as: UTF8.self)
        return Double(text).flatMap { $0.isFinite ? $0 : nil }
    }

    /// Reads `true` or `false`.
    public mutating func scanBoolean() throws(MalformedInput) -> Bool {
        if consumeLiteral("true") { return true }
        if consumeLiteral("false") { return false }
        throw unexpected(expecting: "true or false")
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10
    }

    // MARK: Strings

    /// Reads a string token, checking escapes and UTF-8, without decoding it.
    public mutating func scanString() throws(MalformedInput) -> RawString {
        guard next == UInt8(ascii: "\"") else { throw unexpected(expecting: "'\"'") }
        let quote = position
        position += 1
        let start = position
        var hasEscapes = false
        var scalars = 0
        while true {
            // Fast path: a run of printable ASCII other than '"' and '\\', which is all that ids and keys hold, read
            // with local copies of the position and the end so that they stay in registers, 8 bytes at a time while
            // no byte of the word needs a closer look.
            var run = position
            let end = bytes.count
            while end - run >= 8, Self.isPlainASCII(bytes.loadUnaligned(fromByteOffset: run, as: UInt64.self)) {
                run += 8
            }
            while run < end {
                let byte = bytes[run]
                guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") else { break }
                run += 1
            }
            scalars += run - position
            position = run
            guard position < end else { throw syntaxError("unterminated string", at: quote) }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                return RawString(start: start, end: position - 1, hasEscapes: hasEscapes, scalarCount: scalars)
            }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                try scanEscape()
            } else if byte < 0x20 {
                throw syntaxError("control character 0x\(hex(byte)) in a string must be escaped")
            } else {
                try scanUTF8Sequence()
            }
            scalars += 1
        }
    }

    /// Whether none of the word's 8 bytes is a control character, non-ASCII, '"' or '\\' (the bit tricks of "Bit
    /// Twiddling Hacks": a byte's high bit ends up set where it is below the bound or equal to the pattern; they
    /// never miss one, and a word they flag is simply read byte by byte).
    @inline(__always)
    private static func isPlainASCII(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
        let control = (word &- ones &* 0x20) & ~word & highs
        let quote = hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "\""))))
        let backslash = hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "\\"))))
        return (word & highs) | control | quote | backslash == 0
    }

    /// One escape sequence, a surrogate pair counting as one.
    private mutating func scanEscape() throws(MalformedInput) {
        let start = position
        position += 1
        switch next {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            position += 1
        case UInt8(ascii: "u"):
            position += 1
            let unit = try scanHex4(escapeStart: start)
            switch unit {
            case 0xD800...0xDBFF:
                guard next == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u")
                else { throw syntaxError("unpaired surrogate in \\u escape", at: start) }
                position += 2
                let low = try scanHex4(escapeStart: start)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw syntaxError("unpaired surrogate in \\u escape", at: start)
                }
            case 0xDC00...0xDFFF:
                throw syntaxError("unpaired surrogate in \\u escape", at: start)
            default:
                break
            }
        default:
            throw syntaxError("invalid escape sequence in a string", at: start)
        }
    }

    private mutating func scanHex4(escapeStart: Int) throws(MalformedInput) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = hexValue(next) else {
                throw syntaxError("\\u escape needs 4 hexadecimal digits", at: escapeStart)
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// One multi-byte UTF-8 sequence, checked per Unicode table 3-7 (no overlongs, surrogates or > U+10FFFF).
    private mutating func scanUTF8Sequence() throws(MalformedInput) {
        let start = position
        let lead = bytes[position]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: throw MalformedInput("not valid UTF-8 at byte \(start)")
        }
        guard bytes.count - position >= length else { throw MalformedInput("not valid UTF-8 at byte \(start)") }
        let second = bytes[position + 1]
        guard second >= low && second <= high else { throw MalformedInput("not valid UTF-8 at byte \(start)") }
        for offset in 2..<length where bytes[position + offset] & 0xC0 != 0x80 {
            throw MalformedInput("not valid UTF-8 at byte \(start)")
        }
        position += length
    }

    // MARK: Decoding tokens

    /// The decoded text of a string token.
    public func string(_ raw: RawString) -> String {
        if !raw.hasEscapes {
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[raw.start..<raw.end]), as: UTF8.self)
        }
        return String(decoding: unescaped(raw), as: UTF8.self)
    }

    /// Calls `body` with the decoded UTF-8 of a string token; copies only when it has escapes.
    public func withContent<R>(_ raw: RawString, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if !raw.hasEscapes {
            return body(UnsafeRawBufferPointer(rebasing: bytes[raw.start..<raw.end]))
        }
        return unescaped(raw).withUnsafeBytes(body)
    }

    /// Whether a string token decodes to exactly `literal` (an ASCII key name).
    @inlinable  // decoders call it for every key they know: the length test alone settles most calls
    public func equals(_ raw: RawString, _ literal: StaticString) -> Bool {
        // Decoders try several key names in turn: without escapes, the token's length rules most of them out.
        if !raw.hasEscapes {
            let count = literal.utf8CodeUnitCount
            guard raw.end - raw.start == count else { return false }
            for index in 0..<count where bytes[raw.start + index] != literal.utf8Start[index] {
                return false
            }
            return true
        }
        return withContent(raw) { content in
            guard content.count == literal.utf8CodeUnitCount else { return false }
            for index in 0..<content.count where content[index] != literal.utf8Start[index] {
                return false
            }
            return true
        }
    }

    /// Decodes the escapes of a token already checked by `scanString`.
    private func unescaped(_ raw: RawString) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.end - raw.start)
        var index = raw.start
        while index < raw.end {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                index += 1
                continue
            }
            let code = bytes[index + 1]
            index += 2
            switch code {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(at: index)
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = hex4(at: index + 2)
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                // Checked by scanEscape: never a lone surrogate, so always a valid scalar.
                out.append(contentsOf: UTF8.encode(Unicode.Scalar(scalar)!)!)
            default: out.append(code)  // '"', '\\' and '/' stand for themselves
            }
        }
        return out
    }

    private func hex4(at index: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 4 | (hexValue(bytes[index + offset]) ?? 0) }
        return value
    }
}

extension JSONScanner {
    /// Runs `body` with a scanner over `bytes` (the record stays where it is; nothing is copied).
    /// Both are inlinable so that a decoder in another module gets them specialized: unspecialized, every call
    /// looked up the metadata of `Result<R, MalformedInput>` (4% of relay-pixel-audit's CPU).
    @inlinable
    public static func scan<R>(_ bytes: [UInt8], _ body: (inout JSONScanner) throws(MalformedInput) -> R)
        throws(MalformedInput) -> R
    {
        try scan(bytes[...], body)
    }

    /// For a record's key or value, views into its batch's bytes.
    @inlinable
    public static func scan<R>(_ bytes: ArraySlice<UInt8>, _ body: (inout JSONScanner) throws(MalformedInput) -> R)
        throws(MalformedInput) -> R
    {
        let result: Result<R, MalformedInput> = bytes.withUnsafeBytes { buffer in
            var scanner = JSONScanner(buffer)
            do throws(MalformedInput) { return .success(try body(&scanner)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
