import Foundation
import RelayKafka
import RelayTestSupport
import Testing

@Suite("Kafka client on the real broker", .timeLimit(.minutes(2)))
struct KafkaRoundTripTests {
    @Test("records keep key, value, headers and timestamp; one key stays on one partition")
    func roundTrip() async throws {
        let topic = try await TestBroker.createTopic("roundtrip", partitions: 4)
        let producer = try KafkaProducer(configuration: TestBroker.client, logger: TestBroker.logger)
        var reports: [DeliveryReport] = []
        for i in 0..<20 {
            let record = OutgoingRecord(topic: topic, key: Array("user-\(i % 3)".utf8), value: Array("v\(i)".utf8),
                                        headers: [KafkaHeader("h", "x\(i)")], timestamp: 1_700_000_000_000 + Int64(i))
            reports.append(try await producer.send(record))
        }
        await producer.close()
        #expect(reports.allSatisfy { $0.topic == topic && $0.offset >= 0 })

        let partitions = (0..<4).map { (TopicPartition(topic, Int32($0)), KafkaConsumer.offsetBeginning) }
        let consumer = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: TestBroker.client,
                                                 mode: .assign(Dictionary(uniqueKeysWithValues: partitions), group: nil)),
            logger: TestBroker.logger)
        try consumer.start()
        var seen: [KafkaRecord] = []
        for await batch in consumer.batches() {
            seen += batch
            if seen.count >= 20 { break }
        }
        await consumer.close()
        #expect(seen.count == 20)
        let byValue = Dictionary(uniqueKeysWithValues: seen.map { (String(decoding: $0.value, as: UTF8.self), $0) })
        for i in 0..<20 {
            let record = try #require(byValue["v\(i)"])
            #expect(record.key.map(Array.init) == Array("user-\(i % 3)".utf8))
            #expect(record.header("h")?.stringValue == "x\(i)")
            #expect(record.timestamp == 1_700_000_000_000 + Int64(i))
        }
        // Same key, same partition, offsets in send order.
        for key in 0..<3 {
            let records = seen.filter { $0.key.map(Array.init) == Array("user-\(key)".utf8) }
            #expect(Set(records.map(\.partition)).count == 1)
            #expect(records.map(\.offset) == records.map(\.offset).sorted())
        }
    }

    @Test("creating a topic twice leaves the first alone")
    func createTopicsIdempotent() async throws {
        let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
        let topic = TestBroker.uniqueName("create")
        #expect(try await admin.createTopics([topic], partitions: 3) == [topic: .created])
        #expect(try await admin.createTopics([topic], partitions: 5) == [topic: .alreadyExists])
        #expect(try await admin.partitions(of: topic) == [0, 1, 2])
    }

    @Test("an unknown topic is a clear error")
    func unknownTopic() async throws {
        let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
        await #expect(throws: KafkaError.self) { try await admin.partitions(of: TestBroker.uniqueName("missing")) }
    }
}

@Suite("Consumer flow control on the real broker", .timeLimit(.minutes(2)))
struct ConsumerFlowControlTests {
    @Test("a slow reader pauses fetching and loses nothing when fetching resumes")
    func pauseAndResumeLoseNothing() async throws {
        let topic = try await TestBroker.createTopic("flow", partitions: 2)
        let records = (0..<3000).map { i in
            OutgoingRecord(topic: topic, key: Array("k\(i % 10)".utf8), value: Array("\(i)".utf8))
        }
        try await TestBroker.produce(records)
        let consumer = try KafkaConsumer(
            configuration: ConsumerConfiguration(
                client: TestBroker.client,
                mode: .assign([TopicPartition(topic, 0): KafkaConsumer.offsetBeginning,
                               TopicPartition(topic, 1): KafkaConsumer.offsetBeginning], group: nil),
                maxBufferedRecords: 100, batchSize: 50),
            logger: TestBroker.logger)
        try consumer.start()
        var seen: [KafkaRecord] = []
        for await batch in consumer.batches() {
            seen += batch
            if seen.count % 500 < batch.count { try await Task.sleep(for: .milliseconds(300)) }  // fall behind
            if seen.count >= 3000 { break }
        }
        await consumer.close()
        #expect(seen.count == 3000)
        #expect(Set(seen.map { String(decoding: $0.value, as: UTF8.self) }).count == 3000, "no duplicates")
        for partition in [Int32(0), 1] {
            let offsets = seen.filter { $0.partition == partition }.map(\.offset)
            #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(partition) in order, without gaps")
        }
    }
}
