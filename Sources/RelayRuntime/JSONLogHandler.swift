import Foundation
import Logging
import RelayEncoding

/// One JSON object per line on stderr: `{"ts":"...","level":"info","logger":"relay-realtime","msg":"...",...}`.
/// Metadata values are written as strings; callers never put secrets into messages or metadata.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let (level, message) = (event.level, event.message)
        var fields = self.metadata
        if let explicit = event.metadata { fields.merge(explicit) { _, new in new } }
        if let error = event.error { fields["error"] = "\(error)" }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSONWriter.appendASCII("{\"ts\":\"", to: &out)
        out.append(contentsOf: Self.timestamp().utf8)
        JSONWriter.appendASCII("\",\"level\":\"", to: &out)
        out.append(contentsOf: "\(level)".utf8)
        JSONWriter.appendASCII("\",\"logger\":", to: &out)
        JSONWriter.appendString(label, to: &out)
        JSONWriter.appendASCII(",\"msg\":", to: &out)
        JSONWriter.appendString(message.description, to: &out)
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            out.append(UInt8(ascii: ","))
            JSONWriter.appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONWriter.appendString(value.description, to: &out)
        }
        JSONWriter.appendASCII("}\n", to: &out)
        FileHandle.standardError.write(Data(out))
    }

    private static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        let ms = Int64(tv.tv_sec) * 1000 + Int64(tv.tv_usec) / 1000
        let base = Timestamps.iso8601(milliseconds: ms).dropLast()  // drop "Z"
        return "\(base).\(String(format: "%03d", Int(ms % 1000)))Z"
    }
}
