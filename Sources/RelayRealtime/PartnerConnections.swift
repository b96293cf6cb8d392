import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Keep-alive HTTP/1.1 connections to one partner endpoint, one request at a time on each.
///
/// relay-realtime posts many small messages to a few endpoints, and the cost per request is what bounds it. Here a
/// request is one write of head, body and end (a single `writev`, so the partner reads it in one go), and its answer
/// completes one promise. AsyncHTTPClient, used before, flushed the head and the body separately and spent about as
/// much CPU in its pool and state machines as the relay spends on everything else (bench/realtime.sh's profile).
/// Nothing else is needed here: no redirects (a partner's 3xx is an answer), no proxies, no streaming bodies.
///
/// Connections are opened on demand, on the event loop the caller names (the one its task runs on, see
/// ``EventLoopTaskExecutor``), and kept while the partner keeps them; how many exist at once is bounded by the caller's
/// cap on requests in flight.
final class PartnerConnections: Sendable {
    /// What the partner answered: enough to classify the attempt, and whether the connection may be kept.
    struct Answer: Sendable {
        let status: Int
        let retryAfter: String?
        let keepAlive: Bool
    }

    enum Failure: Error, CustomStringConvertible {
        case timedOut
        /// The connection ended before the whole answer; `answered` tells whether any of it had arrived.
        case closed(answered: Bool)
        case shutDown

        var description: String {
            switch self {
            case .timedOut: "timed out"
            case .closed(let answered): answered ? "connection closed mid-answer" : "connection closed"
            case .shutDown: "shut down"
            }
        }
    }

    private let host: String
    private let port: Int
    /// `Host` header and request target, fixed for the endpoint.
    private let hostHeader: String
    private let target: String
    private let tls: NIOSSLContext?
    private let serverName: String?
    private let pool = Mutex(Pool())

    private struct Pool {
        /// Idle connections by the identity of their event loop.
        var idle: [ObjectIdentifier: [any Channel]] = [:]
        var open: [ObjectIdentifier: any Channel] = [:]
        var shutDown = false
    }

    /// `url` must be http or https with a host (checked by the configuration).
    init(url: URL) throws {
        guard let components = URLComponents(url: url, resolvingAgainstBaseURL: false),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty
        else { throw URLError(.badURL) }
        let secure = scheme == "https"
        let defaultPort = secure ? 443 : 80
        self.host = host
        port = components.port ?? defaultPort
        let bracketed = host.contains(":") ? "[\(host)]" : host
        hostHeader = port == defaultPort ? bracketed : "\(bracketed):\(port)"
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        target = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
        tls = secure ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        // SNI carries names only, never an address literal.
        serverName = secure && !Self.isAddressLiteral(host) ? host : nil
    }

