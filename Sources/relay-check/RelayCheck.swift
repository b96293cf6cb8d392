import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

/// `relay-check`: the simplest worker on the shared runtime. It validates every qualification event, dead-letters the
/// malformed ones with their reason and commits; with `--output` it also appends each valid event's position and ids
/// to a JSON-lines file (an audit trail of what was read). Operators use it to check a topic's health; the runtime's
/// tests and benchmark use it as the consume → decode → commit loop without any partner I/O.
@main
struct RelayCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-check",
        abstract: "Validate the qualification stream: dead-letter malformed events, commit, optionally log each event.",
        version: BuildInfo.versionLine)

    @OptionGroup var options: WorkerOptions

    @Option(help: "Append `{\"partition\",\"offset\",\"event_id\",\"uuid\"}` per valid event to this file.")
    var output: String?

    func run() async throws {
        let output = try self.output.map { try EventLog(path: $0) }
        try await WorkerMain.run(name: "relay-check", options: options, defaultMetricsPort: 9109,
                                 topics: { [$0.kafka.topics.qualifications] }) { context in
            CheckHandler(context: context, log: output)
        }
    }
}

struct CheckHandler: RecordHandler {
    let context: WorkerContext
    let log: EventLog?

    func handle(_ records: [KafkaRecord]) async {
        var lines: [UInt8] = []
        for record in records {
            do {
                let event = try context.qualification(of: record)
                if log != nil {
                    lines += Array("{\"partition\":\(record.partition),\"offset\":\(record.offset),\"event_id\":".utf8)
                    lines += jsonString(event.eventID) + Array(",\"uuid\":".utf8) + jsonString(event.uuid)
                    lines += Array("}\n".utf8)
                }
            } catch {
                await context.deadLetters.keepMalformed(record, reason: error.reason, logger: context.logger)
            }
        }
        // Durable before final: the log is written (and synced) before these offsets may be committed.
        if let log, !lines.isEmpty { log.append(lines) }
        context.offsets.complete(records)
    }

    private func jsonString(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.appendString(text, to: &out)
        return out
    }
}

/// An append-only file written with O_APPEND and fsync, so that several processes may share it line by line.
final class EventLog: Sendable {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot open \(path) for appending") }
    }

    func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        fsync(fd)
    }

    deinit { close(fd) }
}
