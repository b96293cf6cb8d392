/// Why bytes from outside (a Kafka record, a request body, a file) could not be read. `reason` is what a dead letter's
/// `relay.error` header and an HTTP 400 say, so it names the field or byte at fault and never the whole input.
public struct MalformedInput: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}