    /// Posts `body` with `headers` (Host and Content-Length are added) on a connection of `loop` and waits for the
    /// whole answer, at most `timeout` from now, connecting included.
    func post(headers: HTTPHeaders, body: ByteBuffer, timeout: TimeAmount, on loop: any EventLoop) async throws
        -> Answer
    {
        let deadline = NIODeadline.now() + timeout
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target)
        head.headers.reserveCapacity(headers.count + 2)
        head.headers.add(name: "Host", value: hostHeader)
        head.headers.add(contentsOf: headers)
        head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        if let channel = takeIdle(on: loop) {
            do {
                return try await exchange(head, body, on: channel, deadline: deadline)
            } catch Failure.timedOut {
                throw Failure.timedOut
            } catch {
                // Most likely the partner closed the kept connection as the request went out (a reset or an end
                // of stream): once more on a new connection, within the same deadline. The message id makes a
                // repeat harmless.
            }
        }
        let channel = try await connect(on: loop, deadline: deadline)
        return try await exchange(head, body, on: channel, deadline: deadline)
    }

    /// Connections open now, idle or in use.
    var connectionCount: Int { pool.withLock { $0.open.count } }

    /// Closes every connection; a request after this fails with ``Failure/shutDown``.
    func shutdown() async {
        let channels = pool.withLock { pool -> [any Channel] in
            pool.shutDown = true
            pool.idle.removeAll()
            return Array(pool.open.values)
        }
        for channel in channels { try? await channel.close() }
    }

    private func exchange(_ head: HTTPRequestHead, _ body: ByteBuffer, on channel: any Channel,
                          deadline: NIODeadline) async throws -> Answer
    {
        let answer = channel.eventLoop.makePromise(of: Answer.self)
        let exchange = ExchangeHandler.Exchange(head: head, body: body, deadline: deadline, answer: answer)
        // A channel closed before the write reached the handler fails the write, not the handler: fail the answer
        // then (a promise completed twice keeps its first result).
        channel.writeAndFlush(exchange).whenFailure { answer.fail($0) }
        do {
            let result = try await answer.futureResult.get()
            if result.keepAlive { putBack(channel) } else { close(channel) }
            return result
        } catch {
            close(channel)
            throw error
        }
    }

    private func connect(on loop: any EventLoop, deadline: NIODeadline) async throws -> any Channel {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw Failure.timedOut }
        let (tls, serverName) = (tls, serverName)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(remaining)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handlers = channel.pipeline.syncOperations
                    if let tls { try handlers.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    try handlers.addHTTPClientHandlers()
                    try handlers.addHandler(ExchangeHandler())
                }
            }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        let accepted = pool.withLock { pool -> Bool in
            guard !pool.shutDown else { return false }
            pool.open[ObjectIdentifier(channel)] = channel
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            throw Failure.shutDown
        }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.pool.withLock { pool in
                pool.open[ObjectIdentifier(channel)] = nil
                pool.idle[ObjectIdentifier(channel.eventLoop)]?.removeAll { $0 === channel }
            }
        }
        return channel
    }

    private func takeIdle(on loop: any EventLoop) -> (any Channel)? {
        pool.withLock { pool in
            while let channel = pool.idle[ObjectIdentifier(loop)]?.popLast() {
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    private func putBack(_ channel: any Channel) {
        let kept = pool.withLock { pool -> Bool in
            guard !pool.shutDown, channel.isActive else { return false }
            pool.idle[ObjectIdentifier(channel.eventLoop), default: []].append(channel)
            return true
        }
        if !kept { close(channel) }
    }

    private func close(_ channel: any Channel) {
        channel.close(promise: nil)
    }

    private static func isAddressLiteral(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// One request at a time on a connection: writes it whole (one flush), reads the answer's head, drops its body,
/// and completes the exchange's promise at the answer's end, or fails it on a time-out, an error or a close.
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    typealias Answer = PartnerConnections.Answer

    struct Exchange: Sendable {
        let head: HTTPRequestHead
        let body: ByteBuffer
        let deadline: NIODeadline
        let answer: EventLoopPromise<Answer>
    }

    private var current: EventLoopPromise<Answer>?
    private var responseHead: HTTPResponseHead?
    private var timeout: Scheduled<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard current == nil else {
            // The pool hands a connection to one request at a time: a second one is a bug, not a partner's doing.
            exchange.answer.fail(ChannelError.inappropriateOperationForState)
            promise?.fail(ChannelError.inappropriateOperationForState)
            return
        }
        current = exchange.answer
        responseHead = nil
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: exchange.deadline) { [weak self] in
            self?.finish(.failure(PartnerConnections.Failure.timedOut))
            context.close(promise: nil)
        }
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            // An interim answer (100 Continue, 103 Early Hints) is followed by the real one.
            if head.status.code >= 200 || head.status == .switchingProtocols { responseHead = head }
        case .body:
            break
        case .end:
            guard let head = responseHead else { return }
            guard current != nil else {
                context.close(promise: nil)  // an answer nobody asked for: the connection cannot be trusted
                return
            }
            finish(.success(Answer(status: Int(head.status.code), retryAfter: head.headers.first(name: "Retry-After"),
                                   keepAlive: head.isKeepAlive)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(PartnerConnections.Failure.closed(answered: responseHead != nil)))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    private func finish(_ result: Result<Answer, any Error>) {
        timeout?.cancel()
        timeout = nil
        responseHead = nil
        guard let promise = current else { return }
        current = nil
        promise.completeWith(result)
    }
}
