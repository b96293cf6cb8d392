/// The key a user is held under in ``SegmentStore``.
///
/// The platform's ids are 38-digit numbers in practice; such an id (any string of 1–38 ASCII digits, leading zeros
/// included) packs into 128 bits without loss, so the store keeps 16 bytes per user instead of a heap string. Every
/// other id (letters, `_`, `-`, or more than 38 digits) falls back to its text.
///
/// The packing is a bijection: digit strings of length `L` take the values `offset(L) ..< offset(L) + 10^L`, where
/// `offset(L) = 1 + (10 + 100 + ... + 10^(L-1))`; 0 is never produced, so it can mark an empty slot. The largest
/// value, about 1.11e38, is below `UInt128.max` (3.4e38).
enum UserKey: Hashable, Sendable {
    case numeric(UInt128)
    case text(String)

    static let maxDigits = 38

    /// `offsets[L]` = the first packed value of an `L`-digit id; `offsets[39]` is one past the last.
    static let offsets: [UInt128] = {
        var result: [UInt128] = [0, 1]
        var power: UInt128 = 10
        for _ in 1...maxDigits {
            result.append(result[result.count - 1] + power)
            if result.count <= maxDigits + 1 { power *= 10 }
        }
        return result
    }()

    init(_ uuid: String) {
        var uuid = uuid
        self = uuid.withUTF8 { bytes in
            Self.pack(UnsafeRawBufferPointer(bytes)).map { .numeric($0) } ?? .text(String(decoding: bytes, as: UTF8.self))
        }
    }

    /// The packed value of an all-digit id of 1–38 digits; nil otherwise.
    static func pack(_ bytes: UnsafeRawBufferPointer) -> UInt128? {
        guard !bytes.isEmpty, bytes.count <= maxDigits else { return nil }
        var value: UInt128 = 0
        for byte in bytes {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value &* 10 &+ UInt128(digit)
        }
        return offsets[bytes.count] &+ value
    }

    /// The id text of a packed value.
    static func unpack(_ packed: UInt128) -> String {
        var length = 1
        while length < maxDigits, packed >= offsets[length + 1] { length += 1 }
        var value = packed - offsets[length]
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: length)
        var index = length - 1
        while value > 0 {
            digits[index] = UInt8(ascii: "0") + UInt8(value % 10)
            value /= 10
            index -= 1
        }
        return String(decoding: digits, as: UTF8.self)
    }

    var text: String {
        switch self {
        case .numeric(let packed): Self.unpack(packed)
        case .text(let text): text
        }
    }
}
