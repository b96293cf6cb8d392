import Crypto
import Foundation
import RelayCore
import RelayEncoding
import RelayRuntime

/// Writes the lines of one partition's cut into parts of at most `maxFileBytes` bytes each, split on line
/// boundaries, into local files (`directory/<prefix><name>.<tag>.partial`), with their MD5 and line counts.
///
/// With gzip, lines are compressed in blocks of at most 1 MiB (uncompressed), each block a complete gzip member; a
/// part is a concatenation of whole members (RFC 1952 §2.2: a gzip file is a series of members, which `gunzip`,
/// zlib's `inflate` with gzip detection, Python and Java read as one stream). That bounds the *compressed* size of a
/// part without compressing anything twice, keeps memory to one block, and stays deterministic: the same lines
/// always give the same blocks and the same bytes. A block whose member alone would exceed the limit is split in
/// halves by lines. A single line larger than the limit is written as a part of its own (it cannot be split).
final class PartWriter {
    static let blockLimit = 1 << 20
    /// In local file names, so that two processes writing the same part (a revoked owner still finishing, and the
    /// next one) into one `dir` output never write the same file.
    static let processTag = String(UInt64.random(in: 0...UInt64.max), radix: 36)

    private let names: BatchFileNames
    private let cut: Int64
    private let partition: Int
    private let partitionCount: Int
    private let maxFileBytes: Int
    private let directory: URL
    private let prefix: String

    private(set) var parts: [WrittenPart] = []
    private(set) var files: [URL] = []
    private(set) var oversizedLines = 0

    private var fd: Int32 = -1
    private var md5 = Insecure.MD5()
    private var partBytes = 0
    private var partLines = 0
    private var pending: [UInt8] = []

    // gzip block: uncompressed bytes and the end offset of each line in it.
    private var block: [UInt8] = []
    private var blockLineEnds: [Int] = []

    init(names: BatchFileNames, cut: Int64, partition: Int, partitionCount: Int, maxFileBytes: Int,
         directory: URL, prefix: String)
    {
        self.names = names
        self.cut = cut
        self.partition = partition
        self.partitionCount = partitionCount
        self.maxFileBytes = max(1, maxFileBytes)
        self.directory = directory
        self.prefix = prefix
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Adds one line (ending in `\n`).
    func add(_ line: [UInt8]) throws {
        if names.gzip {
            if !block.isEmpty, block.count + line.count > min(Self.blockLimit, maxFileBytes) { try flushBlock() }
            block.append(contentsOf: line)
            blockLineEnds.append(block.count)
        } else {
            if partLines > 0, partBytes + line.count > maxFileBytes { try closePart() }
            try write(line, lines: 1)
        }
    }

    /// Closes the last part; returns the parts written.
    func finish() throws -> [WrittenPart] {
        if names.gzip, !block.isEmpty { try flushBlock() }
        if fd >= 0 { try closePart() }
        return parts
    }

    /// Removes the local files (after delivery, or on failure).
    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        for url in files { unlink(url.path) }
    }

    private func flushBlock() throws {
        let ends = blockLineEnds
        let bytes = block
        block.removeAll(keepingCapacity: true)
        blockLineEnds.removeAll(keepingCapacity: true)
        try writeMembers(bytes, lineEnds: ends, from: 0, to: ends.count)
    }

    /// Compresses lines `[from, to)` of `bytes` as one member, or as two halves when that member is too large.
    private func writeMembers(_ bytes: [UInt8], lineEnds: [Int], from: Int, to: Int) throws {
        let start = from == 0 ? 0 : lineEnds[from - 1]
        let end = lineEnds[to - 1]
        let member = try Gzip.compress(Array(bytes[start..<end]))
        if member.count > maxFileBytes, to - from > 1 {
            let middle = (from + to) / 2
            try writeMembers(bytes, lineEnds: lineEnds, from: from, to: middle)
            try writeMembers(bytes, lineEnds: lineEnds, from: middle, to: to)
            return
        }
        if member.count > maxFileBytes { oversizedLines += 1 }
        if partLines > 0, partBytes + member.count > maxFileBytes { try closePart() }
        try write(member, lines: to - from)
    }

    private func write(_ bytes: [UInt8], lines: Int) throws {
        if fd < 0 { try openPart() }
        md5.update(data: bytes)
        pending.append(contentsOf: bytes)
        partBytes += bytes.count
        partLines += lines
        if pending.count >= 256 * 1024 { try drain() }
    }

    private func openPart() throws {
        let number = BatchFileNames.partNumber(partition: partition, partitionCount: partitionCount,
                                               index: parts.count)
        let name = names.part(cut: cut, number: number)
        let url = directory.appendingPathComponent(prefix + name + "." + Self.processTag + ".partial")
        fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatchError("cannot create \(url.path): \(String(cString: strerror(errno)))") }
        files.append(url)
        parts.append(WrittenPart(name: name, byteSize: 0, lineCount: 0, sequence: number, md5: ""))
        md5 = Insecure.MD5()
        partBytes = 0
        partLines = 0
    }

    private func drain() throws {
        try pending.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw BatchError("write failed: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
        pending.removeAll(keepingCapacity: true)
    }

    private func closePart() throws {
        try drain()
        guard fsync(fd) == 0 else { throw BatchError("fsync failed: \(String(cString: strerror(errno)))") }
        close(fd)
        fd = -1
        parts[parts.count - 1].byteSize = partBytes
        parts[parts.count - 1].lineCount = partLines
        parts[parts.count - 1].md5 = Hex.lower(md5.finalize())
    }
}
