import Foundation
import RelayKafka
import RelayEncoding
import RelayRuntime
import RelayTestSupport
import Testing

/// `relayctl status` against the real broker: every group's lag, dead letters per destination, the last batch cut,
/// the latest pixel loss report, and each missing piece said so.
@Suite("relayctl status", .serialized, .timeLimit(.minutes(3)))
struct RelayCtlStatusTests {
    func status(_ arguments: [String], in dir: TestDirectory, environment: [String: String] = [:]) async throws
        -> (status: Int32?, stdout: String, stderr: String)
    {
        let ctl = try WorkerProcess("relayctl", arguments: ["status"] + arguments, workingDirectory: dir.url,
                                    environment: environment)
        let status = await ctl.waitForExit(timeout: .seconds(90))
        return (status, ctl.output, ctl.log)
    }

    @Test("one screen: lag per group, deliveries and errors per destination, last cut, pixel loss")
    func screen() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let dir = try TestDirectory("status")
        try dir.write("relay.yaml", topics.kafkaYAML + """
            destinations:
              - {id: 5001, name: acme-dsp, kind: realtime, url: "http://127.0.0.1:1/aam", client_id: acme,
                 mappings: [{segment: 4532}]}
              - {id: 6001, name: acme-files, kind: batch, every: 1m, master_dpid: 20914, pid_alias: acme, gzip: false,
                 output: {type: dir, path: out}, mappings: [{segment: 4532}]}
              - {id: 6002, name: other-files, kind: batch, every: 1m, pid_alias: other, output: {type: dir, path: out2},
                 mappings: [{segment: 4532}]}
              - {id: 7001, name: px-partner, kind: url, url: "http://px.example/s?a=%alias%", max_loss_rate: 0.1,
                 mappings: [{segment: 4532}]}
            """)

        // 20 events on partition 0, 10 on partition 1; group g has committed 10 on partition 0 only: lag 20.
        let group = TestBroker.uniqueName("status-group")
        let events = (0..<30).map { index in
            OutgoingRecord(topic: topics.qualifications, key: Array("u\(index)".utf8),
                           value: Array(#"{"event_id":"e\#(index)","uuid":"u\#(index)","ts":1,"segments":[]}"#.utf8),
                           partition: index < 20 ? 0 : 1)
        }
        try await TestBroker.produce(events)
        let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
        try await admin.resetOffsets(group: group, to: [TopicPartition(topics.qualifications, 0): 10])

        // Dead letters: one exhausted message of 5001, one malformed event.
        let exhausted = DeadLetter(key: nil, value: Array("{}".utf8), error: "HTTP 503 after 8 attempts",
                                   errorClass: .exhausted, source: "\(topics.qualifications)/0/3", worker: "w1",
                                   destination: 5001, attempts: 8)
        let malformed = DeadLetter(key: nil, value: Array("nope".utf8), error: "not JSON", errorClass: .malformed,
                                   source: "\(topics.qualifications)/1/4", worker: "w1")
        try await TestBroker.produce([exhausted, malformed].map {
            OutgoingRecord(topic: topics.deadLetter, key: $0.key, value: $0.value, headers: $0.headers)
        })

        // Pixel audit: one window of 7001, reported and then corrected (the correction replaces it); a partition's
        // share, which does not belong on this topic, is not added in.
        func audit(_ partition: Int?, fired: Int, received: Int) -> OutgoingRecord {
            let lost = fired - received
            let json = #"{"destination_id":7001,"window_start":1795982400000,"window_end":1795983000000,"fired":\#(fired),"#
                + #""received":\#(received),"lost":\#(lost),"loss_rate":\#(Double(lost) / Double(fired)),"#
                + #""late_receipts":0,"duplicate_receipts":0,"unmatched_receipts":0,"alert":false"#
                + (partition.map { #","partition":\#($0)}"# } ?? "}")
            return OutgoingRecord(topic: topics.pixelAudit, key: Array("7001".utf8), value: Array(json.utf8))
        }
        try await TestBroker.produce([audit(nil, fired: 100, received: 80), audit(nil, fired: 100, received: 85),
                                      audit(3, fired: 40, received: 35)])

        // Batch: destination 6001 completed the cut 1795982400000 (its completion in <group>.cuts, its .info in the
        // dir output); 6002 has none.
        let cut: Int64 = 1_795_982_400_000
        let batchGroup = TestBroker.uniqueName("status-batch")
        let cutsTopic = "\(batchGroup).cuts"
        _ = try await admin.createTopics([cutsTopic], partitions: 1)
        let infoName = "dir_6001_20914_acme_iter_\(cut).info"
        try await TestBroker.produce([OutgoingRecord(
            topic: cutsTopic, key: Array("info/6001/\(cut)".utf8),
            value: Array(#"{"destination":6001,"cut":\#(cut),"file":"\#(infoName)"}"#.utf8), partition: 0)])
        try FileManager.default.createDirectory(atPath: dir.path("out"), withIntermediateDirectories: true)
        try dir.write("out/\(infoName)", """
            {"Files":[],"Totals":{"TotalByteSize":1234,"TotalNumberFiles":2,"TotalNumberLines":42}}
            """)

        let port = freePort()
        let result = try await status(["--metrics", "http://127.0.0.1:\(port)/metrics", "--batch-group", batchGroup],
                                      in: dir)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let groupLine = try #require(lines.first { $0.contains(group) }, "\(result.stdout)")
        #expect(groupLine.contains(topics.qualifications))
        #expect(groupLine.hasSuffix(" 20"), "\(groupLine)")
        for expected in ["relay-realtime", "relay-batch", "relay-pixel-audit"] {
            let line = lines.first { $0.contains(expected) && $0.contains("no commits yet") }
            #expect(line != nil, "\(expected) missing in\n\(result.stdout)")
        }
        #expect(result.stdout.contains("errors: 1 dead letters (1 exhausted)"), "\(result.stdout)")
        #expect(result.stdout.contains("dead letters: 2 in total, 1 malformed events"), "\(result.stdout)")
        #expect(result.stdout.contains("last cut: \(Timestamps.iso8601(milliseconds: cut)) (dir output): 2 files, "
                                       + "42 lines, 1234 bytes"), "\(result.stdout)")
        #expect(result.stdout.contains("no batch cut yet"), "\(result.stdout)")
        #expect(result.stdout.contains("pixel loss 15.0% (fired 100, received 85, lost 15)"), "\(result.stdout)")
        #expect(result.stdout.contains("ALERT"), "15% is above the destination's 10%: \(result.stdout)")
        #expect(result.stdout.contains("deliveries: no metrics from relay-realtime"), "\(result.stdout)")
        #expect(result.stdout.contains("metrics not reachable"), "\(result.stdout)")
    }

    @Test("an unreachable cluster is a clear error and a non-zero exit")
    func unreachable() async throws {
        let dir = try TestDirectory("status")
        try dir.write("relay.yaml", "kafka: {brokers: 127.0.0.1:1}\ndestinations: []\n")
        let result = try await status([], in: dir, environment: ["RELAY_BROKERS": "127.0.0.1:1"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cannot reach"), "\(result.stderr)")
    }
}
