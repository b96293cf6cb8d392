/// A batch failure with a readable message (never a secret).
public struct BatchError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
