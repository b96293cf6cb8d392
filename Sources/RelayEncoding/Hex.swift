/// Hexadecimal digits: digests in ids and signatures (lower case), percent-escapes (upper case, RFC 3986).
public enum Hex {
    public static let lowerDigits: [UInt8] = Array("0123456789abcdef".utf8)
    public static let upperDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Lower-case hex of every byte (`sha256` digests, MD5s in `.info` files).
    public static func lower<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(lowerDigits[Int(byte >> 4)])
            out.append(lowerDigits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The value of one hex digit, either case; nil for anything else.
    @inlinable
    public static func value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
