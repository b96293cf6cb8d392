import Foundation
import RelayKafka
import RelayEncoding
import RelayRuntime
import Testing

@Suite("Runtime pieces without I/O")
struct RuntimePiecesTests {
    @Test("a dead letter's headers follow SPEC §7 and read back unchanged")
    func deadLetterHeaders() throws {
        let failedAt = Date(timeIntervalSince1970: 1_795_982_000)
        let letter = DeadLetter(key: Array("u1".utf8), value: Array("{}".utf8), error: "HTTP 400", errorClass: .rejected,
                                source: "aam.qualifications/3/42", worker: "host:1", destination: 5001, attempts: 1,
                                failedAt: failedAt, extraHeaders: [KafkaHeader("relay.message_id", "abc")])
        let names = letter.headers.map(\.key)
        for required in ["relay.error", "relay.error.class", "relay.source", "relay.worker", "relay.destination",
                         "relay.attempts", "relay.failed_at"] {
            #expect(names.contains(required), "\(required)")
        }
        let record = KafkaRecord(topic: "dl", partition: 0, offset: 7, key: letter.key, value: letter.value,
                                 timestamp: 0, headers: letter.headers)
        let back = try #require(DeadLetter(record: record))
        #expect(back == letter)
        #expect(record.header("relay.failed_at")?.stringValue == "2026-11-29T19:53:20Z")
    }

    @Test("ISO-8601 timestamps in UTC, seconds, across leap years and before 1970")
    func timestamps() {
        #expect(Timestamps.iso8601(milliseconds: 0) == "1970-01-01T00:00:00Z")
        #expect(Timestamps.iso8601(milliseconds: 1_795_982_000_999) == "2026-11-29T19:53:20Z")
        #expect(Timestamps.iso8601(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00Z")
        #expect(Timestamps.iso8601(milliseconds: -1) == "1969-12-31T23:59:59Z")
        let date = Timestamps.parseISO8601("2026-11-29T14:00:00Z")
        #expect(date.map { Int64($0.timeIntervalSince1970) } == 1_795_960_800)
    }

    @Test("gzip round-trips and is deterministic; corrupt input is an error")
    func gzip() throws {
        let input = Array(String(repeating: "07955261652886032950143702505894272138 4532,99 \n", count: 500).utf8)
        let a = try Gzip.compress(input)
        let b = try Gzip.compress(input)
        #expect(a == b, "same bytes in, same bytes out")
        #expect(a.count < input.count / 10)
        #expect(Array(a.prefix(2)) == [0x1f, 0x8b], "gzip magic")
        #expect(try Gzip.decompress(a) == input)
        #expect(try Gzip.decompress(Gzip.compress([])) == [])
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(Array(a.prefix(a.count / 2))) }
        #expect(throws: Gzip.Failure.self) { try Gzip.decompress(Array("plain text".utf8)) }
    }

    @Test("log fields are escaped as JSON strings")
    func jsonEscaping() throws {
        let out = JSONWriter.quoted("a\"b\\c\nd\u{1}é")
        #expect(out == #""a\"b\\c\nd\u0001é""#)
        let parsed = try JSONSerialization.jsonObject(with: Data("[\(out)]".utf8)) as? [String]
        #expect(parsed == ["a\"b\\c\nd\u{1}é"])
    }
}
