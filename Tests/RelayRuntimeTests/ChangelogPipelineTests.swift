import Foundation
import RelayKafka
import RelayRuntime
import RelayTestSupport
import Synchronization
import Testing

@Suite("Changelog pipeline: writes in flight against the real broker")
struct ChangelogPipelineTests {
    @Test("writes are durable in order, each reports once its records are acknowledged, the barrier waits for all")
    func writesInFlight() async throws {
        let topic = try await TestBroker.createTopic("pipeline", partitions: 1)
        let producer = try KafkaProducer(configuration: TestBroker.client, logger: TestBroker.logger)
        let pipeline = ChangelogPipeline(producer: producer)
        let durable = Mutex<[Int]>([])
        for write in 0..<20 {
            let records = (0..<50).map { i in
                OutgoingRecord(topic: topic, key: Array("k\(i)".utf8), value: Array("\(write)".utf8), partition: 0)
            }
            _ = await pipeline.send(records) { durable.withLock { $0.append(write) } }
        }
        await pipeline.barrier()
        #expect(pipeline.inFlight == 0)
        #expect(!pipeline.hasFailed)
        #expect(durable.withLock { $0 } == Array(0..<20))
        // Each key's last record is its value in the last write: order held across writes.
        let read = try await TestBroker.readAll(topic)
        #expect(read.count == 1_000)
        let last = Dictionary(read.map { (String(decoding: $0.key ?? [], as: UTF8.self), $0.value) }) { _, new in new }
        #expect(last.values.allSatisfy { Array($0) == Array("19".utf8) })
        await producer.close()
    }

    @Test("a write the broker refuses is not durable and stays held; the barrier still returns")
    func refusedWrite() async throws {
        let topic = try await TestBroker.createTopic("pipeline-refused", partitions: 1)
        let producer = try KafkaProducer(configuration: TestBroker.client, logger: TestBroker.logger)
        let pipeline = ChangelogPipeline(producer: producer)
        let durable = Mutex<[String]>([])
        let good = [OutgoingRecord(topic: topic, key: nil, value: [1], partition: 0)]
        _ = await pipeline.send(good) { durable.withLock { $0.append("good") } }
        // Partition 5 of a one-partition topic: librdkafka fails the record.
        let bad = [OutgoingRecord(topic: topic, key: nil, value: [2], partition: 5)]
        _ = await pipeline.send(bad) { durable.withLock { $0.append("bad") } }
        _ = await pipeline.send(good) { durable.withLock { $0.append("after") } }
        await pipeline.barrier()
        #expect(pipeline.hasFailed)
        #expect(durable.withLock { $0 } == ["good", "after"])
        // Sent again (the refused write and the one behind it): refused again, still held, still not durable.
        #expect(await pipeline.resendUnfinished() == false)
        #expect(pipeline.hasFailed)
        #expect(durable.withLock { $0 } == ["good", "after"])
        // Closed (a revoke): nothing more is taken.
        pipeline.close()
        #expect(await pipeline.send(good) { durable.withLock { $0.append("closed") } } == false)
        #expect(durable.withLock { $0 } == ["good", "after"])
        await producer.close()
    }
}
