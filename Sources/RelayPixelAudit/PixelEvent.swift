/// A pixel event of `aam.pixel-events` (SPEC §6), keyed by `pixel_id`:
/// `{"type": "fired"|"received", "pixel_id", "destination_id", "uuid", "ts", "aliases": [...], "url" (fired only),
/// "source": "edge"|"redirect"|"beacon"|"partner"}`.
///
/// `relay-edge` produces them; this module defines its own copy of the format so that the audit depends only on the
/// contract, not on the edge's code.
public struct PixelEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case fired
        case received
    }

    public var kind: Kind
    public var pixelID: String
    public var destinationID: Int64
    public var uuid: String
    /// Milliseconds since the epoch: when the pixel was fired or received. Windows are cut by this time.
    public var ts: Int64
    public var aliases: [String]
    /// The URL handed to the page (fired events only).
    public var url: String?
    /// `edge`, `redirect`, `beacon` or `partner`.
    public var source: String

    public init(kind: Kind, pixelID: String, destinationID: Int64, uuid: String, ts: Int64, aliases: [String] = [],
                url: String? = nil, source: String = "edge")
    {
        self.kind = kind
        self.pixelID = pixelID
        self.destinationID = destinationID
        self.uuid = uuid
        self.ts = ts
        self.aliases = aliases
        self.url = url
        self.source = source
    }

    /// Decodes the JSON of SPEC §6; unknown fields are ignored. Throws `MalformedPixelEvent` with a reason.
    public static func decode(_ bytes: [UInt8]) throws(MalformedPixelEvent) -> PixelEvent {
        try PixelEventDecoder.decode(bytes)
    }

    /// The canonical JSON of this event (fields in SPEC order, `url` only when present).
    public func jsonBytes() -> [UInt8] {
        var out = "{\"type\":\"\(kind.rawValue)\",\"pixel_id\":"
        Self.appendQuoted(pixelID, to: &out)
        out += ",\"destination_id\":\(destinationID),\"uuid\":"
        Self.appendQuoted(uuid, to: &out)
        out += ",\"ts\":\(ts),\"aliases\":["
        for (i, alias) in aliases.enumerated() {
            if i > 0 { out += "," }
            Self.appendQuoted(alias, to: &out)
        }
        out += "]"
        if let url {
            out += ",\"url\":"
            Self.appendQuoted(url, to: &out)
        }
        out += ",\"source\":"
        Self.appendQuoted(source, to: &out)
        out += "}"
        return Array(out.utf8)
    }

    static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// Why a pixel event could not be read; the record goes to the dead-letter topic with this reason.
public struct MalformedPixelEvent: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
