import Foundation
import RelayKafka
import RelayRuntime
import RelayTestSupport
import Testing

/// Records that once stopped a worker for good, produced to a live relay-check group: each is dead-lettered with its
/// reason and the records after it are processed and committed.
@Suite("Poison records on the real broker", .serialized, .timeLimit(.minutes(3)))
struct PoisonRecordTests {
    @Test("a malformed record too large to dead-letter whole is kept truncated, and work goes on")
    func oversizedMalformedRecord() async throws {
        let setup = try await ConsumerWorkerTests.Setup(partitions: 1)
        let (worker, port) = try setup.start(output: "out.jsonl")
        defer { Task { await worker.stop() } }
        try await worker.waitForHTTP(port: port)
        // Under the broker's and librdkafka's 1 MB limits alone, over them once the dead-letter headers are added.
        let huge = [UInt8](repeating: UInt8(ascii: "x"), count: 999_901)
        var records = [OutgoingRecord(topic: "", key: Array("huge".utf8), value: huge)]
        records += ConsumerWorkerTests.events(0..<50, prefix: "after")
        try await ConsumerWorkerTests.produce(records, to: setup.topics.qualifications)
        #expect(await eventually(timeout: .seconds(60)) { setup.processed("out.jsonl").count == 50 },
                "the records after the poison one are processed")
        var letters: [KafkaRecord] = []
        #expect(await eventually {
            letters = (try? await TestBroker.readAll(setup.topics.deadLetter)) ?? []
            return letters.count == 1
        })
        let letter = try #require(letters.first)
        #expect(letter.value.count == DeadLetter.truncatedBytes)
        #expect(letter.header(DeadLetter.originalSizeHeader)?.stringValue == "999901")
        #expect(letter.header("relay.error.class")?.stringValue == "malformed")
        #expect(letter.header("relay.source")?.stringValue == "\(setup.topics.qualifications)/0/0")
        #expect(await eventually { (try? await setup.committedTotal()) == 51 }, "the poison record is committed too")
    }

    @Test("times outside the accepted window (Int64.max record time, seconds instead of ms, 0) are dead-lettered")
    func timesOutsideTheWindow() async throws {
        let setup = try await ConsumerWorkerTests.Setup(partitions: 1)
        let (worker, port) = try setup.start(output: "out.jsonl")
        defer { Task { await worker.stop() } }
        try await worker.waitForHTTP(port: port)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func event(_ id: String, ts: Int64) -> [UInt8] {
            Array(#"{"event_id":"\#(id)","uuid":"1234","ts":\#(ts),"segments":[{"id":1,"status":1}]}"#.utf8)
        }
        var records = [
            OutgoingRecord(topic: "", key: Array("far".utf8), value: event("far", ts: now),
                           timestamp: 9_223_372_036_854_775_000),
            OutgoingRecord(topic: "", key: Array("seconds".utf8), value: event("seconds", ts: now / 1000)),
            OutgoingRecord(topic: "", key: Array("zero".utf8), value: event("zero", ts: 0)),
            OutgoingRecord(topic: "", key: Array("max".utf8), value: event("max", ts: .max)),
        ]
        records += ConsumerWorkerTests.events(0..<20, prefix: "after")
        try await ConsumerWorkerTests.produce(records, to: setup.topics.qualifications)
        #expect(await eventually(timeout: .seconds(60)) { setup.processed("out.jsonl").count == 20 })
        var letters: [KafkaRecord] = []
        #expect(await eventually {
            letters = (try? await TestBroker.readAll(setup.topics.deadLetter)) ?? []
            return letters.count == 4
        })
        let reasons = Dictionary(uniqueKeysWithValues: letters.map {
            (String(decoding: $0.key ?? [], as: UTF8.self), $0.header("relay.error")?.stringValue ?? "")
        })
        #expect(reasons["far"]?.contains("Kafka record timestamp") == true, "\(reasons)")
        #expect(reasons["seconds"]?.contains("ts:") == true && reasons["zero"]?.contains("ts:") == true, "\(reasons)")
        #expect(reasons["max"]?.contains("ts:") == true, "\(reasons)")
        #expect(await eventually { (try? await setup.committedTotal()) == 24 })
    }
}

@Suite struct BackoffTests {
    @Test func doublesUpToTheMaximumWhateverTheAttempt() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10))
        #expect(backoff.bound(afterAttempt: 1) == .milliseconds(100))
        #expect(backoff.bound(afterAttempt: 3) == .milliseconds(400))
        for attempt in [0, -1, 8, 64, Int.max, Int.min] {
            let bound = backoff.bound(afterAttempt: attempt)
            #expect(bound >= .milliseconds(100) && bound <= .seconds(10))
        }
        let jittered = Backoff(initial: .seconds(1), maximum: .seconds(60), jitter: true)
        #expect(jittered.delay(afterAttempt: 3, random: 0.5) == .seconds(2))
        #expect(jittered.delay(afterAttempt: 3, random: .nan) == .seconds(4))
        #expect(Backoff(initial: .seconds(-5), maximum: .seconds(-9)).bound(afterAttempt: 2) == .milliseconds(1))
    }

    @Test func truncatedLettersSayWhatTheyWere() {
        let letter = DeadLetter(key: [UInt8](repeating: 1, count: 100_000), value: [UInt8](repeating: 2, count: 200_000),
                                error: String(repeating: "e", count: 5_000), errorClass: .malformed, source: "t/0/1",
                                worker: "w")
        let cut = letter.truncated(to: DeadLetter.truncatedBytes)
        #expect(cut.value.count == DeadLetter.truncatedBytes && cut.key?.count == DeadLetter.truncatedBytes)
        #expect(cut.headers.contains { $0.key == DeadLetter.originalSizeHeader && $0.stringValue == "200000" })
        #expect(cut.headers.contains { $0.key == DeadLetter.originalKeySizeHeader && $0.stringValue == "100000" })
        #expect(cut.error.utf8.count <= 1024 && cut.source == "t/0/1")
    }
}
