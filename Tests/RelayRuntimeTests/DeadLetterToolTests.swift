import Foundation
import RelayEncoding
import RelayKafka
import RelayEncoding
import RelayRuntime
import RelayTestSupport
import Testing

/// `relayctl dead-letter list|show|redrive` as an operator runs them, on the real broker and a real partner on
/// loopback.
@Suite("relayctl dead-letter", .serialized, .timeLimit(.minutes(4)))
struct DeadLetterToolTests {
    func relayctl(_ arguments: [String], in dir: TestDirectory, environment: [String: String] = [:]) async throws
        -> (status: Int32?, stdout: String, stderr: String)
    {
        let ctl = try WorkerProcess("relayctl", arguments: arguments, workingDirectory: dir.url,
                                    environment: environment)
        let status = await ctl.waitForExit(timeout: .seconds(120))
        return (status, ctl.output, ctl.log)
    }

    func letter(destination: Int?, _ errorClass: DeadLetterClass, body: [UInt8], messageID: String? = nil,
                source: String) -> DeadLetter
    {
        DeadLetter(key: Array("u-\(source)".utf8), value: body, error: "test \(errorClass.rawValue)",
                   errorClass: errorClass, source: source, worker: "test-worker", destination: destination,
                   attempts: 3, extraHeaders: messageID.map { [KafkaHeader("relay.message_id", $0)] } ?? [])
    }

    func record(_ letter: DeadLetter, topic: String, timestamp: Int64) -> OutgoingRecord {
        OutgoingRecord(topic: topic, key: letter.key, value: letter.value, headers: letter.headers, partition: 0,
                       timestamp: timestamp)
    }

