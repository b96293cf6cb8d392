/// One problem in the configuration, with its path in the file: `destinations[2].url: not an http(s) URL`.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// Dotted path with list indices, e.g. `destinations[0].retry.max_attempts`; the file name for problems with the
    /// file as a whole; empty when there is neither.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Every problem found in a configuration (loading does not stop at the first), in file order.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    /// One problem per line, ready for `relayctl validate` and start-up failures.
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
