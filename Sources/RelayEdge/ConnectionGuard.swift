import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import Synchronization

/// The edge faces the open internet: `edge.max_connections` bounds the connections held open at once, and
/// `edge.idle_timeout` closes a connection that has not completed a request for that long (SPEC §3).
///
/// The guard sits first in each connection's pipeline, on raw bytes. A request is complete when the edge answers
/// it, so the clock restarts at every answer written: a connection idle between requests, one that dribbles its
/// headers (slowloris) and one that dribbles its body all run out of time alike. Every `/event` and `/px` answer
/// takes a millisecond or so, far below any sensible time-out.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    // Bytes pass through untouched; the guard never looks inside them.
    typealias InboundIn = Any
    typealias InboundOut = Any
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    /// Connections open now, shared by every connection's guard.
    final class OpenConnections: Sendable {
        let limit: Int
        private let count = Atomic<Int>(0)

        init(limit: Int) { self.limit = limit }

        /// Takes a place, or false when every place is taken.
        func admit() -> Bool {
            if count.add(1, ordering: .relaxed).newValue <= limit { return true }
            count.subtract(1, ordering: .relaxed)
            return false
        }

        func release() { count.subtract(1, ordering: .relaxed) }

        var current: Int { count.load(ordering: .relaxed) }
    }

    private let open: OpenConnections
    private let idleTimeout: TimeAmount
    private let metrics: EdgeMetrics
    private var admitted = false
    private var decided = false
    private var lastAnswer = NIODeadline.now()
    private var timer: Scheduled<Void>?

    init(open: OpenConnections, idleTimeout: TimeAmount, metrics: EdgeMetrics) {
        self.open = open
        self.idleTimeout = idleTimeout
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { decide(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        decide(context)
        if admitted { context.fireChannelActive() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        leave()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        leave()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastAnswer = .now()
        context.write(data, promise: promise)
    }

    /// Admits the connection and starts its clock, or closes it at once when the edge is full.
    private func decide(_ context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        guard open.admit() else {
            metrics.connectionsRefused.increment()
            context.close(promise: nil)
            return
        }
        admitted = true
        metrics.connectionsOpen.set(Double(open.current))
        lastAnswer = .now()
        schedule(context, at: lastAnswer + idleTimeout)
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            let due = lastAnswer + idleTimeout
            if NIODeadline.now() >= due {
                metrics.connectionsTimedOut.increment()
                context.close(promise: nil)
            } else {
                schedule(context, at: due)
            }
        }
    }

    private func leave() {
        timer?.cancel()
        timer = nil
        if admitted {
            admitted = false
            open.release()
            metrics.connectionsOpen.set(Double(open.current))
        }
    }
}

/// Hummingbird's HTTP/1.1 channel with a ``ConnectionGuard`` in front of it and ``EventFastPath`` right behind the
/// HTTP/1.1 decoder.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let base: HTTP1Channel
    let edge: EdgeServer
    let idleTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (edge, idleTimeout) = (self.edge, self.idleTimeout)
        let added = channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuard(open: edge.openConnections, idleTimeout: idleTimeout, metrics: edge.metrics),
                position: .first)
        }
        return added.flatMap { base.setup(channel: channel, logger: logger) }.flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            let decoder = try operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try operations.addHandler(EventFastPath(edge: edge), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }

    static func builder(edge: EdgeServer, idleTimeout: TimeAmount) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(base: HTTP1Channel(responder: responder), edge: edge, idleTimeout: idleTimeout)
        }
    }
}
