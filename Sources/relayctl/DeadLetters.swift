import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letter", abstract: "Inspect and redrive dead letters.",
        subcommands: [List.self, Show.self, Redrive.self])

    /// `--destination`, `--class`, `--since`, shared by `list` and `redrive`.
    struct Selection: ParsableArguments {
        @Option(help: "Only letters of this destination id.")
        var destination: Int?

        @Option(name: .customLong("class"), help: "Only this class: malformed, rejected or exhausted (repeatable).")
        var classes: [String] = []

        @Option(help: "Only letters written at or after this time (ms since the epoch or ISO-8601).")
        var since: String?

        func validate() throws {
            for name in classes where DeadLetterClass(rawValue: name) == nil {
                throw ValidationError("--class \(name): expected malformed, rejected or exhausted")
            }
        }

        func filter(until: String? = nil) throws -> DeadLetterFilter {
            DeadLetterFilter(destination: destination, classes: Set(classes.compactMap(DeadLetterClass.init)),
                             sinceMs: try since.map { try DeadLetterFilter.parseTime($0, option: "--since") },
                             untilMs: try until.map { try DeadLetterFilter.parseTime($0, option: "--until") })
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print dead letters, newest first: their headers and a shortened body (gzip decoded).",
            discussion: """
                Reads the dead-letter topic once, keeping only the newest --limit letters that match, so memory \
                stays small however long the topic is. `dead-letter show <topic/partition/offset>` prints one \
                letter whole.
                """)

        @OptionGroup var options: ConfigOption
        @OptionGroup var selection: Selection

        @Option(help: "Only letters written at or before this time (ms since the epoch or ISO-8601).")
        var until: String?

        @Option(help: "At most this many (the newest); 0 prints only how many there are.")
        var limit: Int = 20

        @Flag(help: "One JSON object per line instead of text.")
        var json = false

        func validate() throws {
            guard limit >= 0 else { throw ValidationError("--limit must be 0 or more") }
        }

        func run() async throws {
            let config = try options.load()
            let filter = try selection.filter(until: until)
            let topic = config.kafka.topics.deadLetter
            let admin = try await CLI.admin(config)
            let scan = try await DeadLetterScan.plan(config: config, admin: admin, topic: topic,
                                                     sinceMs: filter.sinceMs)
            var newest = NewestRecords(capacity: limit)
            var matched = 0
            try await scan.forEach(config: config) { record, _ in
                guard filter.matches(record) else { return }
                matched += 1
                newest.offer(record)
            }
            let letters = newest.sortedNewestFirst()
            for record in letters {
                print(json ? LetterPrinter.jsonLine(record, bodyLimit: 160)
                           : LetterPrinter.text(record, bodyLimit: 160))
            }
            if !json {
                if limit == 0 {
                    print("\(matched) dead letters in total\(filter.isEmpty ? "" : " match")")
                } else if letters.isEmpty {
                    print("no dead letters on \(topic)\(filter.isEmpty ? "" : " match")")
                } else {
                    print("\(letters.count) of \(matched) matching dead letters shown (newest first)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print one dead letter whole: every header and the body.")

        @OptionGroup var options: ConfigOption

        @Argument(help: "The letter's position, as list prints it: topic/partition/offset.")
        var position: String

        @Flag(help: "A JSON object instead of text.")
        var json = false

        func validate() throws {
            guard Self.parse(position) != nil else {
                throw ValidationError("\(position): expected topic/partition/offset, e.g. aam.dead-letter/3/1200")
            }
        }

        static func parse(_ text: String) -> (TopicPartition, Int64)? {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 3, !parts[0].isEmpty, let partition = Int32(parts[1]), partition >= 0,
                  let offset = Int64(parts[2]), offset >= 0
            else { return nil }
            return (TopicPartition(String(parts[0]), partition), offset)
        }

        func run() async throws {
            let config = try options.load()
            let (tp, offset) = Self.parse(position)!
            let admin = try await CLI.admin(config)
            let partitions = try await CLI.partitions(admin, topic: tp.topic, brokers: config.kafka.bootstrapServers)
            guard partitions.contains(tp) else {
                throw CLIError("\(tp.topic) has no partition \(tp.partition) (it has \(partitions.count))")
            }
            let low = try await admin.watermarks(tp).low
            let end = try await admin.endOffsets([tp])[tp]!
            guard offset >= low, offset < end else {
                throw CLIError("no record at \(position): partition \(tp.partition) holds offsets \(low)..<\(end)")
            }
            let scan = DeadLetterScan(topic: tp.topic, starts: [tp: offset], ends: [tp: offset + 1])
            var found: KafkaRecord?
            try await scan.forEach(config: config) { record, _ in
                if record.offset == offset { found = record }
            }
            // Compacted or transactional partitions can have holes: the offset may hold no record.
            guard let found else { throw CLIError("no record at \(position)") }
            print(json ? LetterPrinter.jsonLine(found, bodyLimit: nil) : LetterPrinter.full(found))
        }
    }
}

extension DeadLetterFilter {
    var isEmpty: Bool { destination == nil && classes.isEmpty && sinceMs == nil && untilMs == nil }
}

/// The newest `capacity` records offered, by Kafka timestamp (then partition and offset): a min-heap whose root is
/// the oldest kept, so each offer costs O(log capacity) and memory never exceeds `capacity` records.
struct NewestRecords {
    let capacity: Int
    private var heap: [KafkaRecord] = []

    init(capacity: Int) { self.capacity = capacity }

    private static func older(_ a: KafkaRecord, _ b: KafkaRecord) -> Bool {
        (a.timestamp, a.partition, a.offset) < (b.timestamp, b.partition, b.offset)
    }

    mutating func offer(_ record: KafkaRecord) {
        if heap.count < capacity {
            heap.append(record)
            siftUp(heap.count - 1)
        } else if let oldest = heap.first, Self.older(oldest, record) {
            heap[0] = record
            siftDown(0)
        }
    }

    func sortedNewestFirst() -> [KafkaRecord] { heap.sorted { Self.older($1, $0) } }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.older(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            var smallest = parent
            for child in [2 * parent + 1, 2 * parent + 2]
            where child < heap.count && Self.older(heap[child], heap[smallest]) {
                smallest = child
            }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

/// A dead letter as `list` and `show` print it.
enum LetterPrinter {
    static func text(_ record: KafkaRecord, bodyLimit: Int?) -> String {
        let written = Timestamps.iso8601(milliseconds: record.timestamp)
        guard let letter = DeadLetter(record: record) else {
            return "\(record.source)  \(written)  (not a relay dead letter)  body \(body(record, limit: bodyLimit))"
        }
        var lines = ["\(record.source)  \(written)  \(letter.errorClass.rawValue)  \(letter.error)"]
        lines.append("  source \(letter.source)  worker \(letter.worker)"
                     + (letter.destination.map { "  destination \($0)" } ?? "")
                     + "  attempts \(letter.attempts)  failed \(Timestamps.iso8601(letter.failedAt))")
        lines.append("  key \(key(record))  body \(body(record, limit: bodyLimit))")
        return lines.joined(separator: "\n")
    }

    /// Every header, then the whole body.
    static func full(_ record: KafkaRecord) -> String {
        var lines = ["\(record.source)  written \(Timestamps.iso8601(milliseconds: record.timestamp))",
                     "key: \(key(record))"]
        for header in record.headers { lines.append("\(header.key): \(LetterBody.text(header.value))") }
        let (bytes, gzip) = LetterBody.decoded(Array(record.value))
        lines.append("body (\(record.value.count) bytes\(gzip ? ", gzip: \(bytes.count) bytes decoded" : "")):")
        lines.append(LetterBody.text(bytes))
        return lines.joined(separator: "\n")
    }

    /// One JSON object: position, every SPEC §7 header by name, the other headers, and the body as text.
    static func jsonLine(_ record: KafkaRecord, bodyLimit: Int?) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        func name(_ name: String) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
        }
        func field(_ key: String, _ value: String?) {
            name(key)
            if let value { JSONWriter.appendString(value, to: &out) } else { out += Array("null".utf8) }
        }
        func number(_ key: String, _ value: Int64?) {
            name(key)
            if let value { JSONWriter.appendInt64(value, to: &out) } else { out += Array("null".utf8) }
        }
        field("position", record.source)
        field("topic", record.topic)
        number("partition", Int64(record.partition))
        number("offset", record.offset)
        field("written_at", Timestamps.iso8601(milliseconds: record.timestamp))
        let letter = DeadLetter(record: record)
        field("class", letter?.errorClass.rawValue)
        field("error", letter?.error)
        field("source", letter?.source)
        field("worker", letter?.worker)
        number("destination", letter?.destination.map(Int64.init))
        number("attempts", letter.map { Int64($0.attempts) })
        field("failed_at", letter.map { Timestamps.iso8601($0.failedAt) })
        name("headers")
        out.append(UInt8(ascii: "{"))
        for (index, header) in (letter?.extraHeaders ?? record.headers).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(header.key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.appendString(LetterBody.text(header.value), to: &out)
        }
        out.append(UInt8(ascii: "}"))
        field("key", record.key.map { LetterBody.text(Array($0)) })
        let (bytes, gzip) = LetterBody.decoded(Array(record.value))
        name("body_gzip")
        out += Array((gzip ? "true" : "false").utf8)
        number("body_bytes", Int64(bytes.count))
        field("body", LetterBody.text(bytes, limit: bodyLimit))
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    private static func key(_ record: KafkaRecord) -> String {
        record.key.map { LetterBody.text(Array($0)) } ?? "-"
    }

    private static func body(_ record: KafkaRecord, limit: Int?) -> String {
        let (bytes, gzip) = LetterBody.decoded(Array(record.value))
        let shown = LetterBody.text(bytes, limit: limit)
        return gzip ? "(gzip, \(bytes.count) bytes) \(shown)" : shown
    }
}
