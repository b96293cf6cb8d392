import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A partner's HTTP endpoint on loopback for the realtime tests: records every request (path, headers, body,
/// arrival time) and answers as told per path: a status (with headers, e.g. `Retry-After`), a JSON body, or no
/// answer at all (hang, until the client gives up or the partner stops).
public final class TestPartner: Sendable {
    public struct Request: Sendable {
        public let path: String
        /// Header names lowercased.
        public let headers: [String: String]
        public let body: [UInt8]
        public let receivedAt: ContinuousClock.Instant
        /// What the partner answered (0: it hung).
        public let status: Int

        public func header(_ name: String) -> String? { headers[name.lowercased()] }
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    public enum Response: Sendable {
        case status(Int, headers: [String: String] = [:])
        case json(String)
        case hang
    }

    private struct State {
        var requests: [Request] = []
        var scripts: [String: [Response]] = [:]
        var defaults: [String: Response] = [:]
        var released = false
    }

    private let state = Mutex(State())
    public let port: Int
    private let server: Task<Void, any Error>

    private init(port: Int, server: Task<Void, any Error>) {
        self.port = port
        self.server = server
    }

    /// A partner on `port` (0: any free port).
    public static func start(port: Int = 0) async throws -> TestPartner {
        let box = PartnerBox()
        let router = Router()
        router.post("**") { request, _ -> Hummingbird.Response in
            let body = try await request.body.collect(upTo: 64 << 20)
            guard let partner = box.partner else { return Hummingbird.Response(status: .serviceUnavailable) }
            return await partner.answer(request, body: Array(buffer: body))
        }
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "test-partner")
        logger.logLevel = .critical
        let app = Application(router: router,
                              configuration: .init(address: .hostname("127.0.0.1", port: port)),
                              onServerRunning: { channel in
                                  continuation.yield(channel.localAddress?.port ?? 0)
                                  continuation.finish()
                              }, logger: logger)
        let server = Task { try await app.runService(gracefulShutdownSignals: []) }
        var bound = 0
        for await value in stream { bound = value }
        guard bound > 0 else { throw TestFailure("test partner did not start") }
        let partner = TestPartner(port: bound, server: server)
        box.set(partner)
        return partner
    }

    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// The next answers for `path`, in order; after them the default (200 unless set).
    public func script(_ path: String, _ responses: [Response]) {
        state.withLock { $0.scripts[path, default: []] += responses }
    }

    public func setDefault(_ path: String, _ response: Response) {
        state.withLock { $0.defaults[path] = response }
    }

    public func requests(_ path: String? = nil) -> [Request] {
        state.withLock { s in path.map { p in s.requests.filter { $0.path == p } } ?? s.requests }
    }

    /// Requests answered 2xx.
    public func delivered(_ path: String) -> [Request] {
        requests(path).filter { (200..<300).contains($0.status) }
    }

    /// Lets hanging requests go and stops the server.
    public func stop() async {
        state.withLock { $0.released = true }
        server.cancel()
        _ = await server.result
    }

    private func answer(_ request: Hummingbird.Request, body: [UInt8]) async -> Hummingbird.Response {
        let path = request.uri.path
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        headers["host"] = request.head.authority  // HTTP/1.1's Host, kept by HTTPTypes as the authority
        let response = state.withLock { s -> TestPartner.Response in
            if var script = s.scripts[path], !script.isEmpty {
                let next = script.removeFirst()
                s.scripts[path] = script
                return next
            }
            return s.defaults[path] ?? .status(200)
        }
        let status: Int
        switch response {
        case .status(let code, _): status = code
        case .json: status = 200
        case .hang: status = 0
        }
        state.withLock { s in
            s.requests.append(Request(path: path, headers: headers, body: body, receivedAt: .now, status: status))
        }
        switch response {
        case .status(let code, let extra):
            var fields = HTTPFields()
            for (name, value) in extra { if let name = HTTPField.Name(name) { fields[name] = value } }
            return Hummingbird.Response(status: .init(code: code), headers: fields)
        case .json(let text):
            return Hummingbird.Response(status: .ok, headers: [.contentType: "application/json"],
                                        body: .init(byteBuffer: ByteBuffer(string: text)))
        case .hang:
            let deadline = ContinuousClock.now + .seconds(60)
            while !state.withLock({ $0.released }), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            return Hummingbird.Response(status: .serviceUnavailable)
        }
    }
}

/// Lets the route reach the partner created after the router.
private final class PartnerBox: Sendable {
    private let value = Mutex<TestPartner?>(nil)
    var partner: TestPartner? { value.withLock { $0 } }
    func set(_ partner: TestPartner) { value.withLock { $0 = partner } }
}
