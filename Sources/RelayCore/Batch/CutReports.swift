import Foundation
import RelayEncoding

/// A part as the `.info` control file lists it (SPEC §5).
public struct WrittenPart: Sendable, Hashable, Codable {
    public var name: String
    public var byteSize: Int
    public var lineCount: Int
    public var sequence: Int
    /// Lower-case hex MD5 of the bytes as delivered.
    public var md5: String

    public init(name: String, byteSize: Int, lineCount: Int, sequence: Int, md5: String) {
        self.name = name
        self.byteSize = byteSize
        self.lineCount = lineCount
        self.sequence = sequence
        self.md5 = md5
    }
}

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

    public init(destination: Int, partition: Int32, from: Int64, cut: Int64, made: Bool, parts: [WrittenPart],
                users: Int, skipped: Int)
    {
        self.destination = destination
        self.partition = partition
        self.from = from
        self.cut = cut
        self.made = made
        self.parts = parts
        self.users = users
        self.skipped = skipped
    }

    public func covers(_ time: Int64) -> Bool { from < time && time <= cut }
}

/// The internal topic `<group>.cuts`: how the members agree that a cut is complete, and that its `.info` is written.
///
/// After delivering its parts of a cut, a partition's owner publishes its ``CutReport`` (key
/// `report/<destination>/<partition>/<cut>`, to partition `p` of the topic) and only then records the cut in its
/// changelog, so a cut the state says is made always has its report. A cut `c` is complete when every partition of
/// the input (the count asked of the broker, never guessed) has a report covering `c` and at least one made it. The
/// member that owns input partition 0 writes the `.info` of each complete cut (``CutCompleter``), then publishes
/// `info/<destination>/<cut>`. If it dies in between, the next owner of partition 0 writes the same bytes to the
/// same name again. Every member follows the topic; `relayctl batch status` reads it.
public enum CutReports {
    public static func topic(group: String) -> String { InternalTopics.batchCuts(group: group) }

    public static func reportKey(_ report: CutReport) -> [UInt8] {
        Array("report/\(report.destination)/\(report.partition)/\(report.cut)".utf8)
    }

    public static func doneKey(destination: Int, cut: Int64) -> [UInt8] { Array("info/\(destination)/\(cut)".utf8) }

