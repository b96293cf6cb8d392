import RelayCore
import RelayEncoding
import RelayKafka

/// The checks every worker applies to a record before using it, in one place: a record that fails them is
/// malformed, dead-lettered with the reason, and processing goes on.
extension WorkerContext {
    /// Decodes a qualification event and checks its `ts` and the record's timestamp against `input:`.
    public func qualification(of record: KafkaRecord, now: Int64 = Timestamps.nowMilliseconds())
        throws(MalformedEvent) -> Qualification
    {
        try config.input.qualification(of: record, now: now)
    }

    /// Why the record's own timestamp is refused (nil when it is accepted). Workers that order work by record time
    /// never feed a refused one into their clocks.
    public func recordTimeProblem(_ record: KafkaRecord, now: Int64 = Timestamps.nowMilliseconds()) -> String? {
        config.input.recordTimeProblem(record, now: now)
    }
}

extension EventTimeWindow {
    /// The checks above for code that holds the window but no worker context (the batch engine).
    public func qualification(of record: KafkaRecord, now: Int64) throws(MalformedEvent) -> Qualification {
        let event = try QualificationDecoder.decode(record.value)
        if let problem = problem(eventTime: event.timestamp, recordTime: record.timestamp, now: now) {
            throw MalformedEvent(problem)
        }
        return event
    }

    public func recordTimeProblem(_ record: KafkaRecord, now: Int64) -> String? {
        problem(record.timestamp, field: "Kafka record timestamp", now: now)
    }
}
