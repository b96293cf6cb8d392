import Foundation

extension RealtimeSettings {
    static func read(_ reader: MappingReader) -> RealtimeSettings? {
        let url = reader.httpURL("url", required: true)
        let clientID = reader.string("client_id", required: true)
        let defaults = RetryPolicy()
        var retry = defaults
        if let retryReader = reader.mapping("retry") {
            retry.maxAttempts = retryReader.integer("max_attempts", atLeast: 1) ?? defaults.maxAttempts
            retry.initialBackoffMs = retryReader.integer("initial_backoff_ms", atLeast: 1) ?? defaults.initialBackoffMs
            if let maximum = retryReader.integer("max_backoff_ms", atLeast: 1) {
                if maximum < retry.initialBackoffMs {
                    retryReader.report("max_backoff_ms", "must be >= initial_backoff_ms (\(retry.initialBackoffMs))")
                }
                retry.maxBackoffMs = maximum
            }
            retryReader.reportUnknownKeys()
        }
        var settings = RealtimeSettings(
            url: url ?? URL(string: "http://invalid")!, clientID: clientID ?? "",
            userDPID: reader.integer("user_dpid", atLeast: 0) ?? 0,
            unsegment: reader.bool("unsegment") ?? false,
            maxUsersPerMessage: reader.integer("max_users_per_message", atLeast: 1) ?? 10,
            maxMessageBytes: reader.integer("max_message_bytes", atLeast: 1_024) ?? 1_000_000,
            flushIntervalMs: reader.integer("flush_interval_ms", atLeast: 0) ?? 1_000,
            timeoutMs: reader.integer("timeout_ms", atLeast: 1) ?? 3_000,
            maxInFlight: reader.integer("max_in_flight", atLeast: 1) ?? 4,
            retry: retry,
            gzip: reader.bool("gzip") ?? false)
        if let rate = reader.number("rate_limit_per_second") {
            if rate > 0 {
                settings.rateLimitPerSecond = rate
            } else {
                reader.report("rate_limit_per_second", "must be > 0 (leave it out for no limit)")
            }
        }
        if let signing = reader.mapping("signing") {
            settings.signing = SigningSettings.read(signing)
        }
        if let oauth2 = reader.mapping("oauth2") {
            let tokenURL = oauth2.httpURL("token_url", required: true)
            let clientID = oauth2.secret("client_id")
            let clientSecret = oauth2.secret("client_secret")
            if let tokenURL, let clientID, let clientSecret {
                settings.oauth2 = OAuth2Settings(tokenURL: tokenURL, clientID: clientID, clientSecret: clientSecret)
            }
            oauth2.reportUnknownKeys()
            if reader.has("signing") { reader.report("oauth2", "use signing or oauth2, not both") }
        }
        guard url != nil, clientID != nil else { return nil }
        return settings
    }

    /// RFC 9110 token characters.
    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty
            && name.unicodeScalars.allSatisfy { ($0.isASCIIAlphanumeric || "!#$%&'*+-.^_`|~".unicodeScalars.contains($0)) }
    }
}
