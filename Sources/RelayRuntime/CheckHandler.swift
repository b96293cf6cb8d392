import Foundation
import RelayCore
import RelayEncoding
import RelayKafka

/// `relay-check`'s record handler, here so that tests build the worker in-process: every qualification event is
/// validated (decoder and `input:` checks), the malformed ones dead-lettered with their reason, and the batch marked
/// final. With a log, each valid event's position and ids are appended first (an audit trail of what was read).
public struct CheckHandler: RecordHandler {
    let context: WorkerContext
    let log: EventLog?

    public init(context: WorkerContext, log: EventLog?) {
        self.context = context
        self.log = log
    }

    public func handle(_ records: [KafkaRecord]) async {
        var lines: [UInt8] = []
        for record in records {
            do {
                let event = try context.qualification(of: record)
                guard log != nil else { continue }
                JSONWriter.appendASCII(#"{"partition":"#, to: &lines)
                JSONWriter.appendInteger(record.partition, to: &lines)
                JSONWriter.appendASCII(#","offset":"#, to: &lines)
                JSONWriter.appendInt64(record.offset, to: &lines)
                JSONWriter.appendASCII(#","event_id":"#, to: &lines)
                JSONWriter.appendString(event.eventID, to: &lines)
                JSONWriter.appendASCII(#","uuid":"#, to: &lines)
                JSONWriter.appendString(event.uuid, to: &lines)
                JSONWriter.appendASCII("}\n", to: &lines)
            } catch {
                await context.deadLetters.keepMalformed(record, reason: error.reason, logger: context.logger)
            }
        }
        // Durable before final: the log is written (and synced) before these offsets may be committed. A log that
        // cannot be written leaves the batch not final, so it is read again rather than missing from the trail.
        if let log, !lines.isEmpty {
            do { try log.append(lines) } catch {
                context.logger.error("event log not written: the batch stays uncommitted", metadata: ["error": "\(error)"])
                return
            }
        }
        context.offsets.complete(records)
    }
}

/// An append-only file written with O_APPEND and fsync, so that several processes may share it line by line.
public final class EventLog: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private let fd: Int32
    private let path: String

    public init(path: String) throws(Failure) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path) for appending") }
    }

    public func append(_ bytes: [UInt8]) throws(Failure) {
        var failure: String?
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        if let failure { throw Failure(description: "cannot append to \(path): \(failure)") }
    }

    deinit { close(fd) }
}
