import Foundation
import RelayTestSupport
import Testing

@testable import RelayEdge

/// Loopback connections opened and held by the test, sending nothing (or only part of a request).
private struct HeldConnections {
    var sockets: [Int32] = []

    mutating func open(_ count: Int, port: Int, sending prefix: String = "") throws {
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw RawHTTP.Failure(description: "socket: errno \(errno)") }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                close(fd)
                throw RawHTTP.Failure(description: "connect: errno \(errno)")
            }
            if !prefix.isEmpty { _ = Array(prefix.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
            sockets.append(fd)
        }
    }

    /// How many of the sockets the server has closed: a read sees end of file (or a reset) within `wait`.
    func closedByServer(wait: Duration) -> Int {
        var pending = sockets
        var closed = 0
        let deadline = ContinuousClock.now + wait
        repeat {
            var fds = pending.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), 50)
            var still: [Int32] = []
            for entry in fds {
                guard entry.revents != 0 else {
                    still.append(entry.fd)
                    continue
                }
                var byte: UInt8 = 0
                let n = recv(entry.fd, &byte, 1, Int32(MSG_DONTWAIT))
                if n <= 0 { closed += 1 } else { still.append(entry.fd) }
            }
            pending = still
        } while !pending.isEmpty && ContinuousClock.now < deadline
        return closed
    }

    func closeAll() { for fd in sockets { close(fd) } }
}

@Suite("relay-edge limits: max_connections, idle_timeout, pixel back-pressure (real broker, live port)", .serialized,
       .timeLimit(.minutes(4)))
struct EdgeConnectionTests {
    @Test("300 idle connections do not stop /event answering; they are closed after idle_timeout; beyond max_connections refused")
    func idleConnections() async throws {
        // The test process holds the client end of every connection: kept well below about 1,300 descriptors,
        // where Foundation's Process.run (swift-corelibs-foundation before PR #5472) over-reads its listing of
        // /proc/self/fd and can crash the other tests as they spawn workers.
        let edge = try await RunningEdge.start(edgeSettings: "  max_connections: 400\n  idle_timeout: 45s")
        var idle = HeldConnections()
        defer { idle.closeAll() }
        try idle.open(250, port: edge.port)
        // Slowloris: a request head that never ends.
        try idle.open(50, port: edge.port, sending: "GET /event?d_uuid=1&d_rtbd=json HTTP/1.1\r\nHost: x\r\n")

        func openGauge() async throws -> Substring? {
            try await edge.http.get("/metrics").text.split(separator: "\n")
                .first { $0.hasPrefix("relay_edge_connections_open ") }
        }
        // Wait (bounded) until the edge has accepted all 300: then they are truly held. A debug build on a busy
        // machine can take seconds to accept them all, and the calls below can be slow, hence the long idle_timeout: the
        // 300 must still be held when the extra 200 arrive.
        let accepted = await eventually(timeout: .seconds(10)) {
            (try? await openGauge()) == "relay_edge_connections_open 301.0"  // the 300 and this request
        }
        let gauge = (try? await openGauge()).map(String.init) ?? "no gauge"
        #expect(accepted, "\(gauge)")

        // A bounded number of calls while the 300 are held: every one answers.
        var slowest: Duration = .zero
        for _ in 0..<20 {
            let start = ContinuousClock.now
            let response = try await edge.http.get("/event?d_uuid=\(RunningEdge.userA)&d_rtbd=json")
            slowest = max(slowest, ContinuousClock.now - start)
            #expect(response.status == 200)
            #expect(response.json["uuid"] as? String == RunningEdge.userA)
        }
        // Not a speed check (that is bench/edge.sh): an edge whose workers the idle connections held would answer
        // only once idle_timeout (45 s) freed them. A debug build under the whole suite's load took 0.9 s.
        #expect(slowest < .seconds(10), "slowest /event while 300 connections idle: \(slowest)")
        print("slowest /event of 20 with 300 idle connections held: \(slowest)")

        // Over the limit (300 held + 200 > 400): the extra ones are closed at once, well before idle_timeout.
        var extra = HeldConnections()
        defer { extra.closeAll() }
        try extra.open(200, port: edge.port)
        // Well below idle_timeout; a fully loaded machine may take seconds to accept them.
        let refused = extra.closedByServer(wait: .seconds(20))
        #expect((60...140).contains(refused), "refused \(refused) of 200, 100 of them over the limit")

        // None of the held connections completed a request: all are closed once idle_timeout has passed.
        let closed = idle.closedByServer(wait: .seconds(60))
        #expect(closed == 300, "closed \(closed) of 300 idle connections")
        let metrics = try await edge.http.get("/metrics").text
        #expect(metrics.contains("relay_edge_connections_refused_total"))
        #expect(!metrics.contains("relay_edge_connections_refused_total 0\n"))
        #expect(!metrics.contains("relay_edge_connections_timed_out_total 0\n"))
        #expect(try await edge.http.get("/event?d_uuid=1&d_rtbd=json").status == 200)
    }

    @Test("pixel events beyond the producer's places are dropped and counted; /event never waits for them")
    func pixelBackPressure() async throws {
        // librdkafka holds each record 10 s (linger) and queues at most 100: 90 places for pixel events.
        let edge = try await RunningEdge.start(
            kafkaProperties: #""linger.ms": "10000", "queue.buffering.max.messages": "100""#)
        var slowest: Duration = .zero
        var handedOut = 0
        for _ in 0..<60 {
            let start = ContinuousClock.now
            let response = try await edge.http.get("/event?d_uuid=\(RunningEdge.userA)&d_rtbd=json&d_dst=1")
            slowest = max(slowest, ContinuousClock.now - start)
            #expect(response.status == 200)
            handedOut += (response.json["dests"] as? [Any])?.count ?? 0
        }
        #expect(handedOut == 180)  // 3 dests per answer, every answer complete
        // An edge that waited for a place would wait for the 10 s linger to free one.
        #expect(slowest < .seconds(5), "slowest /event with the producer full: \(slowest)")
        let metrics = try await edge.http.get("/metrics").text
        let dropped = metrics.split(separator: "\n").first { $0.hasPrefix("relay_edge_pixel_events_dropped_total ") }
        // 180 fired events, 90 places: the events of the answers that found no place are dropped, whole answers.
        #expect(dropped == "relay_edge_pixel_events_dropped_total 90", "\(dropped ?? "none")")
        #expect(metrics.contains("relay_edge_pixel_produce_failures_total 0\n"))
    }
}
