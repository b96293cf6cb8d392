import Foundation
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// What `/health/ready` and `/health/live` report.
///
/// Ready (200) only once the worker can do its job: a group member once the broker has answered and the group has
/// given it its assignment (an empty one included: more members than partitions), `relay-edge` once it has caught
/// up. Orchestrators then send traffic and count it as running at the right time; a worker pointed at a wrong
/// broker, or refused by it, stays not ready.
///
/// Live (200) unless the consume loop has stopped making progress while records wait: it took a batch and has not
/// finished with it for ``stallLimit``. A restart is the cure for a loop stuck that long; a loop that merely has
/// nothing to read stays live.
public final class Readiness: Sendable {
    private let ready = Atomic<Bool>(false)
    /// Monotonic nanoseconds since the loop took the batch it is working on; 0 while it holds none.
    private let busySince = Atomic<Int64>(0)
    public let stallLimit: Duration
    private let stallNanoseconds: Int64

    public init(stallLimit: Duration = .seconds(300)) {
        self.stallLimit = stallLimit
        let (nanoseconds, overflow) = stallLimit.components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        stallNanoseconds = overflow ? .max : nanoseconds
    }

    public var isReady: Bool { ready.load(ordering: .acquiring) }
    public func set(_ value: Bool) { ready.store(value, ordering: .releasing) }

    /// The loop took records and works on them.
    public func workStarted() { busySince.store(max(1, Self.monotonicNanoseconds()), ordering: .releasing) }

    /// The loop is done with what it took.
    public func workFinished() { busySince.store(0, ordering: .releasing) }

    public var isLive: Bool { isLive(now: Self.monotonicNanoseconds()) }

    func isLive(now: Int64) -> Bool {
        let since = busySince.load(ordering: .acquiring)
        return since == 0 || now &- since < stallNanoseconds
    }

    static func monotonicNanoseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Int64(spec.tv_sec) &* 1_000_000_000 &+ Int64(spec.tv_nsec)
    }
}

/// Adds `/metrics`, `/health/live` and `/health/ready` to a router: the operational endpoints every executable serves.
public func addOperationalRoutes<Context: RequestContext>(to router: Router<Context>, readiness: Readiness,
                                                          registry: PrometheusCollectorRegistry)
{
    router.get("/metrics") { _, _ -> Response in
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }
    router.get("/health/live") { _, _ -> Response in
        readiness.isLive
            ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
            : Response(status: .serviceUnavailable,
                       body: .init(byteBuffer: ByteBuffer(string: "stalled: records taken and not finished\n")))
    }
    router.get("/health/ready") { _, _ -> Response in
        readiness.isReady
            ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
            : Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "not ready\n")))
    }
}

/// The HTTP server of a worker's operational endpoints, as a `Service`. `extraRoutes` lets a worker add its own
/// read-only endpoints (relay-pixel-audit's `/report`).
public func makeOperationsServer(port: Int, host: String = "0.0.0.0", readiness: Readiness,
                                 registry: PrometheusCollectorRegistry, logger: Logger,
                                 extraRoutes: (Router<BasicRequestContext>) -> Void = { _ in }) -> some Service
{
    let router = Router()
    addOperationalRoutes(to: router, readiness: readiness, registry: registry)
    extraRoutes(router)
    return Application(router: router, configuration: .init(address: .hostname(host, port: port)), logger: logger)
}
