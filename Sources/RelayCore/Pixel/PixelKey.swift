/// A pixel id as the join keys it: a 128-bit hash of its UTF-8 bytes, stable across processes (it is written into
/// checkpoints). 16 bytes per pixel instead of a heap string keeps a window of a million pixels small; the chance that
/// two of 10⁹ distinct pixel ids collide is below 10⁻²⁰, far under any other source of error in the counts.
public struct PixelKey: Hashable, Sendable, Comparable {
    public let hi: UInt64
    public let lo: UInt64

    public init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    public init(_ pixelID: String) {
        var text = pixelID
        self = text.withUTF8 { PixelKey($0) }
    }

    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        // Two independent 64-bit streams (FNV-1a and a multiply-rotate), each finished with the SplitMix64 mixer.
        var a: UInt64 = 0xcbf2_9ce4_8422_2325
        var b: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(bytes.count)
        for byte in bytes {
            a = (a ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            b = (b &+ UInt64(byte)) &* 0xbf58_476d_1ce4_e5b9
            b = (b << 27) | (b >> 37)
        }
        hi = Self.mix(a)
        lo = Self.mix(b ^ 0x94d0_49bb_1331_11eb)
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    public static func < (a: PixelKey, b: PixelKey) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }

    public func hash(into hasher: inout Hasher) { hasher.combine(hi ^ lo) }
}
