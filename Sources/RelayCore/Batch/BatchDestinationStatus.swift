import Foundation

/// What `relayctl batch status` shows for one batch destination, from the group's cuts topic (a ``CutBook``).
public struct BatchDestinationStatus: Sendable {
    public struct PartitionStatus: Sendable {
        public var partition: Int32
        /// The latest cut this partition delivered (or answered for).
        public var lastCut: Int64?
        /// Users listed in that cut's files (0 for an answer without files).
        public var users: Int
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

    /// Every batch destination's status in `book`.
    public static func collect(config: RelayConfig, book: CutBook, now: Date = Date()) -> [BatchDestinationStatus] {
        let nowMs = Int64(now.timeIntervalSince1970 * 1000)
        return config.batchDestinations.map { destination, settings in
            let names = BatchFileNames(destinationID: destination.id, settings: settings)
            let last = book.lastDone(destination: destination.id)
            let partitions = book.latestReports(destination: destination.id).sorted { $0.key < $1.key }.map {
                PartitionStatus(partition: $0.key, lastCut: $0.value.cut, users: $0.value.users)
            }
            return BatchDestinationStatus(
                destination: destination.id, name: destination.name, mode: settings.mode, lastCompleteCut: last,
                lastInfoFile: last.map { names.info(cut: $0) },
                nextCut: CutSchedule(settings).cut(containing: nowMs), partitions: partitions)
        }
    }
}
