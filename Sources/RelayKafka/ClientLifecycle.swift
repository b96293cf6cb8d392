/// The life of one librdkafka handle, as a value with no I/O so that its rules are unit-tested on their own.
///
/// `created` → `started` (consumers: `start()` once) → `closing` (the last work on the handle, such as leaving the
/// group, whose rebalance callback may still commit) → `closed`. Calls hold the handle while they run; once `closed`
/// is reached no new call gets it, and the handle is destroyed only when no call holds it any more. A call after
/// `close()` therefore gets a closed error instead of reaching freed memory.
struct ClientLifecycle: Sendable, Equatable {
    enum State: Sendable, Equatable {
        case created, started, closing, closed
    }

    enum Refusal: Error, Sendable, Equatable {
        case alreadyStarted, closed
    }

    private(set) var state: State = .created
    private(set) var callsInFlight = 0

    /// Allowed once, before closing.
    mutating func start() -> Refusal? {
        switch state {
        case .created:
            state = .started
            return nil
        case .started: return .alreadyStarted
        case .closing, .closed: return .closed
        }
    }

    /// Whether a call may use the handle now; a `true` must be matched by `leave()`.
    mutating func enter() -> Bool {
        guard state != .closed else { return false }
        callsInFlight += 1
        return true
    }

    mutating func leave() {
        precondition(callsInFlight > 0, "leave() without enter()")
        callsInFlight -= 1
    }

    /// Starts closing; false when a close already began (close is idempotent).
    mutating func beginClose() -> Bool {
        guard state == .created || state == .started else { return false }
        state = .closing
        return true
    }

    /// Refuses every new call; the handle may be destroyed once `canDestroy`.
    mutating func refuseCalls() {
        state = .closed
    }

    var canDestroy: Bool { state == .closed && callsInFlight == 0 }
}
