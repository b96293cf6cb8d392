import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RelayCore
import RelayRuntime

/// The header carrying the message id, stable across retries and replays.
public let messageIDHeader = "X-Relay-Message-Id"

/// Sends one message to one destination's endpoint: the body gzip-compressed if asked, signed (HMAC header) or
/// authorized (OAuth 2.0 bearer token), with its message id; classifies the answer.
public struct PartnerSender: Sendable {
    public let destinationID: Int
    public let settings: RealtimeSettings
    let client: HTTPClient
    let signer: SigningAlgorithm.Signer?
    let tokens: OAuth2TokenSource?

    /// Resolves the destination's secrets now: a missing key is an error that names where it was looked for.
    public init(destination: Destination, settings: RealtimeSettings, client: HTTPClient,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws
    {
        destinationID = destination.id
        self.settings = settings
        self.client = client
        signer = try settings.signing.map { .init($0.algorithm, key: try $0.key.resolve(environment: environment)) }
        tokens = try settings.oauth2.map { oauth in
            OAuth2TokenSource(settings: oauth, clientID: try oauth.clientID.resolve(environment: environment),
                              clientSecret: try oauth.clientSecret.resolve(environment: environment), client: client,
                              timeout: settings.timeout)
        }
    }

    /// The bytes put on the wire for a body, and the headers that depend on them.
    public struct Prepared: Sendable {
        public var bytes: [UInt8]
        public var headers: [(String, String)]
    }

    public func prepare(body: [UInt8], messageID: String) -> Prepared {
        var headers = [("Content-Type", "application/json"), (messageIDHeader, messageID)]
        var bytes = body
        if settings.gzip, let compressed = try? Gzip.compress(body) {
            bytes = compressed
            headers.append(("Content-Encoding", "gzip"))
        }
        if let signing = settings.signing, let signer {
            headers.append((signing.header, signer.signature(of: bytes)))
        }
        return Prepared(bytes: bytes, headers: headers)
    }

    /// One attempt.
    public func send(_ prepared: Prepared) async -> AttemptResult {
        var request = HTTPClientRequest(url: settings.url.absoluteString)
        request.method = .POST
        for (name, value) in prepared.headers { request.headers.add(name: name, value: value) }
        if let tokens {
            do {
                request.headers.add(name: "Authorization", value: "Bearer \(try await tokens.token())")
            } catch {
                return .retryable(reason: "oauth2 token: \(error)", retryAfter: nil)
            }
        }
        request.body = .bytes(ByteBuffer(bytes: prepared.bytes))
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(settings.timeoutMs)))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if response.status.code == 401, let tokens { await tokens.invalidate() }
            if response.status.code == 401, tokens != nil {
                return .retryable(reason: "HTTP 401 (token refreshed)", retryAfter: nil)
            }
            return AttemptResult.classify(status: Int(response.status.code),
                                          retryAfter: response.headers.first(name: "Retry-After"))
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return .retryable(reason: "timed out after \(settings.timeoutMs) ms", retryAfter: nil)
        } catch {
            return .retryable(reason: "connection error: \(Self.describe(error))", retryAfter: nil)
        }
    }

    /// Error text without URLs' user info or headers (which could carry secrets).
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return String(describing: error) }
        return String(describing: type(of: error)) + ": " + String(describing: error).prefix(200)
    }
}
