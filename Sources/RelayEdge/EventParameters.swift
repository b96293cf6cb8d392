import HTTPTypes

/// The parameters of one `/event` call (SPEC §6), validated. Every refusal has a fixed message that never repeats
/// the caller's input.
struct EventParameters: Equatable {
    var uuid: String
    var json: Bool
    var dests: Bool

    static let maxQueryBytes = 8 * 1_024
    static let maxBodyBytes = 32 * 1_024

    struct Refusal: Error, Equatable {
        var status: HTTPResponse.Status
        var message: String

        static func badRequest(_ message: String) -> Refusal { Refusal(status: .badRequest, message: message) }
    }

    /// - Parameters:
    ///   - form: the decoded pairs of the query (GET) or of the query and the body (POST).
    ///   - cookieHeader: the `Cookie` header(s), for `aam_uuid`.
    static func parse(_ form: [(String, String)], cookieHeader: String?) throws(Refusal) -> EventParameters {
        // The three names this call reads; any other is ignored.
        var given: (uuid: String?, rtbd: String?, dst: String?) = (nil, nil, nil)
        func keep(_ value: String, as name: String, in slot: inout String?) throws(Refusal) {
            if let earlier = slot, earlier != value {
                throw .badRequest("\(name) is given more than once with different values")
            }
            slot = value
        }
        for (name, value) in form {
            switch name {
            case "d_uuid": try keep(value, as: name, in: &given.uuid)
            case "d_rtbd": try keep(value, as: name, in: &given.rtbd)
            case "d_dst": try keep(value, as: name, in: &given.dst)
            default: continue
            }
        }
        let uuid: String
        if let named = given.uuid {
            guard isValidUUID(named) else { throw .badRequest("d_uuid must be 1-64 characters of [0-9A-Za-z_-]") }
            uuid = named
        } else if let cookie = cookieHeader.flatMap({ cookieValue(named: "aam_uuid", in: $0) }) {
            guard isValidUUID(cookie) else {
                throw .badRequest("the aam_uuid cookie must be 1-64 characters of [0-9A-Za-z_-]")
            }
            uuid = cookie
        } else {
            throw .badRequest("d_uuid is required (or the aam_uuid cookie)")
        }
        let json: Bool
        switch given.rtbd {
        case nil: json = false
        case "json"?: json = true
        default: throw .badRequest("d_rtbd must be json (or left out for the 1x1 GIF)")
        }
        let dests: Bool
        switch given.dst {
        case nil, "0"?: dests = false
        case "1"?: dests = true
        default: throw .badRequest("d_dst must be 0 or 1")
        }
        return EventParameters(uuid: uuid, json: json, dests: dests)
    }

    static func isValidUUID(_ text: String) -> Bool {
        let utf8 = text.utf8
        return !utf8.isEmpty && utf8.count <= 64 && utf8.allSatisfy(isIDByte)
    }

    /// `[0-9A-Za-z_-]`: the characters of user ids and pixel ids.
    static func isIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    /// The value of the first cookie called `name` in a `Cookie` header (`a=1; b=2`), quotes removed.
    static func cookieValue(named name: String, in header: String) -> String? {
        for part in header.split(separator: ";") {
            let trimmed = part.drop(while: { $0 == " " || $0 == "\t" })
            guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == name else { continue }
            var value = trimmed[trimmed.index(after: equals)...]
            while value.last == " " || value.last == "\t" { value = value.dropLast() }
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            return String(value)
        }
        return nil
    }

    /// `host[:port]` from a `Host` header when it is a plausible host name or address; nil otherwise, so that
    /// nothing odd is echoed into the URLs the edge hands out.
    static func sanitizedHost(_ authority: String?) -> String? {
        guard let authority, !authority.isEmpty, authority.utf8.count <= 255 else { return nil }
        let allowed = authority.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: ":"),
                UInt8(ascii: "["), UInt8(ascii: "]"):
                true
            default: false
            }
        }
        return allowed ? authority : nil
    }

    /// The host part of `host[:port]` (brackets of an IPv6 address kept).
    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[...close])
        }
        return String(authority.split(separator: ":", maxSplits: 1).first ?? "")
    }
}
