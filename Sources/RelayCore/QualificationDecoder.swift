import RelayEncoding

import Foundation

/// Decodes and validates qualification events (SPEC §2) on the hot path of every worker.
///
/// A hand-written scanner rather than `JSONDecoder`: it reads the bytes once, allocates only the values it keeps,
/// and still accepts exactly RFC 8259 JSON in valid UTF-8. Every rule of §2 is checked; the first problem found (in
/// document order, then missing required fields) becomes ``MalformedEvent/reason``, e.g.
/// `segments[3].id: must be an integer > 0`. Invalid JSON or UTF-8 is reported as soon as it is met.
///
/// Choices where §2 is silent:
/// - A key of the event that appears twice (`uuid`, `segments[0].id`, `partner_ids.20915`, …) is rejected rather
///   than "last wins": other readers of the same bytes might pick the other value. Repeated unknown keys are
///   ignored with everything else unknown.
/// - A segment id listed twice in `segments` is rejected: the user's state would be ambiguous.
/// - `status` is required and must be `0` or `1`; integers must be written without fraction or exponent.
/// - `ts` must not be negative. `region: null` and `partner_ids: null` count as absent.
/// - A partner id must be a non-empty string. Lengths count Unicode scalars.
public enum QualificationDecoder {
    public static let maxSegments = 10_000
    public static let maxEventIDLength = 128
    public static let maxUUIDLength = 64

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(MalformedEvent) -> Qualification {
        var decoding = Decoding(scanner: JSONScanner(bytes))
        return try decoding.run()
    }

    public static func decode(_ bytes: [UInt8]) throws(MalformedEvent) -> Qualification {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(MalformedEvent) in try decode(buffer) }
        }
        return try result.get()
    }

    /// For a record's value, a view into its batch's bytes.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(MalformedEvent) -> Qualification {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(MalformedEvent) in try decode(buffer) }
        }
        return try result.get()
    }

    /// For `Data`, `ByteBuffer` views and anything else that can lend its bytes.
    public static func decode(_ bytes: some ContiguousBytes) throws(MalformedEvent) -> Qualification {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(MalformedEvent) in try decode(buffer) }
        }
        return try result.get()
    }

    public static func decode(_ text: String) throws(MalformedEvent) -> Qualification {
        try decode(Array(text.utf8))
    }
}

/// One decoding pass: the scanner plus the first rule violation found so far.
///
/// Rule violations are kept rather than thrown so that the rest of the document is still checked: a document that
/// is not JSON at all is reported as such, whatever else is wrong with it.
private struct Decoding {
    var scanner: JSONScanner
    var problem: String?

    init(scanner: JSONScanner) {
        self.scanner = scanner
    }

    mutating func report(_ message: @autoclosure () -> String) {
        if problem == nil { problem = message() }
    }

    mutating func run() throws(MalformedEvent) -> Qualification {
        scanner.skipWhitespace()
        if scanner.isAtEnd { throw scanner.syntaxError("empty input") }
        guard scanner.next == UInt8(ascii: "{") else {
            let kind = try scanner.skipValue(depth: 1)
            try finish()
            throw MalformedEvent("event: must be a JSON object, not \(kind.article) \(kind.rawValue)")
        }

        var eventID: String?
        var uuid: String?
        var timestamp: Int64?
        var region: Int?
        var segments: [SegmentState]?
        var partnerIDs = PartnerIDs()
        var seen: UInt8 = 0  // one bit per TopKey: no allocation on the hot path

        if try scanner.beginObject() {
            repeat {
                let raw = try scanner.objectKey()
                guard let key = TopKey(raw, in: scanner) else {
                    try scanner.skipValue(depth: 2)
                    continue
                }
                if seen & key.bit != 0 {
                    report("\(key.rawValue): duplicate key")
                    try scanner.skipValue(depth: 2)
                    continue
                }
                seen |= key.bit
                switch key {
                case .eventID: eventID = try readEventID()
                case .uuid: uuid = try readUUID()
                case .ts: timestamp = try readTimestamp()
                case .region: region = try readRegion()
                case .segments: segments = try readSegments()
                case .partnerIDs: partnerIDs = try readPartnerIDs()
                }
            } while try scanner.nextMember()
        }
        try finish()

        if let problem { throw MalformedEvent(problem) }
        for key in [TopKey.eventID, .uuid, .ts, .segments] where seen & key.bit == 0 {
            throw MalformedEvent("\(key.rawValue): required")
        }
        guard let eventID, let uuid, let timestamp, let segments else {
            // Unreachable: a field that was seen either has a value or reported a problem.
            throw MalformedEvent("event: incomplete")
        }
        if let duplicate = Self.firstDuplicate(in: segments) {
            throw MalformedEvent(
                "segments[\(duplicate.later)].id: duplicate segment \(segments[duplicate.later].id) "
                    + "(also segments[\(duplicate.earlier)])")
        }
        return Qualification(
            eventID: eventID, uuid: uuid, timestamp: timestamp, region: region, segments: segments,
            partnerIDs: partnerIDs)
    }

