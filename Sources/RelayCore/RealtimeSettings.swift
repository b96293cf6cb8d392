import Foundation

/// `kind: realtime` (SPEC §4): pushes each user's mapped segments to the partner's endpoint within seconds.
public struct RealtimeSettings: Sendable, Hashable {
    /// Where messages are POSTed.
    public var url: URL
    /// `Client_ID` in every message.
    public var clientID: String
    /// Which `partner_ids` entry becomes `DataPartner_UUID`; 0 = the platform's `uuid`.
    public var userDPID: Int
    /// Whether removals (status 0) are sent.
    public var unsegment: Bool
    public var maxUsersPerMessage: Int
    /// A message closes before a user that would take its body (uncompressed) past this many bytes; a single user
    /// larger than that is sent alone.
    public var maxMessageBytes: Int
    public var flushIntervalMs: Int
    public var timeoutMs: Int
    /// Requests in flight to this partner at once.
    public var maxInFlight: Int
    /// Requests per second; `nil` = unlimited.
    public var rateLimitPerSecond: Double?
    public var retry: RetryPolicy
    /// Whether request bodies are gzip-compressed (`Content-Encoding: gzip`).
    public var gzip: Bool
    /// HMAC signing of the body; exclusive with `oauth2`.
    public var signing: SigningSettings?
    /// OAuth 2.0 client-credentials bearer token; exclusive with `signing`.
    public var oauth2: OAuth2Settings?

    public init(
        url: URL,
        clientID: String,
        userDPID: Int = 0,
        unsegment: Bool = false,
        maxUsersPerMessage: Int = 10,
        maxMessageBytes: Int = 1_000_000,
        flushIntervalMs: Int = 1_000,
        timeoutMs: Int = 3_000,
        maxInFlight: Int = 4,
        rateLimitPerSecond: Double? = nil,
        retry: RetryPolicy = RetryPolicy(),
        gzip: Bool = false,
        signing: SigningSettings? = nil,
        oauth2: OAuth2Settings? = nil
    ) {
        self.url = url
        self.clientID = clientID
        self.userDPID = userDPID
        self.unsegment = unsegment
        self.maxUsersPerMessage = maxUsersPerMessage
        self.maxMessageBytes = maxMessageBytes
        self.flushIntervalMs = flushIntervalMs
        self.timeoutMs = timeoutMs
        self.maxInFlight = maxInFlight
        self.rateLimitPerSecond = rateLimitPerSecond
        self.retry = retry
        self.gzip = gzip
        self.signing = signing
        self.oauth2 = oauth2
    }

    public var flushInterval: Duration { .milliseconds(flushIntervalMs) }
    public var timeout: Duration { .milliseconds(timeoutMs) }
}

/// `retry: {max_attempts, initial_backoff_ms, max_backoff_ms}`; `max_attempts` counts the first try.
public struct RetryPolicy: Sendable, Hashable {
    public var maxAttempts: Int
    public var initialBackoffMs: Int
    public var maxBackoffMs: Int

    public init(maxAttempts: Int = 8, initialBackoffMs: Int = 200, maxBackoffMs: Int = 60_000) {
        self.maxAttempts = maxAttempts
        self.initialBackoffMs = initialBackoffMs
        self.maxBackoffMs = maxBackoffMs
    }
}

/// `signing: {algorithm, header, key_env | key_file}`: the header carries the Base64 HMAC of the exact body sent.
public struct SigningSettings: Sendable, Hashable {
    public var algorithm: SigningAlgorithm
    public var header: String
    public var key: Secret

    /// `algorithm` defaults to sha256, the strongest of the three.
    public init(algorithm: SigningAlgorithm = .sha256, header: String = "X-Signature", key: Secret) {
        self.algorithm = algorithm
        self.header = header
        self.key = key
    }
}

/// `oauth2: {token_url, client_id_env | client_id_file, client_secret_env | client_secret_file}`.
public struct OAuth2Settings: Sendable, Hashable {
    public var tokenURL: URL
    public var clientID: Secret
    public var clientSecret: Secret

    public init(tokenURL: URL, clientID: Secret, clientSecret: Secret) {
        self.tokenURL = tokenURL
        self.clientID = clientID
        self.clientSecret = clientSecret
    }
}
