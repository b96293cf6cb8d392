/// Fixed-width integers and length-prefixed bytes in little-endian order: the one binary layout of the relay's own
/// state records (the batch and audit changelogs). The reader checks every length against what is there, so a
/// truncated or forged record is refused with a reason instead of trapping.
public struct BinaryWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func put<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A UInt32 length, then the bytes.
    public mutating func putBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        put(UInt32(truncatingIfNeeded: data.count))
        bytes.append(contentsOf: data)
    }

    public mutating func putString(_ text: String) { putBytes(Array(text.utf8)) }

    public mutating func append<C: Collection>(raw data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }
}

public struct BinaryReader {
    /// The bytes read; `position` counts from their start (a slice of a larger buffer is read in place).
    public let bytes: ArraySlice<UInt8>
    public private(set) var position: Int
    /// Names what is being read in errors ("batch state", "audit checkpoint").
    public let what: String

    public init(_ bytes: ArraySlice<UInt8>, position: Int = 0, what: String) {
        self.bytes = bytes
        self.position = max(0, min(position, bytes.count))
        self.what = what
    }

    public init(_ bytes: [UInt8], position: Int = 0, what: String) {
        self.init(bytes[...], position: position, what: what)
    }

    public var remaining: Int { bytes.count - position }
    public var isAtEnd: Bool { position >= bytes.count }

    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws(MalformedInput) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw truncated() }
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { target in
            // The slice's buffer starts at its first byte, so `position` indexes it directly.
            bytes.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[position..<(position + size)]))
            }
        }
        position += size
        return T(littleEndian: value)
    }

    public mutating func take(_ count: Int) throws(MalformedInput) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw truncated() }
        defer { position += count }
        let start = bytes.startIndex + position
        return bytes[start..<start + count]
    }

    /// A UInt32 length, then that many bytes.
    public mutating func readBytes() throws(MalformedInput) -> ArraySlice<UInt8> {
        let count = try read(UInt32.self)
        return try take(Int(count))
    }

    public mutating func readString() throws(MalformedInput) -> String {
        guard let text = String(validating: try readBytes(), as: UTF8.self) else {
            throw MalformedInput("\(what): a string is not valid UTF-8 at byte \(position)")
        }
        return text
    }

    /// A count read from the data, refused when it could not fit in what is left (each element at least `minSize`
    /// bytes): a forged count never makes the reader reserve gigabytes.
    public mutating func readCount<T: FixedWidthInteger & UnsignedInteger>(
        _ width: T.Type = UInt32.self, elementSize minSize: Int
    ) throws(MalformedInput) -> Int {
        let raw = try read(T.self)
        guard let count = Int(exactly: raw), count <= remaining / max(1, minSize) else {
            throw MalformedInput("\(what): count \(raw) larger than the record at byte \(position)")
        }
        return count
    }

    public func truncated() -> MalformedInput {
        MalformedInput("\(what): truncated at byte \(position) of \(bytes.count)")
    }
}
