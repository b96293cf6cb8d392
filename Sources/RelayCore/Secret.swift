import Foundation

/// A reference to a secret, never the secret itself: an environment variable (`<name>_env` in the configuration)
/// or a file (`<name>_file`). The value is read only when ``resolve(environment:)`` is called, and nothing this type
/// prints (description, debug description, errors) contains it.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Source: Sendable, Hashable {
        /// The name of an environment variable.
        case environment(String)
        /// A file path, relative paths against the working directory.
        case file(String)
    }

    public var source: Source

    public init(_ source: Source) {
        self.source = source
    }

    public static func environment(_ name: String) -> Secret { Secret(.environment(name)) }
    public static func file(_ path: String) -> Secret { Secret(.file(path)) }

    /// Where the value lives, e.g. `env:ACME_HMAC_KEY` or `file:/run/secrets/acme`.
    public var description: String {
        switch source {
        case .environment(let name): "env:\(name)"
        case .file(let path): "file:\(path)"
        }
    }

    public var debugDescription: String { "Secret(\(description))" }

    /// Reads the value now. A file's trailing line break(s) are dropped, as editors and `echo` add them; an unset
    /// variable, an unreadable file and an empty value are errors.
    public func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SecretError) -> String {
        switch source {
        case .environment(let name):
            guard let value = environment[name] else {
                throw SecretError(secret: self, message: "environment variable \(name) is not set")
            }
            guard !value.isEmpty else { throw SecretError(secret: self, message: "environment variable \(name) is empty") }
            return value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SecretError(secret: self, message: "cannot read \(path)")
            }
            guard var value = String(data: data, encoding: .utf8) else {
                throw SecretError(secret: self, message: "\(path) is not UTF-8 text")
            }
            while let last = value.last, last == "\n" || last == "\r" || last == "\r\n" { value.removeLast() }
            guard !value.isEmpty else { throw SecretError(secret: self, message: "\(path) is empty") }
            return value
        }
    }
}

/// A secret could not be read. Names where it was looked for, never a value.
public struct SecretError: Error, Sendable, Equatable, CustomStringConvertible {
    public var secret: Secret
    public var message: String

    public init(secret: Secret, message: String) {
        self.secret = secret
        self.message = message
    }

    public var description: String { "secret \(secret): \(message)" }
}
