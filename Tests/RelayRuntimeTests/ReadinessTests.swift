import Foundation
import RelayTestSupport
import Testing

@testable import RelayRuntime

@Suite("Readiness means working; liveness means progress", .serialized, .timeLimit(.minutes(2)))
struct ReadinessTests {
    @Test("a worker pointed at a dead broker (127.0.0.1:1) stays not ready, and live")
    func deadBroker() async throws {
        let dir = try TestDirectory("readiness")
        let config = try dir.write("relay.yaml", """
            kafka:
              brokers: 127.0.0.1:1
              properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}
            destinations: []

            """).path
        let port = freePort()
        let worker = try WorkerProcess("relay-check", arguments: [
            "--config", config, "--metrics-port", "\(port)", "--output", dir.path("out.jsonl"),
        ], workingDirectory: dir.url, environment: ["RELAY_BROKERS": "127.0.0.1:1"])
        defer { worker.kill() }
        // Long enough for a group join on a live broker (about 3 s here): a bounded number of probes.
        var answers: [Int] = []
        for _ in 0..<16 {
            try await Task.sleep(for: .milliseconds(500))
            if let (status, _) = try? await HTTPGet.fetch("http://127.0.0.1:\(port)/health/ready") { answers.append(status) }
        }
        #expect(worker.isRunning)
        #expect(answers.count >= 10, "the operations endpoint answered \(answers.count) of 16 probes")
        #expect(answers.allSatisfy { $0 == 503 }, "\(answers)")
        let live = try await HTTPGet.fetch("http://127.0.0.1:\(port)/health/live")
        #expect(live.0 == 200)
    }

    @Test("the same worker on the live broker becomes ready once the group assigned it partitions")
    func liveBroker() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let dir = try TestDirectory("readiness")
        let config = try dir.write("relay.yaml", topics.kafkaYAML + "destinations: []\n").path
        let port = freePort()
        let worker = try WorkerProcess("relay-check", arguments: [
            "--config", config, "--group", TestBroker.uniqueName("ready"), "--metrics-port", "\(port)",
            "--output", dir.path("out.jsonl"),
        ], workingDirectory: dir.url)
        defer { worker.kill() }
        try await worker.waitForHTTP(port: port, timeout: .seconds(30))
        #expect(worker.log.contains("partitions assigned"))
    }

    @Test("liveness: false only while a batch has been held past the stall limit")
    func stall() {
        let readiness = Readiness(stallLimit: .seconds(10))
        let now = Readiness.monotonicNanoseconds()
        #expect(readiness.isLive(now: now))
        readiness.workStarted()
        #expect(readiness.isLive(now: now + 9_000_000_000))
        #expect(!readiness.isLive(now: now + 11_000_000_000))
        readiness.workFinished()
        #expect(readiness.isLive(now: now + 11_000_000_000))
        // An absurd limit saturates instead of trapping.
        let forever = Readiness(stallLimit: .seconds(Int64.max))
        forever.workStarted()
        #expect(forever.isLive(now: Int64.max))
    }
}
