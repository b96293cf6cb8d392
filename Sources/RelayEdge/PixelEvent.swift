/// A pixel fired or received (SPEC §6), produced to `kafka.topics.pixel_events` keyed by `pixel_id`.
public struct PixelEvent: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case fired, received
    }

    public enum Source: String, Sendable {
        case edge, redirect, beacon, partner
    }

    public var type: Kind
    public var pixelID: String
    /// For a receipt that does not say: the destination in the pixel id (`<destination id>-<random>`), else 0.
    public var destinationID: Int
    /// Empty when a receipt does not say (a bare beacon, a partner's list of ids).
    public var uuid: String
    public var timestamp: Int64
    public var aliases: [String]
    /// The partner URL handed out (fired only).
    public var url: String?
    public var source: Source

    public init(type: Kind, pixelID: String, destinationID: Int, uuid: String, timestamp: Int64, aliases: [String],
                url: String?, source: Source)
    {
        self.type = type
        self.pixelID = pixelID
        self.destinationID = destinationID
        self.uuid = uuid
        self.timestamp = timestamp
        self.aliases = aliases
        self.url = url
        self.source = source
    }

    /// `{"type","pixel_id","destination_id","uuid","ts","aliases","url"(fired only),"source"}`.
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(contentsOf: #"{"type":""#.utf8)
        out.append(contentsOf: type.rawValue.utf8)
        out.append(contentsOf: #"","pixel_id":"#.utf8)
        ByteWriting.appendJSONString(pixelID, to: &out)
        out.append(contentsOf: #","destination_id":"#.utf8)
        ByteWriting.appendInteger(destinationID, to: &out)
        out.append(contentsOf: #","uuid":"#.utf8)
        ByteWriting.appendJSONString(uuid, to: &out)
        out.append(contentsOf: #","ts":"#.utf8)
        ByteWriting.appendInteger(timestamp, to: &out)
        out.append(contentsOf: #","aliases":["#.utf8)
        for (index, alias) in aliases.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            ByteWriting.appendJSONString(alias, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        if type == .fired {
            out.append(contentsOf: #","url":"#.utf8)
            ByteWriting.appendJSONString(url ?? "", to: &out)
        }
        out.append(contentsOf: #","source":""#.utf8)
        out.append(contentsOf: source.rawValue.utf8)
        out.append(contentsOf: #""}"#.utf8)
        return out
    }

    /// The destination written at the start of a pixel id the edge issued (`7001-3f2a...`); nil for other ids.
    static func destination(inPixelID id: String) -> Int? {
        guard let dash = id.firstIndex(of: "-") else { return nil }
        return Int(id[..<dash])
    }
}
