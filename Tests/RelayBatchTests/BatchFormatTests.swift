import Foundation
import RelayCore
import RelayKafka
import RelayTestSupport
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

    @Test func partsSplitAtMaxFileBytesOnLineBoundaries() async throws {
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
        #expect(writer.files.count == parts.count)
        for (part, url) in zip(parts, writer.files) {
            #expect(url.lastPathComponent == part.name + "." + PartWriter.processTag + ".partial")
            let data = try Data(contentsOf: url)
            #expect(data.count == part.byteSize && data.count <= 50)
            #expect(part.lineCount == 2)
            #expect(await md5sum(url) == part.md5)
            joined += String(decoding: data, as: UTF8.self)
        }
        #expect(joined == expected)
    }

    @Test func gzipPartsAreBoundedByCompressedSizeAndDecompressToTheLines() async throws {
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
        for (part, url) in zip(parts, writer.files) {
            #expect(part.name.hasSuffix(".sync.gz"))
            #expect(part.byteSize <= limit)
            #expect(try Data(contentsOf: url).count == part.byteSize)
            #expect(await md5sum(url) == part.md5)
            let text = await gunzip(url)
            #expect(text.split(separator: "\n").count == part.lineCount)
            joined += text
            lines += part.lineCount
        }
        #expect(joined == expected)
        #expect(lines == 200)
    }

    static let changelogDestination = Destination(
        id: 1, name: "d", kind: .batch(BatchSettings(pidAlias: "d", output: .dir(path: "."))),
        mappings: [SegmentMapping(segment: 1, alias: "a"), SegmentMapping(segment: 2)])

    static func plan(_ destination: Destination = changelogDestination) -> BatchDestinationPlan {
        guard case .batch(let settings) = destination.kind else { fatalError() }
        return BatchDestinationPlan(destination: destination, settings: settings,
                                    delivery: DirDelivery(directory: URL(fileURLWithPath: "/nonexistent")))
    }

    /// The table's changed users as changelog records, in order, then a head.
    static func records(_ table: inout UserTable, pool: AliasSetPool, plan: BatchDestinationPlan, lastCut: Int64?,
                        head: BatchChangelog.Head?, from offset: Int64 = 0) -> [KafkaRecord]
    {
        var records: [KafkaRecord] = []
        func add(_ key: [UInt8], _ value: [UInt8]) {
            records.append(KafkaRecord(topic: "s", partition: 0, offset: offset + Int64(records.count), key: key,
                                       value: value, timestamp: 0, headers: [], generation: 1))
        }
        for index in table.takeChanged() {
            let e = table[Int(index)]
            add(BatchChangelog.userKey(destination: plan.id, uuid: table.uuidBytes(e)),
                BatchChangelog.userValue(e, table: table, pool: pool, catalog: plan.catalog, writtenUnder: lastCut,
                                         idIsUUID: false))
        }
        if let head { add(BatchChangelog.head, BatchChangelog.headValue(head)) }
        return records
    }

    @Test func changelogRoundTripRestoresEveryUserOnce() throws {
        let plan = Self.plan()
        var pool = AliasSetPool()
        var table = UserTable()
        let both = pool.intern([0, 1])
        let one = pool.intern([1])
        for i in 0..<5_000 {
            table.update(uuid: "uuid-\(i)", id: i % 3 == 0 ? nil : "pid-\(i)", idIsUUID: false, set: i % 2 == 0 ? both : one)
        }
        table.update(uuid: "uuid-1", id: "pid-1b", idIsUUID: false, set: both)  // changed twice: written once
        table.update(uuid: "nobody", id: "x", idIsUUID: false, set: 0)  // empty and unknown: not stored
        #expect(table.count == 5_000)
        let records = Self.records(&table, pool: pool, plan: plan, lastCut: nil,
                                   head: .init(nextOffset: 42, cuts: [:]))
        #expect(records.count == 5_001)
        #expect(!table.hasChanges)
        var restore = BatchChangelog.Restore(plans: [plan])
        for r in records { restore.take(r) }
        #expect(restore.malformed.isEmpty)
        #expect(restore.head?.nextOffset == 42)
        let back = restore.finish()[0].table
        #expect(back.count == 5_000)
        let restoredPool = restore.dests[0].pool
        var found = 0
        for i in 0..<back.entries.count {
            let e = back[i]
            let n = Int(String(decoding: back.uuidBytes(e), as: UTF8.self).dropFirst(5))!
            #expect(back.idBytes(e).map { String(decoding: $0, as: UTF8.self) }
                == (n == 1 ? "pid-1b" : n % 3 == 0 ? nil : "pid-\(n)"))
            #expect(restoredPool[e.current] == (n % 2 == 0 || n == 1 ? [0, 1] : [1]))
            #expect(e.atCut == 0)  // no cut yet: nothing was held at one
            found += 1
        }
        #expect(found == 5_000)
        // Memory-light: well under 150 bytes per user for these short ids.
        #expect(table.byteSize / table.count < 150)
    }

    /// A cut rewrites no user: a record written before the head's last cut had, at that cut, the set it still has;
    /// one written after it keeps its own set at the cut; a tombstone removes the user; unknown aliases are dropped.
    @Test func restoreResolvesEachUsersSetAtTheLastCut() throws {
        let plan = Self.plan()
        var pool = AliasSetPool()
        var table = UserTable()
        let a = pool.intern([0]), both = pool.intern([0, 1])
        table.update(uuid: "before", id: "p1", idIsUUID: false, set: a)
        table.update(uuid: "changed", id: "p2", idIsUUID: false, set: a)
        table.update(uuid: "gone", id: "p3", idIsUUID: false, set: a)
        var records = Self.records(&table, pool: pool, plan: plan, lastCut: nil, head: nil)
        _ = table.commitCut()  // cut 1000: everyone's set at the cut is `a`
        records += Self.records(&table, pool: pool, plan: plan, lastCut: nil,
                                head: .init(nextOffset: 3, cuts: [1: .init(last: 1_000, open: 2_000)]), from: 3)
        table.update(uuid: "changed", id: "p2", idIsUUID: false, set: both)
        records += Self.records(&table, pool: pool, plan: plan, lastCut: 1_000,
                                head: .init(nextOffset: 4, cuts: [1: .init(last: 1_000, open: 2_000)]), from: 4)
        records.append(KafkaRecord(topic: "s", partition: 0, offset: 9,
                                   key: BatchChangelog.userKey(destination: 1, uuid: Array("gone".utf8)[...]),
                                   value: [], timestamp: 0, headers: [], generation: 1))
        // Restored under a configuration that no longer maps alias "2".
        let narrower = Destination(id: 1, name: "d", kind: Self.changelogDestination.kind,
                                   mappings: [SegmentMapping(segment: 1, alias: "a")])
        var restore = BatchChangelog.Restore(plans: [Self.plan(narrower)])
        for r in records { restore.take(r) }
        let state = restore.finish()[0]
        #expect(state.lastCut == 1_000)
        #expect(state.openCut == 2_000)  // the users changed since the last cut belong to it
        var sets: [String: ([String], [String])] = [:]
        for i in 0..<state.table.entries.count {
            let e = state.table[i]
            func names(_ set: Int32) -> [String] { state.pool[set].map { narrower.mappings[Int($0)].alias } }
            sets[String(decoding: state.table.uuidBytes(e), as: UTF8.self)] = (names(e.current), names(e.atCut))
        }
        #expect(sets.count == 2)
        #expect(sets["before"]?.0 == ["a"] && sets["before"]?.1 == ["a"])
        #expect(sets["changed"]?.0 == ["a"] && sets["changed"]?.1 == ["a"])  // "2" is no longer mapped
        #expect(sets["gone"] == nil)
    }

    /// Records that do not decode are refused with a reason, never applied.
    @Test func malformedChangelogRecordsAreRefused() throws {
        let plan = Self.plan()
        var pool = AliasSetPool()
        var table = UserTable()
        table.update(uuid: "u", id: "p", idIsUUID: false, set: pool.intern([0]))
        let good = Self.records(&table, pool: pool, plan: plan, lastCut: nil, head: nil)[0]
        func record(_ key: [UInt8], _ value: [UInt8]) -> KafkaRecord {
            KafkaRecord(topic: "s", partition: 0, offset: 0, key: key, value: value, timestamp: 0, headers: [],
                        generation: 1)
        }
        let key = Array(good.key!), value = Array(good.value)
        let cases: [KafkaRecord] = [
            record(key, value + [0]),                                   // trailing bytes
            record(key, Array(value.dropLast())),                       // truncated
            record(key, [9] + value.dropFirst()),                       // unknown version
            record(Array("u/x/u".utf8), value),                         // destination not a number
            record(Array("u/1/".utf8) + Array(repeating: 65, count: 300), value),  // uuid too long
            record(Array("zz".utf8), value),                            // unknown key
            record(BatchChangelog.head, [1, 0, 0]),                     // truncated head
            record(key, Array(value.prefix(11)) + [0xFF, 0xFF] + Array(value.dropFirst(13))),  // forged set count
        ]
        var restore = BatchChangelog.Restore(plans: [plan])
        for r in cases { restore.take(r) }
        #expect(restore.malformed.count == cases.count, "\(restore.malformed.map(\.1))")
        #expect(restore.finish()[0].table.count == 0)
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

/// MD5 by the system's md5sum, independent of the code under test ("" if it cannot run).
func md5sum(_ url: URL) async -> String {
    String(((try? await runTool("/usr/bin/md5sum", [url.path]))?.output ?? "").prefix(32))
}

/// Decompresses with the system's gzip (reads multi-member files, as partners' tools do); "" if it cannot run.
func gunzip(_ url: URL) async -> String {
    (try? await runTool("/usr/bin/gzip", ["-dc", url.path]))?.output ?? ""
}
