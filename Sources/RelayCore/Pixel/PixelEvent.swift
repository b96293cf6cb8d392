import RelayEncoding

/// A pixel fired or received (SPEC §6), on `kafka.topics.pixel_events` keyed by `pixel_id`:
/// `{"type", "pixel_id", "destination_id", "uuid", "ts", "aliases", "url" (fired only), "source"}`.
///
/// The edge writes them and the audit reads them: this type and its codec are the contract between the two.
public struct PixelEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case fired, received
    }

    public enum Source: String, Sendable, Hashable, CaseIterable {
        case edge, redirect, beacon, partner
    }

    public var kind: Kind
    public var pixelID: String
    /// For a receipt that does not say: the destination in the pixel id (`<destination id>-<random>`), else 0.
    public var destinationID: Int64
    /// Empty when a receipt does not say (a bare beacon, a partner's list of ids).
    public var uuid: String
    /// Milliseconds since the epoch: when the pixel was fired or received. Windows are cut by this time.
    public var ts: Int64
    public var aliases: [String]
    /// The partner URL handed to the page (fired events only).
    public var url: String?
    /// Who saw it; nil when a record does not say (the join does not need it).
    public var source: Source?

    public init(kind: Kind, pixelID: String, destinationID: Int64, uuid: String, ts: Int64, aliases: [String] = [],
                url: String? = nil, source: Source?)
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

    /// The canonical JSON: fields in SPEC order, `url` on fired events only (when it has one).
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + pixelID.utf8.count + uuid.utf8.count + (url?.utf8.count ?? 0) + aliases.count * 16)
        JSONWriter.appendASCII(#"{"type":""#, to: &out)
        out.append(contentsOf: kind.rawValue.utf8)
        JSONWriter.appendASCII(#"","pixel_id":"#, to: &out)
        JSONWriter.appendString(pixelID, to: &out)
        JSONWriter.appendASCII(#","destination_id":"#, to: &out)
        JSONWriter.appendInt64(destinationID, to: &out)
        JSONWriter.appendASCII(#","uuid":"#, to: &out)
        JSONWriter.appendString(uuid, to: &out)
        JSONWriter.appendASCII(#","ts":"#, to: &out)
        JSONWriter.appendInt64(ts, to: &out)
        JSONWriter.appendASCII(#","aliases":["#, to: &out)
        for (index, alias) in aliases.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(alias, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        // Only what the event has: a fired event read without `url` is written back without one, not with "".
        if kind == .fired, let url {
            JSONWriter.appendASCII(#","url":"#, to: &out)
            JSONWriter.appendString(url, to: &out)
        }
        if let source {
            JSONWriter.appendASCII(#","source":""#, to: &out)
            out.append(contentsOf: source.rawValue.utf8)
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Decodes the JSON of SPEC §6, strictly: the whole document must be valid JSON and UTF-8, a known key may appear
    /// once, `type`, `pixel_id`, `destination_id` and `ts` are required; unknown keys are skipped.
    public static func decode(_ bytes: [UInt8]) throws(MalformedPixelEvent) -> PixelEvent {
        try JSONScanner.scan(bytes) { scanner throws(MalformedInput) in
            var decoding = PixelEventDecoding(scanner, materialize: true)
            let fields = try decoding.run()
            return PixelEvent(kind: fields.kind, pixelID: fields.pixelID ?? "", destinationID: fields.destinationID,
                              uuid: fields.uuid ?? "", ts: fields.ts, aliases: fields.aliases, url: fields.url,
                              source: fields.source)
        }
    }

    /// The destination written at the start of a pixel id the edge issued (`7001-3f2a...`); nil for other ids.
    public static func destination(inPixelID id: String) -> Int64? {
        guard let dash = id.firstIndex(of: "-") else { return nil }
        return Int64(id[..<dash])
    }
}

/// Why a pixel event could not be read; the record is dead-lettered with this reason.
public typealias MalformedPixelEvent = MalformedInput

/// What the audit's join needs of one pixel event: the whole document is validated as strictly as by
/// ``PixelEvent/decode(_:)``, but only these fields are kept, and the pixel id only as its hash.
public struct PixelSighting: Sendable, Hashable {
    public var kind: PixelEvent.Kind
    public var key: PixelKey
    public var destinationID: Int64
    public var ts: Int64

    public init(kind: PixelEvent.Kind, key: PixelKey, destinationID: Int64, ts: Int64) {
        self.kind = kind
        self.key = key
        self.destinationID = destinationID
        self.ts = ts
    }

    public init(_ event: PixelEvent) {
        self.init(kind: event.kind, key: PixelKey(event.pixelID), destinationID: event.destinationID, ts: event.ts)
    }

    public static func decode(_ bytes: [UInt8]) throws(MalformedPixelEvent) -> PixelSighting {
        try decode(bytes[...])
    }

    /// For a record's value, a view into its batch's bytes.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(MalformedPixelEvent) -> PixelSighting {
        try JSONScanner.scan(bytes) { scanner throws(MalformedInput) in
            var decoding = PixelEventDecoding(scanner, materialize: false)
            let fields = try decoding.run()
            return PixelSighting(kind: fields.kind, key: fields.key, destinationID: fields.destinationID,
                                 ts: fields.ts)
        }
    }
}
