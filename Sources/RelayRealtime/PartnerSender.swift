import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import RelayCore
import RelayRuntime

/// The header carrying the message id, stable across retries and replays.
public let messageIDHeader = "X-Relay-Message-Id"

/// Sends one message to one destination's endpoint: the body gzip-compressed if asked, signed (HMAC header) or
/// authorized (OAuth 2.0 bearer token), with its message id; classifies the answer.
public struct PartnerSender: Sendable {
    public let destinationID: Int
    public let settings: RealtimeSettings
    /// The partner's endpoint (the `client` given to `init` only fetches OAuth 2.0 tokens).
    let connections: PartnerConnections
    let signer: SigningAlgorithm.Signer?
    let tokens: OAuth2TokenSource?

    /// Resolves the destination's secrets now: a missing key is an error that names where it was looked for.
    public init(destination: Destination, settings: RealtimeSettings, client: HTTPClient,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws
    {
        destinationID = destination.id
        self.settings = settings
        connections = try PartnerConnections(url: settings.url)
        signer = try settings.signing.map { .init($0.algorithm, key: try $0.key.resolve(environment: environment)) }
        tokens = try settings.oauth2.map { oauth in
            OAuth2TokenSource(settings: oauth, clientID: try oauth.clientID.resolve(environment: environment),
                              clientSecret: try oauth.clientSecret.resolve(environment: environment), client: client,
                              timeout: settings.timeout)
        }
    }

    /// The bytes put on the wire for a body, and the headers that depend on them: made once, sent on every attempt.
    public struct Prepared: Sendable {
        public var body: ByteBuffer
        public var headers: HTTPHeaders
    }

    public func prepare(body: [UInt8], messageID: String) -> Prepared {
        var headers: HTTPHeaders = ["Content-Type": "application/json", messageIDHeader: messageID]
        var bytes = body
        if settings.gzip, let compressed = try? Gzip.compress(body) {
            bytes = compressed
            headers.add(name: "Content-Encoding", value: "gzip")
        }
        if let signing = settings.signing, let signer {
            headers.add(name: signing.header, value: signer.signature(of: bytes))
        }
        return Prepared(body: ByteBuffer(bytes: bytes), headers: headers)
    }

    /// One attempt, on a connection of `loop` (the one the calling task runs on, ideally).
    public func send(_ prepared: Prepared, on loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) async
        -> AttemptResult
    {
        var headers = prepared.headers
        if let tokens {
            do {
                headers.add(name: "Authorization", value: "Bearer \(try await tokens.token())")
            } catch {
                return .retryable(reason: "oauth2 token: \(error)", retryAfter: nil)
            }
        }
        do {
            let answer = try await connections.post(headers: headers, body: prepared.body,
                                                    timeout: .milliseconds(Int64(settings.timeoutMs)), on: loop)
            if answer.status == 401, let tokens {
                await tokens.invalidate()
                return .retryable(reason: "HTTP 401 (token refreshed)", retryAfter: nil)
            }
            return AttemptResult.classify(status: answer.status, retryAfter: answer.retryAfter)
        } catch PartnerConnections.Failure.timedOut {
            return .retryable(reason: "timed out after \(settings.timeoutMs) ms", retryAfter: nil)
        } catch {
            return .retryable(reason: "connection error: \(Self.describe(error))", retryAfter: nil)
        }
    }

    /// Closes the connections to the partner.
    public func shutdown() async {
        await connections.shutdown()
    }

    /// Error text without URLs' user info or headers (which could carry secrets).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PartnerConnections.Failure { return error.description }
        return String(describing: type(of: error)) + ": " + String(describing: error).prefix(200)
    }
}