    /// A report's record value: its JSON, keys sorted (to partition `report.partition` of the topic).
    public static func reportValue(_ report: CutReport) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(report)).map { Array($0) } ?? []
    }

    /// The value of the marker that cut `cut`'s `.info` is written (to partition 0 of the topic).
    public static func doneValue(destination: Int, cut: Int64, file: String) -> [UInt8] {
        var value: [UInt8] = []
        JSONWriter.appendASCII(#"{"destination":"#, to: &value)
        JSONWriter.appendInteger(destination, to: &value)
        JSONWriter.appendASCII(#","cut":"#, to: &value)
        JSONWriter.appendInt64(cut, to: &value)
        JSONWriter.appendASCII(#","file":"#, to: &value)
        JSONWriter.appendString(file, to: &value)
        value.append(UInt8(ascii: "}"))
        return value
    }

    /// One record of the topic, strictly: whoever reads one that is none of these dead-letters or reports it.
    public enum Record: Sendable, Equatable {
        case report(CutReport)
        case done(destination: Int, cut: Int64)
        /// A tombstone (pruning): the key's report or marker is gone.
        case removedReport(destination: Int, partition: Int32, cut: Int64)
        case removedDone(destination: Int, cut: Int64)
    }

    public static func decode(key keyBytes: ArraySlice<UInt8>?, value: ArraySlice<UInt8>) throws(MalformedInput)
        -> Record
    {
        let key = String(decoding: keyBytes ?? [], as: UTF8.self)
        let fields = key.split(separator: "/", omittingEmptySubsequences: false)
        func number(_ i: Int) throws(MalformedInput) -> Int64 {
            guard i < fields.count, fields[i].count <= 19, let value = Int64(fields[i]) else {
                throw MalformedInput("batch cuts: bad key \(key.prefix(80))")
            }
            return value
        }
        switch fields.first {
        case "report" where fields.count == 4:
            let destination = Int(try number(1)), partition = try number(2), cut = try number(3)
            guard let partition = Int32(exactly: partition), partition >= 0 else {
                throw MalformedInput("batch cuts: bad partition in \(key)")
            }
            if value.isEmpty { return .removedReport(destination: destination, partition: partition, cut: cut) }
            let report: CutReport
            do {
                report = try JSONDecoder().decode(CutReport.self, from: Data(value))
            } catch {
                throw MalformedInput("batch cuts: report \(key) does not decode")
            }
            guard report.destination == destination, report.partition == partition, report.cut == cut,
                  report.from < report.cut, report.parts.allSatisfy({ $0.byteSize >= 0 && $0.lineCount >= 0 })
            else { throw MalformedInput("batch cuts: report \(key) does not match its key or is inconsistent") }
            return .report(report)
        case "info" where fields.count == 3:
            let destination = Int(try number(1)), cut = try number(2)
            return value.isEmpty ? .removedDone(destination: destination, cut: cut)
                : .done(destination: destination, cut: cut)
        default:
            throw MalformedInput("batch cuts: unknown key \(key.prefix(80))")
        }
    }
}

/// The reports and written `.info` files of every destination, as read from `<group>.cuts`: a pure fold, so the
/// completer, its tests and `relayctl batch status` decide the same way.
public struct CutBook: Sendable {
    /// destination → partition → cut → report.
    public private(set) var reports: [Int: [Int32: [Int64: CutReport]]] = [:]
    public private(set) var done: [Int: Set<Int64>] = [:]

    public init() {}

    public mutating func apply(_ record: CutReports.Record) {
        switch record {
        case .report(let report): add(report)
        case .done(let destination, let cut): done[destination, default: []].insert(cut)
        case .removedReport(let destination, let partition, let cut): reports[destination]?[partition]?[cut] = nil
        case .removedDone(let destination, let cut): done[destination]?.remove(cut)
        }
    }

    public mutating func add(_ report: CutReport) {
        reports[report.destination, default: [:]][report.partition, default: [:]][report.cut] = report
    }

    public mutating func markDone(destination: Int, cut: Int64) { done[destination, default: []].insert(cut) }

    public func isDone(destination: Int, cut: Int64) -> Bool { done[destination]?.contains(cut) ?? false }

    /// The latest cut whose `.info` was written.
    public func lastDone(destination: Int) -> Int64? { done[destination]?.max() }

    /// Each partition's latest report.
    public func latestReports(destination: Int) -> [Int32: CutReport] {
        (reports[destination] ?? [:]).compactMapValues { byCut in byCut.max { $0.key < $1.key }?.value }
    }

    /// The parts of cut `time`, if every one of `partitionCount` partitions has reported it and one made it.
    public func completeParts(destination: Int, cut time: Int64, partitionCount: Int) -> [WrittenPart]? {
        guard partitionCount > 0 else { return nil }
        let byPartition = reports[destination] ?? [:]
        var parts: [WrittenPart] = []
        var made = false
        for p in 0..<Int32(partitionCount) {
            let mine = byPartition[p] ?? [:]
            guard mine.values.contains(where: { $0.covers(time) }) else { return nil }
            if let exact = mine[time], exact.made {
                made = true
                parts += exact.parts
            }
        }
        return made ? parts.sorted { $0.sequence < $1.sequence } : nil
    }

    /// Cuts some partition made whose `.info` is not written yet, oldest first.
    public func pendingCuts(destination: Int) -> [Int64] {
        var cuts = Set<Int64>()
        for byCut in (reports[destination] ?? [:]).values {
            for (cut, report) in byCut where report.made && !isDone(destination: destination, cut: cut) {
                cuts.insert(cut)
            }
        }
        return cuts.sorted()
    }

    /// Keys that can go once every cut before `before` is complete: reports older than it (but each partition's
    /// latest, which says what the partition answers for) and markers of `.info` files older than it.
    public func prunable(destination: Int, before: Int64) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        for byCut in (reports[destination] ?? [:]).values {
            let latest = byCut.keys.max()
            for (cut, report) in byCut where cut < before && cut != latest { keys.append(CutReports.reportKey(report)) }
        }
        for cut in done[destination] ?? [] where cut < before {
            keys.append(CutReports.doneKey(destination: destination, cut: cut))
        }
        return keys
    }
}

/// The `.info` control file (SPEC §5), byte for byte the same for the same parts.
public enum InfoFile {
    public static func render(_ parts: [WrittenPart]) -> [UInt8] {
        var out = "{\"Files\": ["
        for (i, part) in parts.enumerated() {
            if i > 0 { out += ", " }
            out += "{\"FileName\": \(JSONWriter.quoted(part.name)), \"FileByteSize\": \(part.byteSize), "
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
