import Foundation
import RelayCore
import Testing

@testable import RelayBatch

@Suite("Batch formats: schedule, names, lines, parts")
struct BatchFormatTests {
    @Test func cutTimesAreMultiplesOfEveryShiftedByAt() throws {
        let plain = CutSchedule(every: 10_000)
        #expect(plain.cut(containing: 0) == 10_000)
        #expect(plain.cut(containing: 9_999) == 10_000)
        #expect(plain.cut(containing: 10_000) == 20_000)  // stamped at the cut time: the next cut
        #expect(plain.cut(containing: -1) == 0)
        #expect(plain.floorCut(25_000) == 20_000)
        // every 6h at 14:00 cuts at 02:00, 08:00, 14:00, 20:00 UTC.
        let settings = BatchSettings(every: .hours(6), at: TimeOfDay("14:00"), pidAlias: "x", output: .dir(path: "."))
        let shifted = CutSchedule(settings)
        let day: Int64 = 1_795_910_400_000  // 2026-11-28T00:00:00Z
        #expect(shifted.cut(containing: day) == day + 2 * 3_600_000)
        #expect(shifted.cut(containing: day + 13 * 3_600_000) == day + 14 * 3_600_000)
        #expect(shifted.cut(containing: day + 14 * 3_600_000) == day + 20 * 3_600_000)
        #expect(shifted.isCutTime(day + 8 * 3_600_000))
        let daily = CutSchedule(BatchSettings(at: TimeOfDay("14:00"), pidAlias: "x", output: .dir(path: ".")))
        #expect(daily.cut(containing: day + 15 * 3_600_000) == day + 86_400_000 + 14 * 3_600_000)
    }

    @Test func fileNamesFollowTheSpecPattern() {
        let settings = BatchSettings(mode: .full, masterDPID: 20914, pidAlias: "acme", gzip: true,
                                     output: .s3(S3Output(bucket: "b", accessKey: .environment("A"),
                                                          secretKey: .environment("S"))))
        let names = BatchFileNames(destinationID: 6001, settings: settings)
        #expect(names.part(cut: 1_795_982_400_000, number: 7) == "s3_6001_20914_acme_full_1795982400000_007.sync.gz")
        #expect(names.info(cut: 1_795_982_400_000) == "s3_6001_20914_acme_full_1795982400000.info")
        let plain = BatchFileNames(destinationID: 6001, settings: BatchSettings(pidAlias: "acme", gzip: false,
                                                                                 output: .dir(path: ".")))
        #expect(plain.part(cut: 5, number: 0) == "dir_6001_0_acme_iter_5_000.sync")
    }

    @Test func partNumbersAreDisjointPerPartition() {
        var seen = Set<Int>()
        for p in 0..<8 {
            for i in 0..<130 { seen.insert(BatchFileNames.partNumber(partition: p, partitionCount: 8, index: i)) }
        }
        #expect(seen.count == 8 * 130)
        #expect(BatchFileNames.partNumber(partition: 1, partitionCount: 8, index: 0) == 125)
        #expect(BatchFileNames.partNumber(partition: 7, partitionCount: 8, index: 124) == 999)
    }

    @Test func lineFormat() {
        let destination = Destination(id: 1, name: "d", kind: .batch(BatchSettings(pidAlias: "d", output: .dir(path: "."))),
                                      mappings: [SegmentMapping(segment: 1, alias: "a"), SegmentMapping(segment: 2),
                                                 SegmentMapping(segment: 3, alias: "c")])
        let catalog = AliasCatalog(destination)
        var out: [UInt8] = []
        BatchLine.append(id: Array("ID1".utf8)[...], aliases: [0, 2], removed: [1], catalog: catalog, to: &out)
        BatchLine.append(id: Array("ID2".utf8)[...], aliases: [], removed: [0, 1], catalog: catalog, to: &out)
        BatchLine.append(id: Array("ID3".utf8)[...], aliases: [1], removed: [], catalog: catalog, to: &out)
        BatchLine.append(id: Array("ID4".utf8)[...], aliases: [0, 1], removed: nil, catalog: catalog, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "ID1 a,c 2\nID2  a,2\nID3 2 \nID4 a,2\n")
    }

