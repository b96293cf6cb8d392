import Foundation
import RelayCore
import RelayTestSupport
import Testing
@testable import RelayRealtime

/// The partner connections against a real HTTP server on loopback: what goes on the wire, keep-alive, time-outs and
/// connection failures, as relay-realtime's delivery classifies them.
@Suite("Partner connections")
struct PartnerConnectionTests {
    /// A sender for one realtime destination posting to `url`, signing with sha256.
    static func sender(url: String, timeoutMs: Int = 3_000) throws -> PartnerSender {
        let yaml = """
            kafka: {brokers: "127.0.0.1:1"}
            destinations:
              - id: 5001
                name: partner
                kind: realtime
                url: "\(url)"
                client_id: acme
                timeout_ms: \(timeoutMs)
                signing: {algorithm: sha256, header: X-Signature, key_env: PARTNER_KEY}
                mappings: [{segment: 4532, alias: a}]
            """
        let environment = ["PARTNER_KEY": "secret"]
        let config = try RelayConfig.parse(yaml: yaml, environment: environment)
        let (destination, settings) = try #require(config.realtimeDestinations.first)
        return try PartnerSender(destination: destination, settings: settings, client: .shared,
                                 environment: environment)
    }

    @Test("each request whole on the wire, answers read, one connection kept for sequential requests")
    func requestsOnOneKeptConnection() async throws {
        let partner = try await TestPartner.start()
        defer { Task { await partner.stop() } }
        let sender = try Self.sender(url: partner.url("/push?x=1"))
        // Connections are kept per event loop: the lanes of a destination pin theirs to one.
        let loop = EventLoopTaskExecutor.shared[0].loop
        for index in 0..<20 {
            let body = Array("{\"n\":\(index)}".utf8)
            let result = await sender.send(sender.prepare(body: body, messageID: "m\(index)"), on: loop)
            #expect(result == .delivered(status: 200))
        }
        let requests = partner.requests("/push")
        #expect(requests.count == 20)
        #expect(requests.map(\.bodyText) == (0..<20).map { "{\"n\":\($0)}" })
        #expect(requests.map { $0.header("X-Relay-Message-Id") } == (0..<20).map { "m\($0)" })
        let first = try #require(requests.first)
        #expect(first.header("Host") == "127.0.0.1:\(partner.port)")
        #expect(first.header("Content-Length") == "7")
        #expect(first.header("Content-Type") == "application/json")
        #expect(first.header("X-Signature")?.isEmpty == false)
        #expect(sender.connections.connectionCount == 1)
        await sender.shutdown()
        #expect(sender.connections.connectionCount == 0)
    }

    @Test("status and Retry-After classified; a 3xx is an answer, not followed")
    func answersAreClassified() async throws {
        let partner = try await TestPartner.start()
        defer { Task { await partner.stop() } }
        partner.script("/p", [.status(429, headers: ["Retry-After": "2"]), .status(400),
                              .status(302, headers: ["Location": partner.url("/elsewhere")]), .status(503)])
        let sender = try Self.sender(url: partner.url("/p"))
        let prepared = sender.prepare(body: Array("{}".utf8), messageID: "m")
        #expect(await sender.send(prepared) == .retryable(reason: "HTTP 429", retryAfter: .seconds(2)))
        #expect(await sender.send(prepared) == .rejected(status: 400, reason: "HTTP 400"))
        #expect(await sender.send(prepared) == .rejected(status: 302, reason: "HTTP 302"))
        #expect(await sender.send(prepared) == .retryable(reason: "HTTP 503", retryAfter: nil))
        #expect(await sender.send(prepared) == .delivered(status: 200))
        #expect(partner.requests("/elsewhere").isEmpty)
        await sender.shutdown()
    }

    @Test("a partner that does not answer in time: timed out, the connection dropped, the next request answered")
    func timeOut() async throws {
        let partner = try await TestPartner.start()
        defer { Task { await partner.stop() } }
        partner.script("/slow", [.hang])
        // Long enough for the second, answered request on a machine busy with the rest of the suite.
        let sender = try Self.sender(url: partner.url("/slow"), timeoutMs: 2_000)
        let prepared = sender.prepare(body: Array("{}".utf8), messageID: "m")
        let started = ContinuousClock.now
        let first = await sender.send(prepared)
        #expect(first == .retryable(reason: "timed out after 2000 ms", retryAfter: nil), "\(first)")
        #expect(ContinuousClock.now - started < .seconds(10))
        let second = await sender.send(prepared)
        #expect(second == .delivered(status: 200), "\(second)")
        #expect(partner.requests("/slow").count == 2)
        await sender.shutdown()
    }

    @Test("nothing listening: a connection error, at once")
    func nothingListening() async throws {
        let gone = try await TestPartner.start()
        let port = gone.port
        await gone.stop()
        let sender = try Self.sender(url: "http://127.0.0.1:\(port)/p", timeoutMs: 2_000)
        let result = await sender.send(sender.prepare(body: Array("{}".utf8), messageID: "m"))
        guard case .retryable(let reason, nil) = result else {
            Issue.record("expected a retryable connection error, got \(result)")
            return
        }
        #expect(reason.hasPrefix("connection error: "))
        await sender.shutdown()
    }

    @Test("a partner gone between two requests: the kept connection is replaced, the request answered once")
    func keptConnectionClosedByThePartner() async throws {
        let partner = try await TestPartner.start()
        let sender = try Self.sender(url: partner.url("/p"))
        let prepared = sender.prepare(body: Array("{}".utf8), messageID: "m")
        #expect(await sender.send(prepared) == .delivered(status: 200))
        await partner.stop()  // closes the kept connection
        let again = try await TestPartner.start(port: partner.port)
        defer { Task { await again.stop() } }
        #expect(await sender.send(prepared) == .delivered(status: 200))
        #expect(again.requests("/p").count == 1)
        await sender.shutdown()
    }
}
