import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import Synchronization

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce qualification events: realistic samples, or the lines of a JSON-lines file.",
        discussion: """
            Events are keyed by their uuid. Lines of --file that are not valid events are produced as they are \
            (the workers dead-letter them) and counted.
            """)

    @OptionGroup var options: ConfigOption

    @Option(help: "Produce N generated sample events.")
    var sample: Int?

    @Option(help: "Produce the events of a JSON-lines file ('-' for standard input).")
    var file: String?

    @Option(help: "Events per second (default: as fast as possible).")
    var rate: Double?

    @Option(help: "Seed of the sample generator (same seed, same events).")
    var seed: UInt64 = 42

    @Option(help: "Distinct users among the samples.")
    var users: Int = 10_000

    @Option(help: "Topic (default: kafka.topics.qualifications).")
    var topic: String?

    func validate() throws {
        guard (sample == nil) != (file == nil) else { throw ValidationError("give exactly one of --sample N or --file F") }
        if let sample, sample < 1 { throw ValidationError("--sample must be at least 1") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        if users < 1 { throw ValidationError("--users must be at least 1") }
    }

    func run() async throws {
        let config = try options.load()
        let topic = self.topic ?? config.kafka.topics.qualifications
        let admin = try await CLI.admin(config)
        _ = try await CLI.partitions(admin, topic: topic, brokers: config.kafka.bootstrapServers)
        let producer = try KafkaProducer(configuration: try CLI.client(config), logger: CLI.logger)
        let progress = Progress(total: sample)
        let failures = Atomic<Int>(0)
        let firstFailure = Mutex<String?>(nil)
        let started = ContinuousClock.now
        var sent = 0
        var malformed = 0

        func send(key: [UInt8]?, value: [UInt8]) async throws {
            try await producer.enqueueWaiting(OutgoingRecord(topic: topic, key: key, value: value)) { result in
                if case .failure(let error) = result {
                    failures.add(1, ordering: .relaxed)
                    firstFailure.withLock { if $0 == nil { $0 = "\(error)" } }
                }
            }
            sent += 1
            if let rate, sent % max(1, Int(rate / 100)) == 0 {
                let due = started + .seconds(Double(sent) / rate)
                let ahead = due - .now
                if ahead > .zero { try await Task.sleep(for: ahead) }
            }
            if sent % 10_000 == 0 { progress.update(sent) }
        }

        if let sample {
            var generator = SampleEvents(seed: seed, users: users, now: Int64(Date().timeIntervalSince1970 * 1000))
            for _ in 0..<sample {
                let event = generator.next()
                try await send(key: Array(event.uuid.utf8), value: event.jsonBytes())
            }
        } else if let file {
            let handle: FileHandle
            if file == "-" { handle = .standardInput } else {
                guard let h = FileHandle(forReadingAtPath: file) else { throw CLIError("cannot read \(file)") }
                handle = h
            }
            try await forEachLine(of: handle) { bytes in
                let key: [UInt8]?
                do { key = Array(try QualificationDecoder.decode(bytes).uuid.utf8) } catch {
                    malformed += 1
                    key = nil
                }
                try await send(key: key, value: bytes)
            }
        }
        try await producer.flush(timeoutMs: 120_000)
        await producer.close()
        progress.finish(sent)
        let seconds = (ContinuousClock.now - started).inSeconds
        let failed = failures.load(ordering: .relaxed)
        print("produced \(sent - failed) events to \(topic) in \(String(format: "%.1f", seconds)) s"
              + (malformed > 0 ? " (\(malformed) not valid events, produced as they are)" : ""))
        if failed > 0 {
            throw CLIError("\(failed) events failed: \(firstFailure.withLock { $0 } ?? "")")
        }
    }
}

/// A progress bar on a terminal (stderr); silent otherwise.
struct Progress {
    let total: Int?
    let enabled = CLI.isTerminal

    func update(_ done: Int) {
        guard enabled else { return }
        if let total, total > 0 {
            let width = 30
            let filled = min(width, done * width / total)
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total)".utf8))
        } else {
            FileHandle.standardError.write(Data("\r\(done) events".utf8))
        }
    }

    func finish(_ done: Int) {
        guard enabled else { return }
        update(done)
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Calls `body` with each non-empty line of a file (without its newline), as soon as a read returns it.
///
/// One read(2) of up to 1 MiB at a time, off the cooperative pool: `FileHandle.readData(ofLength:)` waits until the
/// whole length has arrived, which held back events from a live pipe (`--file -`) until a mebibyte had been written.
func forEachLine(of handle: FileHandle, _ body: ([UInt8]) async throws -> Void) async throws {
    let fd = handle.fileDescriptor
    var pending: [UInt8] = []
    while true {
        let chunk = try await BlockingIO.run { () throws(CLIError) -> [UInt8] in
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n >= 0 { return Array(buffer[..<n]) }
                if errno != EINTR { throw CLIError("read failed: \(String(cString: strerror(errno)))") }
            }
        }
        if chunk.isEmpty { break }
        pending += chunk
        var start = 0
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            if newline > start { try await body(Array(pending[start..<newline])) }
            start = newline + 1
        }
        pending.removeFirst(start)
    }
    if !pending.isEmpty { try await body(pending) }
}
