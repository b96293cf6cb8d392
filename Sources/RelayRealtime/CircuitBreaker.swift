/// A destination's circuit breaker: after `failureThreshold` consecutive failures it opens, and requests fail fast
/// (no call to the partner) until `coolDown` has passed; then one probe is let through (half-open). A success
/// closes it, a failure opens it again for another cool-down.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed
        case open(until: ContinuousClock.Instant)
        case halfOpen

        /// For the `relay_realtime_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
        public var gaugeValue: Int {
            switch self {
            case .closed: 0
            case .open: 1
            case .halfOpen: 2
            }
        }
    }

    public let failureThreshold: Int
    public let coolDown: Duration
    public private(set) var state: State = .closed
    public private(set) var consecutiveFailures = 0

    public init(failureThreshold: Int = 5, coolDown: Duration) {
        self.failureThreshold = max(1, failureThreshold)
        self.coolDown = coolDown
    }

    /// Whether a request may go to the partner now. In half-open state only the one probe goes; others fail fast
    /// until its result is known.
    public mutating func allowRequest(now: ContinuousClock.Instant) -> Bool {
        switch state {
        case .closed:
            return true
        case .open(let until):
            guard now >= until else { return false }
            state = .halfOpen
            probeInFlight = true
            return true
        case .halfOpen:
            if probeInFlight { return false }
            probeInFlight = true
            return true
        }
    }

    private var probeInFlight = false

    public mutating func recordSuccess() {
        consecutiveFailures = 0
        probeInFlight = false
        state = .closed
    }

    public mutating func recordFailure(now: ContinuousClock.Instant) {
        consecutiveFailures += 1
        switch state {
        case .halfOpen:
            probeInFlight = false
            state = .open(until: now + coolDown)
        case .closed where consecutiveFailures >= failureThreshold:
            state = .open(until: now + coolDown)
        case .closed, .open:
            break
        }
    }
}
