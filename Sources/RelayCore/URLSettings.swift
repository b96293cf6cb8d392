/// `kind: url` (SPEC §6): pixel (URL) destinations handed to the page by `relay-edge`.
public struct URLSettings: Sendable, Hashable {
    /// Template with macros (`%alias%` required, `%did%`, `%rnd%`, `%timestamp%`, `%region%`, `%http_proto%`,
    /// `%dpid_<DPID>%`).
    public var url: String
    /// Template for secure pages; defaults to `url`.
    public var secureURL: String
    /// One URL for all aliases, joined with the delimiter; `nil` = one URL per mapped segment.
    public var serialize: SerializeSettings?
    public var audit: PixelAuditMode
    /// Above this loss rate the pixel audit raises `alert`.
    public var maxLossRate: Double
    /// The partner's credential for `POST /px/receipts` (`receipts_token_env` / `receipts_token_file`): sent as
    /// `Authorization: Bearer <token>`, or used as the key of an HMAC-SHA256 of the body. Without it, the edge
    /// refuses receipts for this destination.
    public var receiptsToken: Secret?

    public init(
        url: String, secureURL: String? = nil, serialize: SerializeSettings? = nil, audit: PixelAuditMode = .none,
        maxLossRate: Double = 0.20, receiptsToken: Secret? = nil
    ) {
        self.url = url
        self.secureURL = secureURL ?? url
        self.serialize = serialize
        self.audit = audit
        self.maxLossRate = maxLossRate
        self.receiptsToken = receiptsToken
    }

    /// The macros a template may use besides `%dpid_<digits>%`.
    public static let macros: Set<String> = ["alias", "did", "rnd", "timestamp", "region", "http_proto"]
}

/// `serialize: {delimiter}`.
public struct SerializeSettings: Sendable, Hashable {
    public var delimiter: String

    public init(delimiter: String = ",") {
        self.delimiter = delimiter
    }
}

/// `audit: redirect | none`.
public enum PixelAuditMode: String, Sendable, Hashable, CaseIterable {
    /// Hand out the edge's own `/px/<pixel_id>` URL, which records the receipt and redirects to the partner.
    case redirect
    /// Hand out the partner URL as is.
    case none
}
