import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// `/health/ready` answers 200 only once the worker can do its job (joined, caught up...), so that orchestrators
/// send traffic and count it as running at the right time. `/health/live` answers 200 while the process runs.
public final class Readiness: Sendable {
    private let ready = Atomic<Bool>(false)
    public init() {}
    public var isReady: Bool { ready.load(ordering: .acquiring) }
    public func set(_ value: Bool) { ready.store(value, ordering: .releasing) }
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
    router.get("/health/live") { _, _ in "ok\n" }
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
