/// Percent-encoding of URL components (RFC 3986) and decoding of forms and queries
/// (`application/x-www-form-urlencoded`). Used for partner URLs, S3 canonical requests and the edge's parameters.
public enum PercentEncoding {
    /// RFC 3986 unreserved: `A-Z a-z 0-9 - . _ ~`, never escaped.
    @inlinable
    public static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// Escapes every byte but the unreserved ones and those `keep` accepts (`/` in an S3 key), as `%XX`.
    /// Inlinable, as the decoders below: unspecialized across modules, a generic loop over bytes costs a witness call
    /// per byte (the edge's profile had 8.5% of its CPU in decoding a short query before this).
    @inlinable
    public static func append<S: Sequence>(_ bytes: S, keep: (UInt8) -> Bool = { _ in false },
                                           to out: inout [UInt8]) where S.Element == UInt8
    {
        for byte in bytes {
            if isUnreserved(byte) || keep(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(Hex.upperDigits[Int(byte >> 4)])
                out.append(Hex.upperDigits[Int(byte & 0xF)])
            }
        }
    }

    @inlinable
    public static func append(_ text: String, keep: (UInt8) -> Bool = { _ in false }, to out: inout [UInt8]) {
        append(text.utf8, keep: keep, to: &out)
    }

    public static func encode(_ text: String, keep: (UInt8) -> Bool = { _ in false }) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        append(text.utf8, keep: keep, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a form or query component (`+` is a space); nil for a broken `%` escape or invalid UTF-8.
    @inlinable
    public static func decodeFormComponent(_ bytes: some Collection<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): out.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Hex.value), let low = iterator.next().flatMap(Hex.value)
                else { return nil }
                out.append(high << 4 | low)
            default: out.append(byte)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// Splits `a=1&b=2` into decoded pairs in order; nil when a component is badly encoded.
    @inlinable
    public static func decodeForm(_ bytes: some Collection<UInt8>) -> [(String, String)]? {
        var pairs: [(String, String)] = []
        for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if let equals = part.firstIndex(of: UInt8(ascii: "=")) {
                guard let name = decodeFormComponent(part[part.startIndex..<equals]),
                    let value = decodeFormComponent(part[part.index(after: equals)...])
                else { return nil }
                pairs.append((name, value))
            } else {
                guard let name = decodeFormComponent(part) else { return nil }
                pairs.append((name, ""))
            }
        }
        return pairs
    }
}