    /// Only whitespace may follow the top-level value.
    private mutating func finish() throws(MalformedEvent) {
        scanner.skipWhitespace()
        guard scanner.isAtEnd else { throw scanner.syntaxError("unexpected data after the JSON value") }
    }

    // MARK: Fields

    private mutating func readEventID() throws(MalformedEvent) -> String? {
        guard scanner.next == UInt8(ascii: "\"") else {
            try scanner.skipValue(depth: 2)
            report("event_id: must be a string")
            return nil
        }
        let raw = try scanner.scanString()
        guard (1...QualificationDecoder.maxEventIDLength).contains(raw.scalarCount) else {
            report("event_id: must be 1-\(QualificationDecoder.maxEventIDLength) characters")
            return nil
        }
        return scanner.string(raw)
    }

    private mutating func readUUID() throws(MalformedEvent) -> String? {
        guard scanner.next == UInt8(ascii: "\"") else {
            try scanner.skipValue(depth: 2)
            report("uuid: must be a string")
            return nil
        }
        let raw = try scanner.scanString()
        let valid = scanner.withContent(raw) { content in
            (1...QualificationDecoder.maxUUIDLength).contains(content.count) && content.allSatisfy(isUUIDByte)
        }
        guard valid else {
            report("uuid: must be 1-\(QualificationDecoder.maxUUIDLength) characters of [0-9A-Za-z_-]")
            return nil
        }
        return scanner.string(raw)
    }

    private mutating func readTimestamp() throws(MalformedEvent) -> Int64? {
        let value = try readInteger()
        guard let value, value >= 0 else {
            report("ts: must be a non-negative integer (ms since the epoch)")
            return nil
        }
        return value
    }

    private mutating func readRegion() throws(MalformedEvent) -> Int? {
        if scanner.consumeNull() { return nil }
        guard let value = try readInteger(), let region = Int(exactly: value) else {
            report("region: must be an integer")
            return nil
        }
        return region
    }

    /// An integer value, or `nil` (having skipped the value) for anything else.
    private mutating func readInteger() throws(MalformedEvent) -> Int64? {
        guard scanner.nextKind == .number else {
            try scanner.skipValue(depth: 2)
            return nil
        }
        return try scanner.scanNumber().integer
    }

    private mutating func readSegments() throws(MalformedEvent) -> [SegmentState]? {
        guard scanner.next == UInt8(ascii: "[") else {
            try scanner.skipValue(depth: 2)
            report("segments: must be an array")
            return nil
        }
        var segments: [SegmentState] = []
        // Events list a handful of segments: one allocation instead of regrowing from 1.
        segments.reserveCapacity(8)
        var index = 0
        if try scanner.beginArray() {
            repeat {
                if index < QualificationDecoder.maxSegments {
                    if let segment = try readSegment(index) { segments.append(segment) }
                } else {
                    if index == QualificationDecoder.maxSegments {
                        report("segments: more than \(QualificationDecoder.maxSegments) entries")
                    }
                    try scanner.skipValue(depth: 3)
                }
                index += 1
            } while try scanner.nextElement()
        }
        return segments
    }

    private mutating func readSegment(_ index: Int) throws(MalformedEvent) -> SegmentState? {
        guard scanner.next == UInt8(ascii: "{") else {
            try scanner.skipValue(depth: 3)
            report("segments[\(index)]: must be an object")
            return nil
        }
        var id: Int64?
        var realized: Bool?
        var seenID = false
        var seenStatus = false
        if try scanner.beginObject() {
            repeat {
                let key = try scanner.objectKey()
                if scanner.equals(key, "id") {
                    if seenID { report("segments[\(index)].id: duplicate key") }
                    seenID = true
                    let value = try readSegmentInteger()
                    if let value, value > 0 {
                        id = value
                    } else {
                        report("segments[\(index)].id: must be an integer > 0")
                    }
                } else if scanner.equals(key, "status") {
                    if seenStatus { report("segments[\(index)].status: duplicate key") }
                    seenStatus = true
                    switch try readSegmentInteger() {
                    case 1: realized = true
                    case 0: realized = false
                    default: report("segments[\(index)].status: must be 0 or 1")
                    }
                } else {
                    try scanner.skipValue(depth: 4)
                }
            } while try scanner.nextMember()
        }
        if !seenID { report("segments[\(index)].id: required") }
        if !seenStatus { report("segments[\(index)].status: required") }
        guard let id, let realized else { return nil }
        return SegmentState(id: id, realized: realized)
    }

