/// Byte-level writers for the hot path: JSON strings, URL components, numbers. No Foundation encoders.
enum ByteWriting {
    static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)
    static let lowerHexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `text` as a JSON string literal (quotes included). Control characters, `"` and `\` are escaped, and
    /// so are `<`, `>` and U+2028/U+2029, so the answer is safe to embed in a page.
    static func appendJSONString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case 0x22: out.append(contentsOf: [0x5C, 0x22])
                case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0x00..<0x20, 0x3C, 0x3E, 0x7F:
                    appendUnicodeEscape(UInt32(byte), to: &out)
                case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80
                    && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                    // U+2028 / U+2029: line separators that end a JavaScript string.
                    appendUnicodeEscape(bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029, to: &out)
                    index += 2
                default:
                    out.append(byte)  // the rest of valid UTF-8 passes as is
                }
                index += 1
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendUnicodeEscape(_ value: UInt32, to out: inout [UInt8]) {
        out.append(contentsOf: [0x5C, UInt8(ascii: "u")])
        for shift in stride(from: 12, through: 0, by: -4) {
            out.append(lowerHexDigits[Int((value >> UInt32(shift)) & 0xF)])
        }
    }

    static func appendInteger<T: BinaryInteger>(_ value: T, to out: inout [UInt8]) {
        out.append(contentsOf: String(value).utf8)
    }

    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters (and `keep`).
    static func appendPercentEncoded(_ text: String, keep: (UInt8) -> Bool = { _ in false }, to out: inout [UInt8]) {
        for byte in text.utf8 {
            if isUnreserved(byte) || keep(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            }
        }
    }

    static func percentEncoded(_ text: String, keep: (UInt8) -> Bool = { _ in false }) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        appendPercentEncoded(text, keep: keep, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a form/query component (`+` is a space); nil for a broken `%` escape or invalid UTF-8.
    static func formDecode(_ bytes: some Collection<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Splits `a=1&b=2` into decoded pairs; nil when a component is badly encoded.
    static func parseForm(_ bytes: some Collection<UInt8>) -> [(String, String)]? {
        var pairs: [(String, String)] = []
        for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let name: String
            let value: String
            if let equals = part.firstIndex(of: UInt8(ascii: "=")) {
                guard let n = formDecode(part[part.startIndex..<equals]),
                    let v = formDecode(part[part.index(after: equals)...])
                else { return nil }
                (name, value) = (n, v)
            } else {
                guard let n = formDecode(part) else { return nil }
                (name, value) = (n, "")
            }
            pairs.append((name, value))
        }
        return pairs
    }
}