    @Test func partsSplitAtMaxFileBytesOnLineBoundaries() throws {
        let dir = try TemporaryFolder()
        let names = BatchFileNames(destinationID: 9, settings: BatchSettings(pidAlias: "p", gzip: false,
                                                                             output: .dir(path: dir.url.path)))
        let writer = PartWriter(names: names, cut: 100, partition: 1, partitionCount: 4, maxFileBytes: 50,
                                directory: dir.url, prefix: "")
        var expected = ""
        for i in 0..<20 {
            let line = "user-\(String(format: "%03d", i)) seg-a,seg-b \n"  // 24 bytes
            expected += line
            try writer.add(Array(line.utf8))
        }
        let parts = try writer.finish()
        #expect(parts.count == 10)  // two 24-byte lines fit in 50 bytes, three do not
        #expect(parts.map(\.sequence) == Array(250..<260))
        var joined = ""
        for part in parts {
            let data = try Data(contentsOf: dir.url.appendingPathComponent(part.name))
            #expect(data.count == part.byteSize && data.count <= 50)
            #expect(part.lineCount == 2)
            #expect(part.md5 == md5sum(dir.url.appendingPathComponent(part.name)))
            joined += String(decoding: data, as: UTF8.self)
        }
        #expect(joined == expected)
    }

    @Test func gzipPartsAreBoundedByCompressedSizeAndDecompressToTheLines() throws {
        let dir = try TemporaryFolder()
        let names = BatchFileNames(destinationID: 9, settings: BatchSettings(pidAlias: "p", gzip: true,
                                                                             output: .dir(path: dir.url.path)))
        let limit = 300
        let writer = PartWriter(names: names, cut: 100, partition: 0, partitionCount: 1, maxFileBytes: limit,
                                directory: dir.url, prefix: "")
        var expected = ""
        var rng = SystemRandomNumberGenerator()
        for i in 0..<200 {
            // Partly random so that compression does not make everything fit in one part.
            let line = "\(i)-\(UInt64.random(in: 0...UInt64.max, using: &rng)) a,b,c \n"
            expected += line
            try writer.add(Array(line.utf8))
        }
        let parts = try writer.finish()
        #expect(parts.count > 1)
        var joined = ""
        var lines = 0
        for part in parts {
            let url = dir.url.appendingPathComponent(part.name)
            #expect(part.name.hasSuffix(".sync.gz"))
            #expect(part.byteSize <= limit)
            #expect(try Data(contentsOf: url).count == part.byteSize)
            #expect(part.md5 == md5sum(url))
            let text = gunzip(url)
            #expect(text.split(separator: "\n").count == part.lineCount)
            joined += text
            lines += part.lineCount
        }
        #expect(joined == expected)
        #expect(lines == 200)
    }

    @Test func userTableSnapshotRoundTrip() throws {
        let destination = Destination(id: 1, name: "d", kind: .batch(BatchSettings(pidAlias: "d", output: .dir(path: "."))),
                                      mappings: [SegmentMapping(segment: 1, alias: "a"), SegmentMapping(segment: 2)])
        let catalog = AliasCatalog(destination)
        var pool = AliasSetPool()
        var table = UserTable()
        let both = pool.intern([0, 1])
        let one = pool.intern([1])
        for i in 0..<5_000 {
            table.update(uuid: "uuid-\(i)", id: i % 3 == 0 ? nil : "pid-\(i)", idIsUUID: false, set: i % 2 == 0 ? both : one)
        }
        table.update(uuid: "uuid-1", id: "pid-1b", idIsUUID: false, set: both)
        table.update(uuid: "nobody", id: "x", idIsUUID: false, set: 0)  // empty and unknown: not stored
        #expect(table.count == 5_000)
        table.commitCut()
        let bytes = Snapshot(nextOffset: 42, lastCut: 7, table: table, pool: pool).encode(catalog: catalog)
        let back = try Snapshot.decode(bytes, catalog: catalog)
        #expect(back.nextOffset == 42 && back.lastCut == 7 && back.table.count == 5_000)
        var found = 0
        for i in 0..<back.table.entries.count {
            let e = back.table[i]
            let uuid = String(decoding: back.table.uuidBytes(e), as: UTF8.self)
            let n = Int(uuid.dropFirst(5))!
            let id = back.table.idBytes(e).map { String(decoding: $0, as: UTF8.self) }
            #expect(id == (n == 1 ? "pid-1b" : n % 3 == 0 ? nil : "pid-\(n)"))
            #expect(back.pool[e.current] == (n % 2 == 0 || n == 1 ? [0, 1] : [1]))
            found += 1
        }
        #expect(found == 5_000)
        // Memory-light: well under 150 bytes per user for these short ids.
        #expect(table.byteSize / table.count < 150)
    }
}

/// A temporary folder removed at deinit.
final class TemporaryFolder {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// MD5 by the system's md5sum, independent of the code under test.
func md5sum(_ url: URL) -> String {
    String(run("/usr/bin/md5sum", [url.path]).prefix(32))
}

/// Decompresses with the system's gzip (reads multi-member files, as partners' tools do).
func gunzip(_ url: URL) -> String {
    run("/usr/bin/gzip", ["-dc", url.path])
}

func run(_ executable: String, _ arguments: [String]) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try? process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
