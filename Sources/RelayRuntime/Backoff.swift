/// Exponential back-off, the one used by every retry loop of the relay: the wait after failed attempt `n` (1-based)
/// is bounded by `initial · 2^(n-1)`, capped at `maximum`; with `jitter` it is a uniformly random share of that bound
/// (full jitter), so that many workers retrying the same partner do not retry in step. Arithmetic saturates: any
/// attempt count and any configured duration give a wait between zero and `maximum`.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    public var jitter: Bool

    public init(initial: Duration, maximum: Duration, jitter: Bool = false) {
        self.initial = max(.milliseconds(1), initial)
        self.maximum = max(self.initial, maximum)
        self.jitter = jitter
    }

    /// For writes to the broker (dead letters, state records): 100 ms doubling to 10 s.
    public static let broker = Backoff(initial: .milliseconds(100), maximum: .seconds(10))

    public func bound(afterAttempt attempt: Int) -> Duration {
        let doublings = attempt <= 1 ? 0 : min(attempt - 1, 40)
        var wait = initial
        for _ in 0..<doublings {
            guard wait < maximum else { break }
            wait = wait * 2
        }
        return min(wait, maximum)
    }

    /// The wait before the next attempt. `random` is a value in 0...1 (injected by tests).
    public func delay(afterAttempt attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let bound = bound(afterAttempt: attempt)
        guard jitter else { return bound }
        return bound * min(1, max(0, random.isFinite ? random : 1))
    }
}
