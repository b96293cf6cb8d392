import Crypto
import Foundation

/// An HMAC key (RFC 2104) whose two padded key blocks are hashed once, when it is made. Each code then costs only
/// the message's blocks and one more. Crypto's `HMAC<H>` hashes both pads again on every call and, called from
/// another module, runs unspecialized (a generic metadata lookup per call): the edge, which signs every pixel URL it
/// hands out, spent 7% of its CPU there. Inlinable, so that the caller's module specializes it for its hash.
public struct PreparedHMAC<H: HashFunction>: Sendable {
    @usableFromInline let inner: H
    @usableFromInline let outer: H

    @inlinable
    public init(key: some Collection<UInt8>) {
        var block = [UInt8](repeating: 0, count: H.blockByteCount)
        if key.count > H.blockByteCount {
            H.hash(data: Array(key)).withUnsafeBytes { digest in block.replaceSubrange(0..<digest.count, with: digest) }
        } else {
            block.replaceSubrange(0..<key.count, with: key)
        }
        func padded(_ pad: UInt8) -> H {
            var hasher = H()
            block.map { $0 ^ pad }.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            return hasher
        }
        inner = padded(0x36)
        outer = padded(0x5C)
    }

    /// The code of the message `feed` gives to the hasher, in as many pieces as it likes.
    @inlinable
    public func code(_ feed: (inout H) -> Void) -> H.Digest {
        var hasher = inner
        feed(&hasher)
        let innerDigest = hasher.finalize()
        var outerHasher = outer
        innerDigest.withUnsafeBytes { outerHasher.update(bufferPointer: $0) }
        return outerHasher.finalize()
    }

    /// The code of `message`.
    @inlinable
    public func code(of message: some Sequence<UInt8>) -> H.Digest {
        code { hasher in
            if message.withContiguousStorageIfAvailable({ hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }) == nil {
                Array(message).withUnsafeBytes { hasher.update(bufferPointer: $0) }
            }
        }
    }

    /// Whether `given` is the code `feed` produces, compared in constant time.
    @inlinable
    public func isValid(_ given: some Collection<UInt8>, _ feed: (inout H) -> Void) -> Bool {
        let expected = code(feed)
        return expected.withUnsafeBytes { expected in
            guard given.count == expected.count else { return false }
            var difference: UInt8 = 0
            for (a, b) in zip(expected, given) { difference |= a ^ b }
            return difference == 0
        }
    }
}
