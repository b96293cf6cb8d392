import AsyncHTTPClient
import Foundation
import NIOCore
import RelayCore

/// OAuth 2.0 client credentials (RFC 6749 §4.4): fetches a bearer token from `token_url`, caches it and fetches a
/// new one before it expires (at 90 % of its lifetime, at most a minute early).
actor OAuth2TokenSource {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let settings: OAuth2Settings
    private let clientID: String
    private let clientSecret: String
    private let client: HTTPClient
    private let timeout: Duration
    private var cached: (token: String, refreshAt: ContinuousClock.Instant)?
    private var pending: Task<(String, ContinuousClock.Instant), any Error>?

    init(settings: OAuth2Settings, clientID: String, clientSecret: String, client: HTTPClient, timeout: Duration) {
        self.settings = settings
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.client = client
        self.timeout = timeout
    }

    func token() async throws -> String {
        if let cached, ContinuousClock.now < cached.refreshAt { return cached.token }
        let task: Task<(String, ContinuousClock.Instant), any Error>
        if let pending {
            task = pending
        } else {
            let (url, id, secret, client, timeout) = (settings.tokenURL, clientID, clientSecret, client, timeout)
            task = Task { try await Self.fetch(url: url, clientID: id, clientSecret: secret, client: client,
                                               timeout: timeout) }
            pending = task
        }
        defer { pending = nil }
        let (token, refreshAt) = try await task.value
        cached = (token, refreshAt)
        return token
    }

    /// The partner refused the token (401): fetch a new one next time.
    func invalidate() { cached = nil }

    private static func fetch(url: URL, clientID: String, clientSecret: String, client: HTTPClient,
                              timeout: Duration) async throws -> (String, ContinuousClock.Instant)
    {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        let form = "grant_type=client_credentials&client_id=\(formEncode(clientID))&client_secret=\(formEncode(clientSecret))"
        request.body = .bytes(ByteBuffer(string: form))
        let started = ContinuousClock.now
        let response = try await client.execute(request, timeout: .milliseconds(timeout.components.seconds * 1000
                + timeout.components.attoseconds / 1_000_000_000_000_000))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Failure(description: "token endpoint answered HTTP \(response.status.code)")
        }
        guard let json = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
              let token = json["access_token"] as? String, !token.isEmpty
        else { throw Failure(description: "token endpoint answer has no access_token") }
        let given = (json["expires_in"] as? NSNumber)?.doubleValue
            ?? (json["expires_in"] as? String).flatMap(Double.init) ?? 3600
        // From outside: NaN, negative or absurd lifetimes are pinned to [0 s, 1 day] before any arithmetic.
        let lifetime = given.isFinite ? min(max(given, 0), 86_400) : 3600
        let early = min(60, lifetime * 0.1)
        return (token, started + .milliseconds(Int64(max(0, lifetime - early) * 1000)))
    }

    private static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}
