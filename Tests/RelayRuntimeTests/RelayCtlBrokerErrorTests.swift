import Foundation
import RelayTestSupport
import Testing

/// relayctl when the cluster is not there or not willing: one short line naming the brokers and the cause.
@Suite("relayctl broker errors", .serialized, .timeLimit(.minutes(2)))
struct RelayCtlBrokerErrorTests {
    func run(_ arguments: [String], in dir: TestDirectory, environment: [String: String] = [:]) async throws
        -> (status: Int32?, stdout: String, stderr: String, elapsed: Duration)
    {
        let start = ContinuousClock.now
        let ctl = try WorkerProcess("relayctl", arguments: arguments, workingDirectory: dir.url, environment: environment)
        let status = await ctl.waitForExit(timeout: .seconds(30))
        if status == nil { ctl.kill() }
        return (status, ctl.output, ctl.log, ContinuousClock.now - start)
    }

    static let dead = ["RELAY_BROKERS": "127.0.0.1:1"]

    @Test("topics create against a dead broker: under 2 KB, within 10 s, one line with the broker and the cause")
    func deadBroker() async throws {
        let dir = try TestDirectory("ctl-errors")
        try dir.write("relay.yaml", "kafka: {brokers: 127.0.0.1:1}\ndestinations: []\n")
        let result = try await run(["topics", "create"], in: dir, environment: Self.dead)
        #expect(result.status == 1)
        #expect(result.elapsed < .seconds(10), "took \(result.elapsed)")
        let output = result.stdout + result.stderr
        #expect(output.utf8.count < 2_048, "\(output.utf8.count) bytes:\n\(output.prefix(500))")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("cannot reach the brokers at 127.0.0.1:1") == true)
        #expect(lines.first?.contains("Connection refused") == true, "\(lines)")
        #expect(!output.contains("librdkafka"))
        print("relayctl topics create, dead broker: \(output.utf8.count) bytes in \(result.elapsed)")

        // The same failure, every other broker command: the same one line.
        for command in [["lag"], ["status"], ["dead-letter", "list"], ["produce", "--sample", "1"]] {
            let other = try await run(command, in: dir, environment: Self.dead)
            #expect(other.status != 0)
            #expect(other.elapsed < .seconds(10), "\(command): took \(other.elapsed)")
            #expect(other.stderr.contains("cannot reach the brokers at 127.0.0.1:1"), "\(command): \(other.stderr)")
            #expect(other.stderr.utf8.count < 2_048, "\(command): \(other.stderr.utf8.count) bytes")
        }
    }

    @Test("librdkafka's own lines only at --log-level debug")
    func debugLines() async throws {
        let dir = try TestDirectory("ctl-errors")
        try dir.write("relay.yaml", "kafka: {brokers: 127.0.0.1:1}\ndestinations: []\n")
        let result = try await run(["topics", "create", "--log-level", "debug"], in: dir, environment: Self.dead)
        #expect(result.status == 1)
        #expect(result.stderr.contains("librdkafka"))
        #expect(result.stderr.contains("cannot reach the brokers at 127.0.0.1:1"))
    }

    @Test("a broker that refuses the client's SASL handshake: one line with the broker and the cause, at once")
    func refusedAuthentication() async throws {
        let dir = try TestDirectory("ctl-errors")
        try dir.write("relay.yaml", """
            kafka:
              brokers: \(TestBroker.brokers)
              properties: {security.protocol: SASL_PLAINTEXT, sasl.mechanism: PLAIN, sasl.username: relay, sasl.password_env: CTL_TEST_PASSWORD}
            destinations: []
            """)
        let result = try await run(["topics", "create"], in: dir, environment: ["CTL_TEST_PASSWORD": "not-the-password"])
        #expect(result.status == 1)
        #expect(result.elapsed < .seconds(10), "took \(result.elapsed)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.contains("cannot reach the brokers at \(TestBroker.brokers)") == true, "\(lines)")
        #expect(lines.first?.contains("SASL") == true, "\(lines)")
        #expect(!result.stderr.contains("not-the-password"))
    }

    @Test("a missing topic on a live broker is named, in one line")
    func missingTopic() async throws {
        let dir = try TestDirectory("ctl-errors")
        let topic = TestBroker.uniqueName("absent")
        try dir.write("relay.yaml", "kafka: {brokers: \(TestBroker.brokers), topics: {dead_letter: \(topic)}}\ndestinations: []\n")
        let result = try await run(["dead-letter", "list"], in: dir)
        #expect(result.status != 0)
        #expect(result.stderr.contains("topic \(topic) does not exist"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }
}
