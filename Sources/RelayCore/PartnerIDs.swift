/// The `partner_ids` of an event: partner user ids keyed by DPID (a string of digits), in event order.
///
/// A small array rather than a dictionary: events carry a handful of entries, lookups are a short scan, and the
/// order is kept so that encoding is deterministic.
public struct PartnerIDs: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public struct Entry: Sendable, Hashable {
        /// The partner's data-provider id, digits only (as written in the event, leading zeros kept).
        public var dpid: String
        /// The partner's id for the user.
        public var id: String

        public init(dpid: String, id: String) {
            self.dpid = dpid
            self.id = id
        }
    }

    public private(set) var entries: [Entry]

    public init() { entries = [] }

    public init(_ entries: [Entry]) { self.entries = entries }

    /// Later duplicates replace earlier ones, as assignment would.
    public init(dictionaryLiteral elements: (String, String)...) {
        entries = []
        for (dpid, id) in elements { self[dpid] = id }
    }

    public var startIndex: Int { entries.startIndex }
    public var endIndex: Int { entries.endIndex }
    public subscript(position: Int) -> Entry { entries[position] }

    /// The partner id for a DPID written as text, e.g. `"20915"`.
    public subscript(dpid: String) -> String? {
        get { entries.first(where: { $0.dpid == dpid })?.id }
        set {
            let index = entries.firstIndex(where: { $0.dpid == dpid })
            switch (index, newValue) {
            case let (index?, value?): entries[index].id = value
            case let (index?, nil): entries.remove(at: index)
            case let (nil, value?): entries.append(Entry(dpid: dpid, id: value))
            case (nil, nil): break
            }
        }
    }

    /// The partner id for a DPID as configured (`user_dpid`, `master_dpid`); `nil` when the user has none.
    public func id(forDPID dpid: Int) -> String? {
        self[String(dpid)]
    }
}
