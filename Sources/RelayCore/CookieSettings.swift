/// `kind: cookie` (SPEC §6): first-party cookie key-values for an ad call, in `/event`'s `stuff`.
public struct CookieSettings: Sendable, Hashable {
    public var cookieName: String
    /// The key for `single_key` and `serialized`; unused by `key_value`, whose aliases are `key=value` pairs.
    public var key: String?
    public var format: CookieFormat
    public var keySeparator: String
    public var pairSeparator: String
    /// Between values of the one key, `serialized` only.
    public var valueSeparator: String
    /// Whole pairs are dropped beyond this, never cut.
    public var maxBytes: Int
    /// Cookie lifetime; 30 days unless configured.
    public var ttlDays: Int
    /// `nil` = the host that answered.
    public var domain: String?
    /// Also send `Set-Cookie`.
    public var setCookie: Bool

    public init(
        cookieName: String,
        key: String? = nil,
        format: CookieFormat = .singleKey,
        keySeparator: String = "=",
        pairSeparator: String = ",",
        valueSeparator: String = "|",
        maxBytes: Int = 2_048,
        ttlDays: Int = 30,
        domain: String? = nil,
        setCookie: Bool = false
    ) {
        self.cookieName = cookieName
        self.key = key
        self.format = format
        self.keySeparator = keySeparator
        self.pairSeparator = pairSeparator
        self.valueSeparator = valueSeparator
        self.maxBytes = maxBytes
        self.ttlDays = ttlDays
        self.domain = domain
        self.setCookie = setCookie
    }
}

public enum CookieFormat: String, Sendable, Hashable, CaseIterable {
    /// `segID=4532,segID=99`
    case singleKey = "single_key"
    /// Pairs taken from the aliases, which are written `k=v`.
    case keyValue = "key_value"
    /// `segID=4532|99`
    case serialized
}
