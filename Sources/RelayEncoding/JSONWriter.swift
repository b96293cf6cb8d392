/// The one JSON writer: string literals, integers and ASCII fragments appended to a byte buffer, no Foundation.
///
/// Every JSON the relay writes goes through it (partner bodies, batch lines, pixel events, audit reports, logs, the
/// edge's answers), so an escaping rule is fixed in one place.
public enum JSONWriter {
    /// Appends `text` as a JSON string literal, quotes included. `"`, `\` and control characters are escaped (short
    /// forms where JSON has them). `htmlSafe` also escapes `<`, `>`, DEL and U+2028/U+2029, for answers a page may
    /// embed in a script.
    @inlinable
    public static func appendString(_ text: String, htmlSafe: Bool = false, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendString(utf8: UnsafeRawBufferPointer($0), htmlSafe: htmlSafe, to: &out) }
    }

    /// The same for UTF-8 bytes already in memory (a field still inside a Kafka record).
    public static func appendString(utf8 bytes: UnsafeRawBufferPointer, htmlSafe: Bool = false,
                                    to out: inout [UInt8])
    {
        out.append(UInt8(ascii: "\""))
        var index = 0
        var plainStart = 0
        @inline(__always) func flush(upTo end: Int) {
            if end > plainStart { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[plainStart..<end])) }
        }
        while index < bytes.count {
            let byte = bytes[index]
            var escape: UInt32? = nil
            var short: UInt8 = 0
            var width = 1
            switch byte {
            case 0x22: short = 0x22
            case 0x5C: short = 0x5C
            case 0x0A: short = UInt8(ascii: "n")
            case 0x0D: short = UInt8(ascii: "r")
            case 0x09: short = UInt8(ascii: "t")
            case 0x08: short = UInt8(ascii: "b")
            case 0x0C: short = UInt8(ascii: "f")
            case 0x00..<0x20: escape = UInt32(byte)
            case 0x3C where htmlSafe, 0x3E where htmlSafe, 0x7F where htmlSafe: escape = UInt32(byte)
            case 0xE2 where htmlSafe && index + 2 < bytes.count && bytes[index + 1] == 0x80
                && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                // U+2028 / U+2029 end a JavaScript string literal.
                escape = bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029
                width = 3
            default:
                index += 1
                continue
            }
            flush(upTo: index)
            out.append(0x5C)
            if let escape {
                out.append(UInt8(ascii: "u"))
                for shift in stride(from: 12, through: 0, by: -4) {
                    out.append(Hex.lowerDigits[Int((escape >> UInt32(shift)) & 0xF)])
                }
            } else {
                out.append(short)
            }
            index += width
            plainStart = index
        }
        flush(upTo: bytes.count)
        out.append(UInt8(ascii: "\""))
    }

    /// Appends the decimal digits of `value` (a JSON number, a header value, a file name part).
    @inlinable
    public static func appendInteger<T: BinaryInteger>(_ value: T, to out: inout [UInt8]) {
        if let small = Int64(exactly: value) {
            appendInt64(small, to: &out)
        } else {
            out.append(contentsOf: String(value).utf8)
        }
    }

    public static func appendInt64(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // 20 digits hold UInt64.max; written backwards into a stack buffer, then appended in order.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var count = 0
            repeat {
                digits[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[(20 - count)...]))
        }
    }

    /// Appends a literal fragment (`{"uuid":`) without going through `String`.
    @inlinable
    public static func appendASCII(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// `text` as a JSON string literal, for code that builds `String`s (logs, reports).
    public static func quoted(_ text: String, htmlSafe: Bool = false) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        appendString(text, htmlSafe: htmlSafe, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
