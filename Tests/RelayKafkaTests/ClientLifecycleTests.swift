import Logging
import Testing

@testable import RelayKafka

@Suite struct ClientLifecycleTests {
    @Test func startsOnceAndNeverAfterClose() {
        var life = ClientLifecycle()
        #expect(life.start() == nil)
        #expect(life.start() == .alreadyStarted)
        let closing = life.beginClose()
        #expect(closing)
        #expect(life.start() == .closed)
    }

    @Test func callsRunWhileClosingAndAreRefusedOnceClosed() {
        var life = ClientLifecycle()
        let first = life.enter()
        let closing = life.beginClose()
        let closingAgain = life.beginClose()
        let whileClosing = life.enter()
        #expect(first && closing)
        #expect(!closingAgain, "a second close does nothing")
        #expect(whileClosing, "the revoke callback still commits while the group is left")
        life.leave()
        life.refuseCalls()
        let afterClose = life.enter()
        #expect(!afterClose)
        #expect(!life.canDestroy, "a call that entered before still holds the handle")
        life.leave()
        #expect(life.canDestroy)
    }

    /// The real clients, against no broker at all: creating them needs none, and every call after close must throw
    /// the closed error rather than reach a destroyed handle.
    @Test func realClientsRefuseCallsAfterClose() async throws {
        let configuration = KafkaClientConfiguration(brokers: "127.0.0.1:1", properties: [:])
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let producer = try KafkaProducer(configuration: configuration, logger: logger)
        await producer.close(timeoutMs: 100)
        await producer.close(timeoutMs: 100)
        #expect(producer.outstanding == 0)
        #expect {
            try producer.enqueue(OutgoingRecord(topic: "t", key: nil, value: [1])) { _ in }
        } throws: { ($0 as? KafkaError)?.isClosed == true }

        let consumer = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: configuration, mode: .subscribe(group: "g", topics: ["t"])),
            logger: logger)
        try consumer.start()
        #expect(throws: KafkaError.self) { try consumer.start() }
        await consumer.close()
        #expect(consumer.assignment().isEmpty)
        #expect { try consumer.commit([TopicPartition("t", 0): 1]) } throws: { ($0 as? KafkaError)?.isClosed == true }
        #expect { try consumer.start() } throws: { ($0 as? KafkaError)?.isClosed == true }
    }
}
