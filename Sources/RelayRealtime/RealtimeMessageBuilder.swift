import Crypto
import RelayCore
import RelayEncoding
import RelayRuntime

/// Writes the body of a realtime message (SPEC §4) and its `X-Relay-Message-Id`.
///
/// The body is compact JSON with the keys in the order of the specification and every value a string. The same
/// users and process time give the same bytes. The message id depends only on the destination and the source
/// positions of the users, so a retry or a replay of the same offsets carries the same id.
public struct RealtimeMessageBuilder: Sendable {
    public let destinationID: Int
    public let userDPID: Int
    public let clientID: String

    public init(destinationID: Int, userDPID: Int, clientID: String) {
        self.destinationID = destinationID
        self.userDPID = userDPID
        self.clientID = clientID
    }

    public init(destination: Destination, settings: RealtimeSettings) {
        self.init(destinationID: destination.id, userDPID: settings.userDPID, clientID: settings.clientID)
    }

    /// The JSON body for `users`, stamped `ProcessTime` = `processTime` (ms since the epoch).
    public func body(users: [RealtimeUser], processTime: Int64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(envelopeBytes + users.reduce(users.count) { $0 + $1.json.count })
        appendEnvelopeHead(userCount: users.count, processTime: processTime, to: &out)
        for (index, user) in users.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: user.json)
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }

    /// Bytes of a body besides its users' entries and the commas between them, at most (a `User_count` of up to
    /// 20 digits).
    public var envelopeBytes: Int {
        var out: [UInt8] = []
        appendEnvelopeHead(userCount: 0, processTime: 0, to: &out)
        return out.count + 19 + 2
    }

    /// Everything before the first user: `{"ProcessTime":…,"Users":[`.
    private func appendEnvelopeHead(userCount: Int, processTime: Int64, to out: inout [UInt8]) {
        out.append(contentsOf: #"{"ProcessTime":"#.utf8)
        out.append(UInt8(ascii: "\""))
        Timestamps.appendISO8601(milliseconds: processTime, to: &out)
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: #","User_DPID":"#.utf8)
        JSONWriter.appendString(String(userDPID), to: &out)
        out.append(contentsOf: #","Client_ID":"#.utf8)
        JSONWriter.appendString(clientID, to: &out)
        out.append(contentsOf: #","AAM_Destination_Id":"#.utf8)
        JSONWriter.appendString(String(destinationID), to: &out)
        out.append(contentsOf: #","User_count":"#.utf8)
        JSONWriter.appendString(String(userCount), to: &out)
        out.append(contentsOf: #","Users":["#.utf8)
    }

    /// One entry of `Users`. It depends on the user alone (the destination's mapping and `user_dpid` already chose
    /// its segments and id), so ``RealtimeUser`` writes it once.
    static func userJSON(uuid: String, partnerID: String, region: Int?, timestamp: Int64,
                         segments: [MappedSegment]) -> [UInt8]
    {
        var out: [UInt8] = []
        out.reserveCapacity(96 + uuid.utf8.count + partnerID.utf8.count + segments.count * 80)
        out.append(contentsOf: #"{"AAM_UUID":"#.utf8)
        JSONWriter.appendString(uuid, to: &out)
        out.append(contentsOf: #","DataPartner_UUID":"#.utf8)
        JSONWriter.appendString(partnerID, to: &out)
        out.append(contentsOf: #","AAM_Regions":["#.utf8)
        if let region { JSONWriter.appendString(String(region), to: &out) }
        out.append(contentsOf: #"],"Segments":["#.utf8)
        for (segmentIndex, segment) in segments.enumerated() {
            if segmentIndex > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"Segment_ID":"#.utf8)
            JSONWriter.appendString(segment.alias, to: &out)
            out.append(contentsOf: segment.realized ? #","Status":"1","DateTime":"#.utf8 : #","Status":"0","DateTime":"#.utf8)
            out.append(UInt8(ascii: "\""))
            Timestamps.appendISO8601(milliseconds: timestamp, to: &out)
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }

    /// 32 hex digits of SHA-256 over the destination id and the users' sources (`topic/partition/offset`).
    public func messageID(topic: String, partition: Int32, offsets: [Int64]) -> String {
        var input = Array("relay-realtime|\(destinationID)|\(topic)|\(partition)".utf8)
        input.reserveCapacity(input.count + offsets.count * 9)
        for offset in offsets {
            input.append(UInt8(ascii: "|"))
            JSONWriter.appendInt64(offset, to: &input)
        }
        return Hex.lower(SHA256.hash(data: input).prefix(16))
    }
}
