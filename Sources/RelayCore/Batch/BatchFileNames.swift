/// File names of a batch destination (SPEC §5):
/// `<sync_type>_<destination id>_<master_dpid>_<pid_alias>_<mode>_<cut time, ms>_<part>.sync[.gz]` and the control
/// file `<same root without part>.info`.
public struct BatchFileNames: Sendable, Hashable {
    public let syncType: String
    public let destinationID: Int
    public let masterDPID: Int
    public let pidAlias: String
    public let mode: BatchMode
    public let gzip: Bool

    public init(destinationID: Int, settings: BatchSettings) {
        syncType = settings.output.syncType
        self.destinationID = destinationID
        masterDPID = settings.masterDPID
        pidAlias = settings.pidAlias
        mode = settings.mode
        gzip = settings.gzip
    }

    public func root(cut: Int64) -> String {
        "\(syncType)_\(destinationID)_\(masterDPID)_\(pidAlias)_\(mode.rawValue)_\(cut)"
    }

    /// `part` is zero-padded to three digits (wider only past 999).
    public func part(cut: Int64, number: Int) -> String {
        let digits = String(number)
        let padded = String(repeating: "0", count: max(0, 3 - digits.count)) + digits
        return root(cut: cut) + "_" + padded + (gzip ? ".sync.gz" : ".sync")
    }

    public func info(cut: Int64) -> String { root(cut: cut) + ".info" }

    /// The part numbers partition `partition` of `partitionCount` may use.
    ///
    /// Parts are written by each partition's owner independently (possibly in different processes), so their numbers
    /// must not depend on what the other partitions wrote: partition p numbers its parts from `p * K`, with
    /// `K = 1000 / partitionCount` (125 for 8 partitions), which keeps every name within the three digits of the
    /// pattern and orders the files by partition. A partition that needs more than K parts (more than K ×
    /// `max_file_bytes` in one cut) continues in its own range above 999 (`(p + 1) * 1000 + i`), which never collides.
    public static func partNumber(partition: Int, partitionCount: Int, index: Int) -> Int {
        let perPartition = max(1, 1000 / max(1, partitionCount))
        if index < perPartition { return partition * perPartition + index }
        return (partition + 1) * 1000 + index
    }
}
