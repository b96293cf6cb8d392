import Crypto
import RelayCore
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
        out.reserveCapacity(160 + users.count * 200)
        out.append(contentsOf: #"{"ProcessTime":"#.utf8)
        out.append(UInt8(ascii: "\""))
        Self.appendISO8601(milliseconds: processTime, to: &out)
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: #","User_DPID":"#.utf8)
        Self.appendString(String(userDPID), to: &out)
        out.append(contentsOf: #","Client_ID":"#.utf8)
        Self.appendString(clientID, to: &out)
        out.append(contentsOf: #","AAM_Destination_Id":"#.utf8)
        Self.appendString(String(destinationID), to: &out)
        out.append(contentsOf: #","User_count":"#.utf8)
        Self.appendString(String(users.count), to: &out)
        out.append(contentsOf: #","Users":["#.utf8)
        for (index, user) in users.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"AAM_UUID":"#.utf8)
            Self.appendString(user.uuid, to: &out)
            out.append(contentsOf: #","DataPartner_UUID":"#.utf8)
            Self.appendString(user.partnerID, to: &out)
            out.append(contentsOf: #","AAM_Regions":["#.utf8)
            if let region = user.region { Self.appendString(String(region), to: &out) }
            out.append(contentsOf: #"],"Segments":["#.utf8)
            for (segmentIndex, segment) in user.segments.enumerated() {
                if segmentIndex > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: #"{"Segment_ID":"#.utf8)
                Self.appendString(segment.alias, to: &out)
                out.append(contentsOf: segment.realized ? #","Status":"1","DateTime":"#.utf8 : #","Status":"0","DateTime":"#.utf8)
                out.append(UInt8(ascii: "\""))
                Self.appendISO8601(milliseconds: user.timestamp, to: &out)
                out.append(UInt8(ascii: "\""))
                out.append(UInt8(ascii: "}"))
            }
            out.append(contentsOf: "]}".utf8)
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
            Self.appendDecimal(offset, to: &input)
        }
        let digest = SHA256.hash(data: input)
        let hex: [Character] = Array("0123456789abcdef")
        var id = ""
        id.reserveCapacity(32)
        for byte in digest.prefix(16) {
            id.append(hex[Int(byte >> 4)])
            id.append(hex[Int(byte & 0xF)])
        }
        return id
    }

    /// `2026-11-29T20:13:16Z` (seconds, UTC), as ``Timestamps/iso8601(milliseconds:)`` writes it, without
    /// formatting through Foundation (this runs for every user of every message).
    static func appendISO8601(milliseconds: Int64, to out: inout [UInt8]) {
        var seconds = milliseconds / 1000
        if milliseconds < 0, milliseconds % 1000 != 0 { seconds -= 1 }
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondsOfDay = seconds - days * 86_400
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else {
            out.append(contentsOf: Timestamps.iso8601(milliseconds: milliseconds).utf8)
            return
        }
        func two(_ value: Int64) {
            out.append(UInt8(ascii: "0") + UInt8(value / 10))
            out.append(UInt8(ascii: "0") + UInt8(value % 10))
        }
        two(year / 100)
        two(year % 100)
        out.append(UInt8(ascii: "-"))
        two(month)
        out.append(UInt8(ascii: "-"))
        two(day)
        out.append(UInt8(ascii: "T"))
        two(secondsOfDay / 3600)
        out.append(UInt8(ascii: ":"))
        two(secondsOfDay / 60 % 60)
        out.append(UInt8(ascii: ":"))
        two(secondsOfDay % 60)
        out.append(UInt8(ascii: "Z"))
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            out.append(contentsOf: String(value.magnitude).utf8)
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }

    /// A JSON string literal (quotes, escapes for `"`, `\` and control characters; other UTF-8 as is).
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
