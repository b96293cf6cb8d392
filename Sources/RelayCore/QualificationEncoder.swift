/// Writes the canonical JSON form of a qualification event: the fields in SPEC §2 order (`event_id`, `uuid`, `ts`,
/// `region`, `segments`, `partner_ids`), no whitespace, `region` and `partner_ids` left out when absent/empty,
/// partner ids in their stored order. Strings escape only what JSON requires (`"`, `\`, control characters).
///
/// The encoder writes what it is given; it does not validate (tests use it to build malformed events too).
public enum QualificationEncoder {
    public static func encode(_ qualification: Qualification) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(96 + qualification.segments.count * 24 + qualification.partnerIDs.count * 56)
        encode(qualification, into: &out)
        return out
    }

    /// Appends to `out`, so that a producer can reuse one buffer.
    public static func encode(_ qualification: Qualification, into out: inout [UInt8]) {
        appendASCII("{\"event_id\":", to: &out)
        appendString(qualification.eventID, to: &out)
        appendASCII(",\"uuid\":", to: &out)
        appendString(qualification.uuid, to: &out)
        appendASCII(",\"ts\":", to: &out)
        appendInteger(qualification.timestamp, to: &out)
        if let region = qualification.region {
            appendASCII(",\"region\":", to: &out)
            appendInteger(Int64(region), to: &out)
        }
        appendASCII(",\"segments\":[", to: &out)
        for (index, segment) in qualification.segments.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendASCII("{\"id\":", to: &out)
            appendInteger(segment.id, to: &out)
            appendASCII(segment.realized ? ",\"status\":1}" : ",\"status\":0}", to: &out)
        }
        out.append(UInt8(ascii: "]"))
        if !qualification.partnerIDs.isEmpty {
            appendASCII(",\"partner_ids\":{", to: &out)
            for (index, entry) in qualification.partnerIDs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(entry.dpid, to: &out)
                out.append(UInt8(ascii: ":"))
                appendString(entry.id, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    // MARK: JSON pieces (shared with other writers in this module)

    static func appendASCII(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// A JSON string literal, quotes included.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): appendASCII("\\\"", to: &out)
            case UInt8(ascii: "\\"): appendASCII("\\\\", to: &out)
            case 0x0A: appendASCII("\\n", to: &out)
            case 0x0D: appendASCII("\\r", to: &out)
            case 0x09: appendASCII("\\t", to: &out)
            case 0x08: appendASCII("\\b", to: &out)
            case 0x0C: appendASCII("\\f", to: &out)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                appendASCII("\\u00", to: &out)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }
}

extension Qualification {
    /// The canonical JSON of this event (see ``QualificationEncoder``).
    public func jsonBytes() -> [UInt8] {
        QualificationEncoder.encode(self)
    }

    public func jsonString() -> String {
        String(decoding: jsonBytes(), as: UTF8.self)
    }
}