    private mutating func readSegmentInteger() throws(MalformedEvent) -> Int64? {
        guard scanner.nextKind == .number else {
            try scanner.skipValue(depth: 4)
            return nil
        }
        return try scanner.scanNumber().integer
    }

    private mutating func readPartnerIDs() throws(MalformedEvent) -> PartnerIDs {
        if scanner.consumeNull() { return PartnerIDs() }
        guard scanner.next == UInt8(ascii: "{") else {
            try scanner.skipValue(depth: 2)
            report("partner_ids: must be an object")
            return PartnerIDs()
        }
        var entries: [PartnerIDs.Entry] = []
        entries.reserveCapacity(4)
        // Past a handful of entries, a set keeps the duplicate check linear.
        var seen: Set<String>?
        if try scanner.beginObject() {
            repeat {
                let rawKey = try scanner.objectKey()
                let isDigits = scanner.withContent(rawKey) { content in
                    !content.isEmpty && content.allSatisfy { $0 &- UInt8(ascii: "0") < 10 }
                }
                guard isDigits else {
                    report("partner_ids: keys must be digits")
                    try scanner.skipValue(depth: 3)
                    continue
                }
                let dpid = scanner.string(rawKey)
                let duplicate: Bool
                if var set = seen {
                    duplicate = !set.insert(dpid).inserted
                    seen = set
                } else {
                    duplicate = entries.contains { $0.dpid == dpid }
                    if entries.count >= 16 { seen = Set(entries.map(\.dpid)) }
                }
                guard scanner.next == UInt8(ascii: "\"") else {
                    try scanner.skipValue(depth: 3)
                    report("partner_ids.\(dpid): must be a string")
                    continue
                }
                let rawValue = try scanner.scanString()
                if duplicate {
                    report("partner_ids.\(dpid): duplicate key")
                } else if rawValue.scalarCount == 0 {
                    report("partner_ids.\(dpid): must not be empty")
                } else if scanner.withContent(rawValue, { $0.contains(where: isIDSeparatorOrControl) }) {
                    // An id is written raw into batch lines (`<id> <aliases>`): a space, comma or line break would
                    // let one event forge another user's line.
                    report("partner_ids.\(dpid): must not contain spaces, commas or control characters")
                } else {
                    entries.append(PartnerIDs.Entry(dpid: dpid, id: scanner.string(rawValue)))
                }
            } while try scanner.nextMember()
        }
        return PartnerIDs(entries)
    }

    // MARK: Helpers

    /// The first repeated segment id: a quadratic scan for short lists, a dictionary for long ones.
    static func firstDuplicate(in segments: [SegmentState]) -> (earlier: Int, later: Int)? {
        if segments.count <= 16 {
            for later in segments.indices {
                for earlier in 0..<later where segments[earlier].id == segments[later].id {
                    return (earlier, later)
                }
            }
            return nil
        }
        var first: [Int64: Int] = Dictionary(minimumCapacity: segments.count)
        for (index, segment) in segments.enumerated() {
            if let earlier = first.updateValue(index, forKey: segment.id) { return (earlier, index) }
        }
        return nil
    }
}

/// Bytes an id may not hold: control characters, space, DEL and the batch list separator.
private func isIDSeparatorOrControl(_ byte: UInt8) -> Bool {
    byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: ",")
}

private func isUUIDByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"), UInt8(ascii: "-"):
        true
    default:
        false
    }
}

/// The top-level keys of an event.
private enum TopKey: String, CaseIterable {
    case eventID = "event_id"
    case uuid
    case ts
    case region
    case segments
    case partnerIDs = "partner_ids"

    var bit: UInt8 {
        switch self {
        case .eventID: 1
        case .uuid: 2
        case .ts: 4
        case .region: 8
        case .segments: 16
        case .partnerIDs: 32
        }
    }

    init?(_ raw: JSONScanner.RawString, in scanner: JSONScanner) {
        if scanner.equals(raw, "uuid") {
            self = .uuid
        } else if scanner.equals(raw, "ts") {
            self = .ts
        } else if scanner.equals(raw, "segments") {
            self = .segments
        } else if scanner.equals(raw, "event_id") {
            self = .eventID
        } else if scanner.equals(raw, "partner_ids") {
            self = .partnerIDs
        } else if scanner.equals(raw, "region") {
            self = .region
        } else {
            return nil
        }
    }
}

extension JSONScanner.Kind {
    fileprivate var article: String { self == .array || self == .object ? "an" : "a" }
}
