/// Why a qualification event was rejected; `reason` goes to the dead-letter header `relay.error`.
public struct MalformedEvent: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { "malformed event: \(reason)" }
}
