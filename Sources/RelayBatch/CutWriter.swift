import Foundation
import RelayCore

/// The outcome of writing one partition's cut locally.
struct WrittenCut: Sendable {
    var parts: [WrittenPart]
    var files: [URL]
    var users: Int
    var lines: Int
    var skipped: Int
}

/// Produces one partition's files for one cut from the user table: the users to list (iter: changed since the
/// previous cut; full: holding at least one alias), sorted by partner id (then uuid), one line each, split into
/// parts. Pure function of the table, so a replay writes the same bytes.
enum CutWriter {
    static func write(plan: BatchDestinationPlan, table: UserTable, pool: AliasSetPool, cut: Int64,
                      partition: Int32, partitionCount: Int) throws -> WrittenCut
    {
        let iter = plan.settings.mode == .iter
        var chosen: [Int32] = []
        var skipped = 0
        for i in 0..<table.entries.count {
            let e = table[i]
            let listed = iter ? e.current != e.atCut : e.current != 0
            guard listed else { continue }
            if e.hasID { chosen.append(Int32(i)) } else { skipped += 1 }
        }
        let ordered = table.sortedByID(chosen)
        try FileManager.default.createDirectory(at: plan.delivery.spool, withIntermediateDirectories: true)
        let writer = PartWriter(names: plan.names, cut: cut, partition: Int(partition), partitionCount: partitionCount,
                                maxFileBytes: plan.settings.maxFileBytes, directory: plan.delivery.spool,
                                prefix: plan.delivery.spoolPrefix)
        do {
            var line: [UInt8] = []
            for index in ordered {
                let e = table[Int(index)]
                line.removeAll(keepingCapacity: true)
                BatchLine.append(id: table.idBytes(e)!, aliases: pool[e.current],
                                 removed: iter ? pool.difference(e.atCut, e.current) : nil,
                                 catalog: plan.catalog, to: &line)
                try writer.add(line)
            }
            let parts = try writer.finish()
            return WrittenCut(parts: parts, files: writer.files, users: chosen.count + skipped, lines: ordered.count,
                              skipped: skipped)
        } catch {
            writer.discard()
            throw error
        }
    }
}
