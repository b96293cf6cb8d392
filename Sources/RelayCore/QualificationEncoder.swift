import RelayEncoding

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
        JSONWriter.appendASCII("{\"event_id\":", to: &out)
        JSONWriter.appendString(qualification.eventID, to: &out)
        JSONWriter.appendASCII(",\"uuid\":", to: &out)
        JSONWriter.appendString(qualification.uuid, to: &out)
        JSONWriter.appendASCII(",\"ts\":", to: &out)
        JSONWriter.appendInteger(qualification.timestamp, to: &out)
        if let region = qualification.region {
            JSONWriter.appendASCII(",\"region\":", to: &out)
            JSONWriter.appendInteger(Int64(region), to: &out)
        }
        JSONWriter.appendASCII(",\"segments\":[", to: &out)
        for (index, segment) in qualification.segments.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendASCII("{\"id\":", to: &out)
            JSONWriter.appendInteger(segment.id, to: &out)
            JSONWriter.appendASCII(segment.realized ? ",\"status\":1}" : ",\"status\":0}", to: &out)
        }
        out.append(UInt8(ascii: "]"))
        if !qualification.partnerIDs.isEmpty {
            JSONWriter.appendASCII(",\"partner_ids\":{", to: &out)
            for (index, entry) in qualification.partnerIDs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(entry.dpid, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONWriter.appendString(entry.id, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
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
