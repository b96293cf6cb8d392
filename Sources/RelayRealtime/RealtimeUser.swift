import RelayCore

/// One user of one event, as one realtime destination receives it: the user's mapped segments from that event and
/// where the event came from (its offset, for the message id, dead letters and offset tracking).
public struct RealtimeUser: Sendable, Hashable {
    /// The platform's user id (`AAM_UUID`).
    public var uuid: String
    /// The id the partner knows the user by (`DataPartner_UUID`, from `user_dpid`).
    public var partnerID: String
    public var region: Int?
    /// The event's `ts` (ms since the epoch): each segment's `DateTime`, and the start of the delivery latency.
    public var timestamp: Int64
    public var segments: [MappedSegment]
    /// The offset of the source record within its partition.
    public var offset: Int64

    public init(uuid: String, partnerID: String, region: Int?, timestamp: Int64, segments: [MappedSegment],
                offset: Int64)
    {
        self.uuid = uuid
        self.partnerID = partnerID
        self.region = region
        self.timestamp = timestamp
        self.segments = segments
        self.offset = offset
    }
}

/// What one event means for one realtime destination.
public enum RealtimeSelection: Sendable, Equatable {
    /// The destination does not care about the event (no mapping active for a listed segment, or only removals
    /// where `unsegment` is off).
    case none
    /// The destination cares, but the user has no id for its `user_dpid`: skipped and counted.
    case skipped
    case user(RealtimeUser)

    /// Applies SPEC §4 to one event for one destination.
    public static func select(_ event: Qualification, offset: Int64, destination: Destination,
                              settings: RealtimeSettings) -> RealtimeSelection
    {
        var segments = destination.mapped(event)
        if !settings.unsegment { segments.removeAll { !$0.realized } }
        guard !segments.isEmpty else { return .none }
        guard let partnerID = event.userID(forDPID: settings.userDPID) else { return .skipped }
        return .user(RealtimeUser(uuid: event.uuid, partnerID: partnerID, region: event.region,
                                  timestamp: event.timestamp, segments: segments, offset: offset))
    }
}
