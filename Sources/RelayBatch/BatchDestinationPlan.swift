import RelayCore

/// One `kind: batch` destination, prepared once: schedule, names, aliases and delivery. A class: the engine reads
/// it for every event, and a struct this size would be copied (every field retained) each time.
final class BatchDestinationPlan: Sendable {
    let destination: Destination
    let settings: BatchSettings
    let schedule: CutSchedule
    let names: BatchFileNames
    let catalog: AliasCatalog
    let delivery: any BatchDelivery

    struct AliasEntry: Sendable {
        var alias: UInt16
        var from: Int64
        var until: Int64
    }
    /// Per mapped segment, its aliases (numbers) with the mapping's active range in ms.
    let aliasesBySegment: [Int64: [AliasEntry]]

    init(destination: Destination, settings: BatchSettings, delivery: any BatchDelivery) {
        self.destination = destination
        self.settings = settings
        schedule = CutSchedule(settings)
        names = BatchFileNames(destinationID: destination.id, settings: settings)
        let catalog = AliasCatalog(destination)
        self.catalog = catalog
        self.delivery = delivery
        var bySegment: [Int64: [AliasEntry]] = [:]
        for mapping in destination.mappings {
            bySegment[mapping.segment, default: []].append(AliasEntry(
                alias: catalog.number(of: mapping.alias) ?? 0,
                from: mapping.start?.startMilliseconds ?? .min, until: mapping.end?.endMilliseconds ?? .max))
        }
        aliasesBySegment = bySegment
    }

    var id: Int { destination.id }

    /// The set of realized mapped aliases an event leaves the user with (mapping dates at the event's `ts`, as
    /// ``Destination/mapped(_:)`` decides), from a segment-indexed table of alias numbers: no strings per event.
    func aliasSet(_ qualification: Qualification) -> [UInt16] {
        var set: [UInt16] = []
        let ts = qualification.timestamp
        for segment in qualification.segments where segment.realized {
            guard let entries = aliasesBySegment[segment.id] else { continue }
            for entry in entries where entry.from <= ts && ts <= entry.until && !set.contains(entry.alias) {
                set.append(entry.alias)
            }
        }
        if set.count > 1 { set.sort() }
        return set
    }
}

/// A destination's state on one partition.
struct DestinationPartitionState: Sendable {
    var table = UserTable()
    var pool = AliasSetPool()
    /// The last cut this partition made (or answered for).
    var lastCut: Int64?
    /// The cut the records accumulated since `lastCut` belong to.
    var openCut: Int64?

    /// Users whose set differs from the previous cut (iter mode's lines, before the master-id check).
    var pendingUsers: Int {
        var n = 0
        for i in 0..<table.entries.count where table[i].current != table[i].atCut { n += 1 }
        return n
    }
}
