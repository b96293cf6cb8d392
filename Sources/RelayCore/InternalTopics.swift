/// The internal topics of the stateful workers (SPEC §1). Each is named after the worker's consumer group, so two
/// groups never share one; it is compacted (it holds state: the latest record per key is what counts) and has as
/// many partitions as the input, partition `p` serving input partition `p`. The workers create what is missing at
/// start; `relayctl topics create` creates them for the default groups.
public enum InternalTopics {
    /// relay-pixel-audit: each partition's join state (a changelog).
    public static func pixelAuditState(group: String) -> String { "\(group).state" }
    /// relay-pixel-audit: each partition's share of every closed window, and how far it has closed.
    public static func pixelAuditShares(group: String) -> String { "\(group).shares" }

    public static let defaultPixelAuditGroup = "relay-pixel-audit"

    /// relay-batch: each partition's users per destination and its last cuts (a changelog).
    public static func batchState(group: String) -> String { "\(group).state" }
    /// relay-batch: what each partition delivered for every cut, and which cuts' `.info` files are written.
    public static func batchCuts(group: String) -> String { "\(group).cuts" }

    public static let defaultBatchGroup = "relay-batch"

    /// Topic settings of every internal topic.
    public static let settings = ["cleanup.policy": "compact"]
}
