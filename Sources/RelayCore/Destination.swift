/// A partner integration from `destinations:`: common fields plus the settings of its kind.
public struct Destination: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case realtime(RealtimeSettings)
        case batch(BatchSettings)
        case url(URLSettings)
        case cookie(CookieSettings)

        /// The `kind:` value.
        public var name: String {
            switch self {
            case .realtime: "realtime"
            case .batch: "batch"
            case .url: "url"
            case .cookie: "cookie"
            }
        }

        public static let names = ["realtime", "batch", "url", "cookie"]
    }

    /// Unique among destinations; appears in messages, file names and audit reports.
    public var id: Int
    public var name: String
    public var kind: Kind
    public var mappings: [SegmentMapping] {
        didSet { mappingTable = MappingTable(mappings) }
    }
    /// `mappings` indexed for per-event lookups; kept in step with `mappings`.
    public private(set) var mappingTable: MappingTable

    public init(id: Int, name: String, kind: Kind, mappings: [SegmentMapping]) {
        self.id = id
        self.name = name
        self.kind = kind
        self.mappings = mappings
        mappingTable = MappingTable(mappings)
    }

    /// The event's mapped segments for this destination (see ``MappingTable/map(_:)``).
    public func mapped(_ qualification: Qualification) -> [MappedSegment] {
        mappingTable.map(qualification)
    }

    public var realtime: RealtimeSettings? {
        if case .realtime(let settings) = kind { settings } else { nil }
    }

    public var batch: BatchSettings? {
        if case .batch(let settings) = kind { settings } else { nil }
    }

    public var url: URLSettings? {
        if case .url(let settings) = kind { settings } else { nil }
    }

    public var cookie: CookieSettings? {
        if case .cookie(let settings) = kind { settings } else { nil }
    }
}
