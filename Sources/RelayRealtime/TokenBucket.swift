/// `rate_limit_per_second`: a token bucket holding up to one second of requests. ``reserve(now:)`` takes a token
/// and returns how long the caller must wait before using it (zero when one is available), so that concurrent
/// callers queue up fairly without polling.
public struct TokenBucket: Sendable {
    public let ratePerSecond: Double
    public let capacity: Double
    private var tokens: Double
    private var updated: ContinuousClock.Instant

    public init(ratePerSecond: Double, now: ContinuousClock.Instant) {
        self.ratePerSecond = max(0.001, ratePerSecond)
        capacity = max(1, ratePerSecond)
        tokens = capacity
        updated = now
    }

    public mutating func reserve(now: ContinuousClock.Instant) -> Duration {
        if now > updated {
            let elapsed = Double((now - updated).components.seconds)
                + Double((now - updated).components.attoseconds) / 1e18
            tokens = min(capacity, tokens + elapsed * ratePerSecond)
            updated = now
        }
        tokens -= 1
        if tokens >= 0 { return .zero }
        return .milliseconds(Int64((-tokens / ratePerSecond * 1000).rounded(.up)))
    }
}
