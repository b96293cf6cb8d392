import Foundation
import RelayEncoding
import RelayKafka
import RelayTestSupport
import Testing

/// SPEC §4: a partner that is slow or down delays no other partner.
@Suite("relay-realtime partner isolation", .serialized, .timeLimit(.minutes(8)))
struct RealtimeIsolationTests {
    @Test("a partner answering 503 for minutes is parked; the healthy one gets every user; SIGTERM ends within grace")
    func sickPartnerIsParked() async throws {
        let setup = try await RealtimeDeliveryTests.Setup(partitions: 4) { partner in
            RealtimeDeliveryTests.destination(6001, partner, path: "/sick", maxUsers: 1)
                + RealtimeDeliveryTests.destination(6002, partner, path: "/ok", maxUsers: 1, timeoutMs: 20_000)
        }
        defer { Task { await setup.partner.stop() } }
        setup.partner.setDefault("/sick", .status(503))
        let (worker, port) = try await setup.start()
        defer { Task { await worker.stop() } }

        // The healthy partner has a long time-out: on a fully loaded machine a test partner can take seconds to answer,
        // and five time-outs in a row would open its breaker and park it too.
        // One user per message: 10,000 messages for each partner, far past the sick one's queue bound (4,096).
        let uuids = (0..<10_000).map { "7\($0)" }
        try await setup.produce(uuids.map { RealtimeDeliveryTests.event($0) })
        let all = Set(uuids)
        let delivered = await eventually(timeout: .seconds(300), every: .milliseconds(250)) {
            Set(RealtimeDeliveryTests.uuids(setup.partner.delivered("/ok"))).isSuperset(of: all)
        }
        #expect(delivered, "healthy partner got \(Set(RealtimeDeliveryTests.uuids(setup.partner.delivered("/ok"))).count) of 10,000")
        let parked = await RealtimeDeliveryTests.metric(port, "relay_realtime_parked_total", destination: 6001) ?? 0
        #expect(parked > 0, "the sick partner's backlog was parked")
        #expect(setup.partner.delivered("/sick").isEmpty)

        // Shutdown while the sick partner is still being retried: within the drain grace (20 s) and then some.
        let stopping = ContinuousClock.now
        worker.terminate()
        let status = await worker.waitForExit(timeout: .seconds(45))
        #expect(status == 0, "exit status \(String(describing: status)) after \(ContinuousClock.now - stopping)")

        // Parked messages are on the dead-letter topic with their reason, ready for redrive.
        let letters = try await setup.deadLetters()
        let parkedLetters = letters.filter { $0.header("relay.error")?.stringValue.contains("parked") == true }
        #expect(!parkedLetters.isEmpty)
        #expect(parkedLetters.allSatisfy { $0.header("relay.destination")?.stringValue == "6001" })
    }

    @Test("while a partner answers 503, the healthy one's p99 from event to 2xx stays within two flush intervals")
    func healthyPartnerKeepsItsLatency() async throws {
        let setup = try await RealtimeDeliveryTests.Setup(partitions: 4) { partner in
            RealtimeDeliveryTests.destination(6001, partner, path: "/sick", flushMs: 1_000)
                + RealtimeDeliveryTests.destination(6002, partner, path: "/ok", flushMs: 1_000, timeoutMs: 20_000)
        }
        defer { Task { await setup.partner.stop() } }
        setup.partner.setDefault("/sick", .status(503))
        let (worker, port) = try await setup.start()
        defer { Task { await worker.stop() } }

        // 10,000 events at a steady 1,000 a second, each stamped with the moment it is produced.
        let uuids = (0..<10_000).map { "8\($0)" }
        let start = ContinuousClock.now
        for (step, batch) in stride(from: 0, to: uuids.count, by: 250).map({ uuids[$0..<$0 + 250] }).enumerated() {
            let now = Timestamps.nowMilliseconds()
            try await setup.produce(batch.map { RealtimeDeliveryTests.event($0, ts: now) })
            try? await Task.sleep(until: start + .milliseconds(250 * (step + 1)))
        }
        let all = Set(uuids)
        let delivered = await eventually(timeout: .seconds(120), every: .milliseconds(250)) {
            Set(RealtimeDeliveryTests.uuids(setup.partner.delivered("/ok"))).isSuperset(of: all)
        }
        #expect(delivered)
        #expect(setup.partner.delivered("/sick").isEmpty)

        // The worker's histogram of event → partner 2xx for the healthy destination: 99 % within 2 s.
        let (count, withinTwoSeconds) = try await Self.latency(port: port, destination: 6002, within: 2)
        #expect(count >= 10_000)
        #expect(Double(withinTwoSeconds) >= 0.99 * Double(count), "\(withinTwoSeconds) of \(count) within 2 s")
        let (_, withinHalfSecond) = try await Self.latency(port: port, destination: 6002, within: 0.5)
        print("healthy partner beside a 503 one: of \(count) users, \(withinHalfSecond) within 0.5 s of their event,"
            + " \(withinTwoSeconds) within 2 s")

        let stopping = ContinuousClock.now
        worker.terminate()
        let status = await worker.waitForExit(timeout: .seconds(45))
        #expect(status == 0, "exit status \(String(describing: status)) after \(ContinuousClock.now - stopping)")
    }

    /// `relay_realtime_latency_seconds` of one destination: the observations, and those at most `within` seconds.
    static func latency(port: Int, destination: Int, within: Double) async throws -> (Int, Int) {
        let (_, text) = try await HTTPGet.fetch("http://127.0.0.1:\(port)/metrics")
        var count = 0
        var below = 0
        for line in text.split(separator: "\n") where line.contains("destination=\"\(destination)\"") {
            let value = Int(Double(line.split(separator: " ").last ?? "") ?? 0)
            if line.hasPrefix("relay_realtime_latency_seconds_count") { count = value }
            if line.hasPrefix("relay_realtime_latency_seconds_bucket"),
               let le = line.split(separator: "le=\"").last?.split(separator: "\"").first,
               Double(le) == within
            {
                below = value
            }
        }
        return (count, below)
    }
}
