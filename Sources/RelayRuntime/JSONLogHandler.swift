import Foundation
import Logging

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
        var out = "{\"ts\":\"\(Self.timestamp())\",\"level\":\"\(level)\",\"logger\":"
        Self.appendQuoted(label, to: &out)
        out += ",\"msg\":"
        Self.appendQuoted(message.description, to: &out)
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            out += ","
            Self.appendQuoted(key, to: &out)
            out += ":"
            Self.appendQuoted(value.description, to: &out)
        }
        out += "}\n"
        FileHandle.standardError.write(Data(out.utf8))
    }

    private static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        let ms = Int64(tv.tv_sec) * 1000 + Int64(tv.tv_usec) / 1000
        let base = Timestamps.iso8601(milliseconds: ms).dropLast()  // drop "Z"
        return "\(base).\(String(format: "%03d", Int(ms % 1000)))Z"
    }

    /// JSON string escaping per RFC 8259.
    public static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