    /// Positions, in order of appearance, of `topic`'s letters in `text`.
    func positions(_ text: String, topic: String) -> [String] {
        text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\"" })
            .map(String.init).filter { $0.hasPrefix("\(topic)/0/") }
    }

    @Test("list: newest first, filters by destination, class and time, --limit, JSON lines, gzip bodies shortened; show: one whole")
    func listAndShow() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let dir = try TestDirectory("dl-list")
        try dir.write("relay.yaml", topics.kafkaYAML + "destinations: []\n")
        let t0: Int64 = 1_795_982_000_000
        let longText = "{\"users\":[" + String(repeating: "\"abcdefghij\",", count: 40) + "\"end\"]}"
        let gzipped = try Gzip.compress(Array(longText.utf8))
        let dl = topics.deadLetter
        try await TestBroker.produce([
            record(letter(destination: 5001, .rejected, body: Array("{\"a\":1}".utf8), source: "q/0/1"), topic: dl,
                   timestamp: t0 + 1_000),
            record(letter(destination: 5001, .exhausted, body: gzipped, source: "q/0/2"), topic: dl,
                   timestamp: t0 + 2_000),
            record(letter(destination: 5002, .exhausted, body: Array("{\"c\":3}".utf8), source: "q/1/3"), topic: dl,
                   timestamp: t0 + 3_000),
            record(letter(destination: nil, .malformed, body: Array("nope".utf8), source: "q/1/4"), topic: dl,
                   timestamp: t0 + 4_000),
            OutgoingRecord(topic: dl, key: nil, value: Array("stray".utf8), partition: 0, timestamp: t0 + 5_000),
        ])

        let all = try await relayctl(["dead-letter", "list"], in: dir)
        #expect(all.status == 0, "\(all.stderr)")
        #expect(positions(all.stdout, topic: dl) == (0..<5).reversed().map { "\(dl)/0/\($0)" }, "\(all.stdout)")
        #expect(all.stdout.contains("5 of 5 matching"), "\(all.stdout)")

        let acme = try await relayctl(["dead-letter", "list", "--destination", "5001"], in: dir)
        #expect(acme.status == 0, "\(acme.stderr)")
        #expect(positions(acme.stdout, topic: dl) == ["\(dl)/0/1", "\(dl)/0/0"], "\(acme.stdout)")
        // The gzip body is decoded and shortened: its start is readable, its end is cut.
        #expect(acme.stdout.contains("(gzip, \(longText.utf8.count) bytes) {\"users\":[\"abcdefghij\""), "\(acme.stdout)")
        #expect(acme.stdout.contains("…"))
        #expect(!acme.stdout.contains("\"end\""))

        let exhausted = try await relayctl(["dead-letter", "list", "--class", "exhausted", "--json"], in: dir)
        #expect(exhausted.status == 0, "\(exhausted.stderr)")
        let objects = try exhausted.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(objects.map { $0["class"] as? String } == ["exhausted", "exhausted"])
        #expect(objects.map { $0["destination"] as? Int } == [5002, 5001])
        #expect(objects.last?["body_gzip"] as? Bool == true)
        #expect(objects.last?["body_bytes"] as? Int == longText.utf8.count)
        #expect(objects.last?["source"] as? String == "q/0/2")

        let window = try await relayctl(["dead-letter", "list", "--since", String(t0 + 2_500),
                                         "--until", Timestamps.iso8601(milliseconds: t0 + 4_500)], in: dir)
        #expect(window.status == 0, "\(window.stderr)")
        #expect(positions(window.stdout, topic: dl) == ["\(dl)/0/3", "\(dl)/0/2"], "\(window.stdout)")

        let newest = try await relayctl(["dead-letter", "list", "--limit", "2"], in: dir)
        #expect(positions(newest.stdout, topic: dl) == ["\(dl)/0/4", "\(dl)/0/3"], "\(newest.stdout)")

        let none = try await relayctl(["dead-letter", "list", "--destination", "9999"], in: dir)
        #expect(none.status == 0)
        #expect(none.stdout.contains("no dead letters"), "\(none.stdout)")

        let show = try await relayctl(["dead-letter", "show", "\(dl)/0/1"], in: dir)
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains(longText), "the whole body, decoded: \(show.stdout)")
        #expect(show.stdout.contains("relay.error.class: exhausted"))
        #expect(show.stdout.contains("relay.source: q/0/2"))

        let past = try await relayctl(["dead-letter", "show", "\(dl)/0/99"], in: dir)
        #expect(past.status != 0)
        #expect(past.stderr.contains("no record at"), "\(past.stderr)")
        let malformed = try await relayctl(["dead-letter", "show", "nonsense"], in: dir)
        #expect(malformed.status != 0)
        #expect(malformed.stderr.contains("topic/partition/offset"), "\(malformed.stderr)")
        let badClass = try await relayctl(["dead-letter", "list", "--class", "lost"], in: dir)
        #expect(badClass.status != 0)
    }

    @Test("redrive: dry run sends nothing; a run delivers and keeps failures as new letters; the next sends only those, then nothing")
    func redriveRemembers() async throws {
        let partner = try await TestPartner.start()
        defer { Task { await partner.stop() } }
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let dir = try TestDirectory("dl-redrive")
        try dir.write("relay.yaml", topics.kafkaYAML + """
            destinations:
              # One attempt per letter: a loaded machine's slow answer must not read as a partner failure.
              - {id: 5001, name: acme-dsp, kind: realtime, url: "\(partner.url("/aam"))", client_id: acme,
                 timeout_ms: 20000, retry: {max_attempts: 1},
                 signing: {algorithm: sha256, header: X-Signature, key_env: DL_TEST_KEY},
                 mappings: [{segment: 4532}]}
              - {id: 5002, name: other, kind: realtime, url: "\(partner.url("/other"))", client_id: other,
                 mappings: [{segment: 4532}]}
            """)
        let environment = ["DL_TEST_KEY": "secret-key"]
        let dl = topics.deadLetter
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let bodies = (1...3).map { "{\"message\":\($0)}" }
        try await TestBroker.produce([
            record(letter(destination: 5001, .exhausted, body: Array(bodies[0].utf8), messageID: "m1", source: "q/0/1"),
                   topic: dl, timestamp: now),
            record(letter(destination: 5002, .exhausted, body: Array("{}".utf8), messageID: "o1", source: "q/0/2"),
                   topic: dl, timestamp: now),
            record(letter(destination: 5001, .rejected, body: Array(bodies[1].utf8), messageID: "m2", source: "q/0/3"),
                   topic: dl, timestamp: now),
            record(letter(destination: nil, .malformed, body: Array("nope".utf8), source: "q/1/4"), topic: dl,
                   timestamp: now),
            record(letter(destination: 5001, .exhausted, body: Array(bodies[2].utf8), messageID: "m3", source: "q/0/5"),
                   topic: dl, timestamp: now),
        ])

        let dry = try await relayctl(["dead-letter", "redrive", "--destination", "5001", "--dry-run"], in: dir,
                                     environment: environment)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("3 dead letters of destination 5001 would be sent"), "\(dry.stdout)")
        #expect(partner.requests().isEmpty)

        // The second message is refused this time.
        partner.script("/aam", [.status(200), .status(400), .status(200)])
        let first = try await relayctl(["dead-letter", "redrive", "--destination", "5001"], in: dir,
                                       environment: environment)
        #expect(first.status != 0, "one message failed again")
        #expect(first.stdout.contains("2 delivered, 1 failed again"), "\(first.stdout)\n\(first.stderr)")
        let sent = partner.requests("/aam")
        #expect(sent.map { $0.header("X-Relay-Message-Id") } == ["m1", "m2", "m3"])
        #expect(sent.map(\.bodyText) == bodies)
        #expect(sent.allSatisfy { $0.header("X-Signature") != nil }, "signed per the current configuration")
        #expect(partner.requests("/other").isEmpty)

        // The failure is kept as a new letter, with the same message id and the new reason.
        let letters = try await TestBroker.readAll(dl).compactMap { DeadLetter(record: $0) }
        #expect(letters.count == 6)
        // Written by the redrive's producer, partitioned by key: found by its writer, not by position.
        let again = try #require(letters.first { $0.worker.hasPrefix("relayctl-redrive") })
        #expect(again.destination == 5001)
        #expect(again.errorClass == .rejected)
        #expect(again.value == Array(bodies[1].utf8))
        #expect(again.extraHeaders.contains(KafkaHeader("relay.message_id", "m2")))
        #expect(again.worker.hasPrefix("relayctl-redrive"))
        #expect(again.error.contains("HTTP 400"), "\(again.error)")

        let second = try await relayctl(["dead-letter", "redrive", "--destination", "5001"], in: dir,
                                        environment: environment)
        #expect(second.status == 0, "\(second.stdout)\n\(second.stderr)")
        #expect(second.stdout.contains("1 delivered, 0 failed again"), "\(second.stdout)")
        #expect(partner.requests("/aam").count == 4)
        #expect(partner.requests("/aam").last?.header("X-Relay-Message-Id") == "m2")

        let third = try await relayctl(["dead-letter", "redrive", "--destination", "5001"], in: dir,
                                       environment: environment)
        #expect(third.status == 0, "\(third.stderr)")
        #expect(third.stdout.contains("0 delivered, 0 failed again"), "\(third.stdout)")
        #expect(partner.requests("/aam").count == 4, "a run after everything was sent resends nothing")

        let dryAfter = try await relayctl(["dead-letter", "redrive", "--destination", "5001", "--dry-run"], in: dir,
                                          environment: environment)
        #expect(dryAfter.stdout.contains("0 dead letters of destination 5001 would be sent"), "\(dryAfter.stdout)")

        let notRealtime = try await relayctl(["dead-letter", "redrive", "--destination", "5001", "--class", "malformed"],
                                             in: dir, environment: environment)
        #expect(notRealtime.status != 0)
    }
}
