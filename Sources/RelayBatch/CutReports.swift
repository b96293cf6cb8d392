import RelayCore
import RelayEncoding
import RelayKafka

/// `<group>.cuts` records (``CutReports``, the contract in RelayCore) as Kafka records.
extension CutReports {
    static func reportRecord(_ report: CutReport, topic: String) -> OutgoingRecord {
        OutgoingRecord(topic: topic, key: reportKey(report), value: reportValue(report), partition: report.partition)
    }

    static func doneRecord(destination: Int, cut: Int64, file: String, topic: String) -> OutgoingRecord {
        OutgoingRecord(topic: topic, key: doneKey(destination: destination, cut: cut),
                       value: doneValue(destination: destination, cut: cut, file: file), partition: 0)
    }

    static func decode(_ record: KafkaRecord) throws(MalformedInput) -> Record {
        try decode(key: record.key, value: record.value)
    }
}
