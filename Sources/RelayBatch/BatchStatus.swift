import Foundation
import RelayCore

/// What `relayctl batch status` shows for one batch destination, read from the shared state directory.
public struct BatchDestinationStatus: Sendable {
    public struct PartitionStatus: Sendable {
        public var partition: Int32
        /// The latest cut this partition delivered (or answered for).
        public var lastCut: Int64?
        /// Users in the partition's latest snapshot (state held at its last cut).
        public var users: Int?
    }

    public var destination: Int
    public var name: String
    public var mode: BatchMode
    /// The latest cut whose `.info` was delivered, and its file name.
    public var lastCompleteCut: Int64?
    public var lastInfoFile: String?
    /// The next cut time after now.
    public var nextCut: Int64
    public var partitions: [PartitionStatus]

    /// Reads every batch destination's status under `stateDirectory` (the workers' `--state-dir`).
    public static func collect(config: RelayConfig, stateDirectory: String, now: Date = Date())
        -> [BatchDestinationStatus]
    {
        let state = URL(fileURLWithPath: stateDirectory)
        let ledger = CutLedger(directory: state.appendingPathComponent("cuts"))
        let snapshots = SnapshotStore(directory: state.appendingPathComponent("snapshots"))
        let nowMs = Int64(now.timeIntervalSince1970 * 1000)
        return config.batchDestinations.map { destination, settings in
            let names = BatchFileNames(destinationID: destination.id, settings: settings)
            let schedule = CutSchedule(settings)
            let last = ledger.lastDone(destination: destination.id)
            let reports = ledger.reports(destination: destination.id)
            let catalog = AliasCatalog(destination)
            var partitions: [PartitionStatus] = []
            let known = Set(reports.keys).union(Self.snapshotPartitions(snapshots, destination.id))
            for p in known.sorted() {
                var users: Int?
                if let offset = snapshots.offsets(destination: destination.id, partition: p).last,
                    let snapshot = try? snapshots.load(destination: destination.id, partition: p, offset: offset,
                                                       catalog: catalog)
                {
                    users = snapshot.table.count
                }
                partitions.append(PartitionStatus(partition: p, lastCut: reports[p]?.map(\.cut).max(), users: users))
            }
            return BatchDestinationStatus(
                destination: destination.id, name: destination.name, mode: settings.mode, lastCompleteCut: last,
                lastInfoFile: last.map { names.info(cut: $0) }, nextCut: schedule.cut(containing: nowMs),
                partitions: partitions)
        }
    }

    private static func snapshotPartitions(_ store: SnapshotStore, _ destination: Int) -> [Int32] {
        let folder = store.directory.appendingPathComponent("\(destination)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.compactMap { $0.hasPrefix("p") ? Int32($0.dropFirst()) : nil }
    }
}
