/// One evaluation of one user (SPEC §2): the user's state after the evaluation, read from `aam.qualifications`.
///
/// Values are produced by ``QualificationDecoder`` (which enforces every rule of §2) or built directly in tests and
/// by the sample producer; the initialiser does not validate.
public struct Qualification: Sendable, Hashable {
    /// Unique per evaluation (1–128 characters); for tracing and de-duplication.
    public var eventID: String
    /// The platform's user id (1–64 characters of `[0-9A-Za-z_-]`).
    public var uuid: String
    /// When the user was evaluated, in milliseconds since the Unix epoch (`ts`).
    public var timestamp: Int64
    /// The edge region that saw the user.
    public var region: Int?
    /// Every segment the user is realized in plus every segment this evaluation removed, in event order.
    public var segments: [SegmentState]
    /// Synced partner ids keyed by the partner's DPID.
    public var partnerIDs: PartnerIDs

    public init(
        eventID: String,
        uuid: String,
        timestamp: Int64,
        region: Int? = nil,
        segments: [SegmentState],
        partnerIDs: PartnerIDs = [:]
    ) {
        self.eventID = eventID
        self.uuid = uuid
        self.timestamp = timestamp
        self.region = region
        self.segments = segments
        self.partnerIDs = partnerIDs
    }
}

/// A segment listed in an event: `status` 1 (realized) or 0 (removed by this evaluation).
public struct SegmentState: Sendable, Hashable {
    /// The segment id, an integer > 0.
    public var id: Int64
    /// `true` for status 1 (the user is in the segment), `false` for status 0 (this evaluation removed it).
    public var realized: Bool

    public init(id: Int64, realized: Bool) {
        self.id = id
        self.realized = realized
    }

    public static func realized(_ id: Int64) -> SegmentState { SegmentState(id: id, realized: true) }
    public static func removed(_ id: Int64) -> SegmentState { SegmentState(id: id, realized: false) }

    /// The wire value of `status`.
    public var status: Int { realized ? 1 : 0 }
}

extension Qualification {
    /// The id a partner knows this user by: DPID 0 is the platform's own `uuid` (SPEC §4 `user_dpid`, §5
    /// `master_dpid`); any other DPID is looked up in `partner_ids`, `nil` when the user has none.
    public func userID(forDPID dpid: Int) -> String? {
        dpid == 0 ? uuid : partnerIDs.id(forDPID: dpid)
    }
}
