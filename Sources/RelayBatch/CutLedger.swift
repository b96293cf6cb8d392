import Foundation
import RelayEncoding

/// What one partition's owner did for one cut of one destination: the parts it delivered (possibly none), and the
/// range of cuts it answers for: `(from, cut]`. Cuts in that range other than `cut` had nothing from this partition.
public struct CutReport: Sendable, Hashable, Codable {
    public var destination: Int
    public var partition: Int32
    /// The previous cut this partition made (0: none, the partition answers for everything before `cut`).
    public var from: Int64
    public var cut: Int64
    /// True when the partition made this cut (its files, possibly none, belong to `cut`); false for a report that
    /// only says an idle partition has nothing up to `cut`.
    public var made: Bool
    public var parts: [WrittenPart]
    public var users: Int
    public var skipped: Int

    func covers(_ time: Int64) -> Bool { from < time && time <= cut }
}

/// How the processes agree that a cut is complete, and who writes its `.info`.
///
/// Each partition's owner, after delivering its parts of a cut, writes a ``CutReport`` to the shared state directory
/// (`<state>/cuts/<destination>/p<partition>/<cut>.json`, atomically). A cut `c` is complete when every partition of
/// the topic has a report covering `c` and at least one partition made `c`. Whoever writes a report then checks the
/// cuts its report covers; for a complete cut it takes `info-<c>.lock` (O_CREAT|O_EXCL: one winner), builds the
/// `.info` from the reports (the same bytes whoever builds it: the parts, their sizes and MD5s are deterministic),
/// delivers it, and writes `info-<c>.done`. A winner that dies between lock and done leaves a stale lock; any worker's
/// periodic check takes it over after ``takeoverAfter`` and writes the same bytes again. So the `.info` appears only
/// after every part of the cut is delivered, once in the normal case, and never with different contents.
///
/// The same directory holds the snapshots, so the processes of a deployment already share it (a shared volume when
/// they run on several hosts). A Kafka topic would avoid that requirement but would need every process to read it
/// back; files keep the agreement simple and inspectable (`relayctl batch status` reads them).
struct CutLedger: Sendable {
    let directory: URL
    static let takeoverAfter: TimeInterval = 30

    private func folder(_ destination: Int) -> URL { directory.appendingPathComponent("\(destination)") }

    func write(_ report: CutReport) throws {
        let url = folder(report.destination).appendingPathComponent("p\(report.partition)/\(report.cut).json")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(report)), to: url)
    }

    /// Every report of a destination, per partition.
    func reports(destination: Int) -> [Int32: [CutReport]] {
        let fm = FileManager.default
        var result: [Int32: [CutReport]] = [:]
        let base = folder(destination)
        for sub in (try? fm.contentsOfDirectory(atPath: base.path)) ?? [] where sub.hasPrefix("p") {
            guard let partition = Int32(sub.dropFirst()) else { continue }
            let dir = base.appendingPathComponent(sub)
            for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasSuffix(".json") {
                guard let data = fm.contents(atPath: dir.appendingPathComponent(name).path),
                    let report = try? JSONDecoder().decode(CutReport.self, from: data)
                else { continue }
                result[partition, default: []].append(report)
            }
        }
        return result
    }

    /// The parts of cut `time` if every one of `partitionCount` partitions has reported it, else nil.
    func completeParts(destination: Int, cut time: Int64, partitionCount: Int,
                       reports: [Int32: [CutReport]]) -> [WrittenPart]?
    {
        var parts: [WrittenPart] = []
        var made = false
        for p in 0..<Int32(partitionCount) {
            let mine = reports[p] ?? []
            guard mine.contains(where: { $0.covers(time) }) else { return nil }
            if let exact = mine.first(where: { $0.cut == time && $0.made }) {
                made = true
                parts += exact.parts
            }
        }
        return made ? parts.sorted { $0.sequence < $1.sequence } : nil
    }

    /// Cuts made by any partition within `(from, cut]` (candidates for a `.info` once `(from, cut]` is reported).
    func madeCuts(in range: ClosedRange<Int64>, reports: [Int32: [CutReport]]) -> [Int64] {
        Set(reports.values.flatMap { $0 }.filter { $0.made && range.contains($0.cut) }.map(\.cut)).sorted()
    }

    func isDone(destination: Int, cut: Int64) -> Bool {
        FileManager.default.fileExists(atPath: folder(destination).appendingPathComponent("info-\(cut).done").path)
    }

    /// Takes the right to write the `.info` of a cut: the first taker, or anyone once a lock has gone stale.
    func claim(destination: Int, cut: Int64) -> Bool {
        let lock = folder(destination).appendingPathComponent("info-\(cut).lock").path
        try? FileManager.default.createDirectory(at: folder(destination), withIntermediateDirectories: true)
        let fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd >= 0 {
            close(fd)
            return true
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: lock),
            let modified = attributes[.modificationDate] as? Date,
            Date().timeIntervalSince(modified) > Self.takeoverAfter
        else { return false }
        // Stale: refresh the lock's time so that other checkers wait again, and write.
        utime(lock, nil)
        return true
    }

    func markDone(destination: Int, cut: Int64) throws {
        try AtomicFile.write([], to: folder(destination).appendingPathComponent("info-\(cut).done"))
    }

    /// The latest cut whose `.info` was written, for `relayctl batch status`.
    func lastDone(destination: Int) -> Int64? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder(destination).path)) ?? []
        return names.compactMap { name -> Int64? in
            guard name.hasPrefix("info-"), name.hasSuffix(".done") else { return nil }
            return Int64(name.dropFirst(5).dropLast(5))
        }.max()
    }

    /// Reports and markers of cuts older than `before` are no longer needed (their `.info` is written).
    func prune(destination: Int, before: Int64) {
        let fm = FileManager.default
        let base = folder(destination)
        for sub in (try? fm.contentsOfDirectory(atPath: base.path)) ?? [] {
            let path = base.appendingPathComponent(sub)
            if sub.hasPrefix("p") {
                let names = ((try? fm.contentsOfDirectory(atPath: path.path)) ?? []).compactMap { name -> Int64? in
                    name.hasSuffix(".json") ? Int64(name.dropLast(5)) : nil
                }.sorted()
                // Keep each partition's latest report: it says what the partition answers for.
                for cut in names.dropLast() where cut < before {
                    unlink(path.appendingPathComponent("\(cut).json").path)
                }
            } else if sub.hasPrefix("info-"), let cut = Int64(sub.split(separator: "-")[1].split(separator: ".")[0]),
                cut < before
            {
                unlink(path.path)
            }
        }
    }
}

/// The `.info` control file (SPEC §5), byte for byte the same for the same parts.
public enum InfoFile {
    public static func render(_ parts: [WrittenPart]) -> [UInt8] {
        var out = "{\"Files\": ["
        for (i, part) in parts.enumerated() {
            if i > 0 { out += ", " }
            out += "{\"FileName\": \"\(part.name)\", \"FileByteSize\": \(part.byteSize), "
            out += "\"FileLineCount\": \(part.lineCount), \"FileSequenceNumber\": \(part.sequence), "
            out += "\"MD5\": \"\(part.md5)\"}"
        }
        let bytes = parts.reduce(0) { $0 + $1.byteSize }
        let lines = parts.reduce(0) { $0 + $1.lineCount }
        out += "], \"Totals\": {\"TotalByteSize\": \(bytes), \"TotalNumberFiles\": \(parts.count), "
        out += "\"TotalNumberLines\": \(lines)}}\n"
        return Array(out.utf8)
    }
}
