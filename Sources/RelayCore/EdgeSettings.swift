/// `edge:`: the `relay-edge` server.
public struct EdgeSettings: Sendable, Hashable {
    /// `relay-edge --port` replaces the port.
    public var listen: HostPort
    /// Origins allowed by CORS; `*` allows any.
    public var corsOrigins: [String]
    /// Signs `/px` redirect targets (`redirect_key_env`, default `RELAY_REDIRECT_KEY`, or `redirect_key_file`).
    public var redirectKey: Secret
    public var snapshotDir: String
    /// Open connections beyond this many are closed as soon as they are accepted.
    public var maxConnections: Int
    /// A connection that has not completed a request for this long (idle between requests, or still sending its
    /// headers or body) is closed: slow clients cannot hold connections open.
    public var idleTimeout: RelayDuration

    public init(
        listen: HostPort = HostPort(host: "127.0.0.1", port: 8080), corsOrigins: [String] = [],
        redirectKey: Secret = .environment("RELAY_REDIRECT_KEY"), snapshotDir: String = "./state/edge",
        maxConnections: Int = 10_000, idleTimeout: RelayDuration = RelayDuration(milliseconds: 60_000)
    ) {
        self.listen = listen
        self.corsOrigins = corsOrigins
        self.redirectKey = redirectKey
        self.snapshotDir = snapshotDir
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
    }
}

/// `host:port`; an IPv6 host is written in brackets (`[::1]:8080`) and kept without them.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `nil` unless `text` is `host:port` with a port in 0...65535.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil
        }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace), !portText.isEmpty,
            portText.allSatisfy({ $0.isASCII && $0.isNumber }), portText.count <= 5, let port = Int(portText),
            (0...65_535).contains(port)
        else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
