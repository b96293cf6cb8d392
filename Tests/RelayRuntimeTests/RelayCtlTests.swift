import Foundation
import RelayKafka
import RelayTestSupport
import Testing

/// relayctl as an operator runs it: exit codes and messages, against the real broker.
@Suite("relayctl", .serialized, .timeLimit(.minutes(3)))
struct RelayCtlTests {
    func run(_ arguments: [String], in dir: TestDirectory, environment: [String: String] = [:]) async throws
        -> (status: Int32?, stdout: String, stderr: String)
    {
        let ctl = try WorkerProcess("relayctl", arguments: arguments, workingDirectory: dir.url, environment: environment)
        let status = await ctl.waitForExit(timeout: .seconds(90))
        return (status, ctl.output, ctl.log)
    }

    @Test("validate: OK for a valid file, every problem with its path and a non-zero exit otherwise")
    func validate() async throws {
        let dir = try TestDirectory("ctl")
        try dir.write("good.yaml", """
            kafka: {brokers: 127.0.0.1:9092}
            destinations:
              - {id: 8001, name: ads, kind: cookie, cookie_name: seg, key: segID, format: single_key, mappings: [{segment: 1}]}
            """)
        let good = try await run(["validate", "--config", dir.path("good.yaml")], in: dir)
        #expect(good.status == 0)
        #expect(good.stdout.contains("OK"))

        try dir.write("bad.yaml", """
            kafka: {brokers: 127.0.0.1:9092}
            destinations:
              - {id: 5001, name: a, kind: realtime, url: "ftp://x", client_id: c, mappings: [{segment: 1}]}
              - {id: 5001, name: b, kind: teleport, mappings: []}
            """)
        let bad = try await run(["validate", "--config", dir.path("bad.yaml")], in: dir)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("destinations[0].url"), "\(bad.stderr)")
        #expect(bad.stderr.contains("destinations[1].kind"), "\(bad.stderr)")
        #expect(bad.stderr.contains("destinations[1].id"), "\(bad.stderr)")

        // Every executable refuses an invalid file with the same report.
        let worker = try WorkerProcess("relay-check", arguments: ["--config", dir.path("bad.yaml")],
                                       workingDirectory: dir.url)
        #expect(await worker.waitForExit() == 2)
        #expect(worker.log.contains("destinations[0].url"))

        // A configured topic may not be a stateful worker's internal topic.
        try dir.write("clash.yaml", """
            kafka: {brokers: 127.0.0.1:9092, topics: {dead_letter: relay-batch.cuts}}
            destinations:
              - {id: 6001, name: f, kind: batch, pid_alias: f, output: {type: dir, path: out}, mappings: [{segment: 1}]}
            """)
        let clash = try await run(["validate", "--config", dir.path("clash.yaml")], in: dir)
        #expect(clash.status != 0)
        #expect(clash.stderr.contains("relay-batch.cuts is an internal topic"), "\(clash.stderr)")

        let missing = try await run(["validate", "--config", dir.path("nope.yaml")], in: dir)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nope.yaml"))
    }

    @Test("topics create makes the four topics and the stateful workers' internal ones once; produce --sample and --file; lag; dead-letter list")
    func topicsProduceLag() async throws {
        let dir = try TestDirectory("ctl")
        let prefix = TestBroker.uniqueName("ctl")
        try dir.write("relay.yaml", """
            kafka:
              brokers: \(TestBroker.brokers)
              topics: {qualifications: \(prefix).q, pixel_events: \(prefix).pe, pixel_audit: \(prefix).pa, dead_letter: \(prefix).dl}
            destinations: []
            """)
        // The four topics of SPEC §1 and the two internal topics of each stateful worker's group.
        let group = ["--pixel-audit-group", "\(prefix)-audit", "--batch-group", "\(prefix)-batch"]
        let created = try await run(["topics", "create", "--partitions", "3"] + group, in: dir)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.components(separatedBy: "created").count - 1 == 8, "\(created.stdout)")
        for topic in ["audit.state", "audit.shares", "batch.state", "batch.cuts"] {
            #expect(created.stdout.contains("\(prefix)-\(topic): created (3 partitions)"), "\(created.stdout)")
        }
        let again = try await run(["topics", "create", "--partitions", "5"] + group, in: dir)
        #expect(again.stdout.components(separatedBy: "exists (3 partitions)").count - 1 == 8, "\(again.stdout)")

        let sample = try await run(["produce", "--sample", "250"], in: dir)
        #expect(sample.status == 0, "\(sample.stderr)")
        #expect(try await TestBroker.readAll("\(prefix).q").count == 250)

        try dir.write("events.jsonl", """
            {"event_id":"f1","uuid":"u1","ts":1,"segments":[{"id":1,"status":1}]}
            not an event

            """)
        let file = try await run(["produce", "--file", "events.jsonl"], in: dir)
        #expect(file.status == 0, "\(file.stderr)")
        #expect(file.stdout.contains("produced 2 events"))
        #expect(file.stdout.contains("1 not valid"))
        #expect(try await TestBroker.readAll("\(prefix).q").count == 252)

        let lag = try await run(["lag", "--group", "nobody-\(prefix)"], in: dir)
        #expect(lag.status == 0, "\(lag.stderr)")
        #expect(lag.stdout.contains("total lag nobody-\(prefix): 252"), "\(lag.stdout)")

        let letters = try await run(["dead-letter", "list"], in: dir)
        #expect(letters.status == 0, "\(letters.stderr)")
        #expect(letters.stdout.contains("no dead letters"))
    }

    @Test("clear errors: missing topic, unreachable broker, bad arguments")
    func clearErrors() async throws {
        let dir = try TestDirectory("ctl")
        try dir.write("relay.yaml", """
            kafka: {brokers: \(TestBroker.brokers), topics: {qualifications: \(TestBroker.uniqueName("missing"))}}
            destinations: []
            """)
        let missing = try await run(["produce", "--sample", "1"], in: dir)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("does not exist"), "\(missing.stderr)")

        let unreachable = try await run(["produce", "--sample", "1"], in: dir,
                                        environment: ["RELAY_BROKERS": "127.0.0.1:1"])
        #expect(unreachable.status != 0)
        #expect(unreachable.stderr.contains("cannot reach"), "\(unreachable.stderr)")

        let both = try await run(["produce", "--sample", "1", "--file", "x"], in: dir)
        #expect(both.status != 0)
        #expect(both.stderr.contains("exactly one of"))
        let badOffset = try await run(["replay", "--group", "g", "--to-offset", "zero"], in: dir)
        #expect(badOffset.status != 0)
        #expect(badOffset.stderr.contains("PARTITION:OFFSET"))
    }
}
