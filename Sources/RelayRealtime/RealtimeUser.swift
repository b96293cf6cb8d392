import RelayCore

/// One user of one event, as one realtime destination receives it: the user's mapped segments from that event and
/// where the event came from (its offset, for the message id, dead letters and offset tracking).
///
/// A class, immutable: the record's entry, the chunk and the message share one user, handed on as one reference
/// (as a struct, each hand-off retained its four buffers: 4% of the worker's CPU in bench/realtime.sh's profile).
public final class RealtimeUser: Sendable, Hashable {
    /// The platform's user id (`AAM_UUID`).
    public let uuid: String
    /// The id the partner knows the user by (`DataPartner_UUID`, from `user_dpid`).
    public let partnerID: String
    public let region: Int?
    /// The event's `ts` (ms since the epoch): each segment's `DateTime`, and the start of the delivery latency.
    public let timestamp: Int64
    public let segments: [MappedSegment]
    /// The offset of the source record within its partition.
    public let offset: Int64
    /// The user's entry in the body's `Users` array, written once when the user is selected: the body joins the
    /// entries, and the chunk assembler measures them against `max_message_bytes`.
    public let json: [UInt8]

    public init(uuid: String, partnerID: String, region: Int?, timestamp: Int64, segments: [MappedSegment],
                offset: Int64)
    {
        self.uuid = uuid
        self.partnerID = partnerID
        self.region = region
        self.timestamp = timestamp
        self.segments = segments
        self.offset = offset
        json = RealtimeMessageBuilder.userJSON(uuid: uuid, partnerID: partnerID, region: region,
                                               timestamp: timestamp, segments: segments)
    }

    /// Equal users carry the same fields (`json` follows from them).
    public static func == (a: RealtimeUser, b: RealtimeUser) -> Bool {
        a.uuid == b.uuid && a.partnerID == b.partnerID && a.region == b.region && a.timestamp == b.timestamp
            && a.segments == b.segments && a.offset == b.offset
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(uuid)
        hasher.combine(offset)
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
