import RelayCore
import RelayEncoding

/// What `/event` answers for one user (SPEC §6), built straight into bytes.
struct EventAnswer {
    /// The JSON body (empty when the GIF is asked for).
    var body: [UInt8] = []
    /// `Set-Cookie` values for cookie destinations with `set_cookie: true`.
    var setCookies: [String] = []
    /// One `fired` event per dest handed out.
    var pixels: [PixelEvent] = []

    struct Request {
        var uuid: String
        var json: Bool
        var dests: Bool
        /// `host[:port]` the page reached the edge at, for the edge's own `/px` URLs.
        var edgeHost: String
        /// The domain for cookie destinations without `domain`.
        var cookieDomain: String
    }

    static func make(_ request: Request, user: UserState?, catalog: EdgeCatalog, signer: PixelSigner?,
                     now: Int64, random: inout some RandomNumberGenerator) -> EventAnswer
    {
        var answer = EventAnswer()
        let segments = user?.segments ?? []
        var out: [UInt8] = []
        if request.json {
            out.reserveCapacity(512)
            out.append(contentsOf: #"{"uuid":"#.utf8)
            JSONWriter.appendString(request.uuid, htmlSafe: true, to: &out)
            out.append(contentsOf: #","dcs_region":"#.utf8)
            if let region = user?.region { JSONWriter.appendInteger(region, to: &out) } else { out.append(contentsOf: "null".utf8) }
            out.append(contentsOf: #","tid":""#.utf8)
            out.append(contentsOf: transactionID(&random))
            out.append(contentsOf: #"","stuff":["#.utf8)
        }
        var first = true
        for cookie in catalog.cookies {
            let aliases = EdgeCatalog.aliases(cookie.table, segments: segments, at: now)
            guard let value = CookieValue.make(cookie.settings, aliases: aliases) else { continue }
            if cookie.settings.setCookie { answer.setCookies.append(CookieValue.setCookieHeader(cookie.settings, value: value)) }
            guard request.json else { continue }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(contentsOf: #"{"cn":"#.utf8)
            JSONWriter.appendString(cookie.settings.cookieName, htmlSafe: true, to: &out)
            out.append(contentsOf: #","cv":"#.utf8)
            JSONWriter.appendString(value, htmlSafe: true, to: &out)
            out.append(contentsOf: #","ttl":"#.utf8)
            JSONWriter.appendInteger(cookie.settings.ttlDays, to: &out)
            out.append(contentsOf: #","dmn":"#.utf8)
            JSONWriter.appendString(cookie.settings.domain ?? request.cookieDomain, htmlSafe: true, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        if request.json { out.append(contentsOf: #"],"dests":["#.utf8) }
        first = true
        if request.dests {
            for destination in catalog.urls {
                let aliases = EdgeCatalog.aliases(destination.table, segments: segments, at: now)
                guard !aliases.isEmpty else { continue }
                let groups: [[String]] = destination.settings.serialize == nil ? aliases.map { [$0] } : [aliases]
                for group in groups {
                    guard let dest = makeDest(destination, aliases: group, request: request, user: user,
                                              signer: signer, now: now, random: &random)
                    else { continue }
                    answer.pixels.append(dest.pixel)
                    guard request.json else { continue }
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    out.append(contentsOf: #"{"c":"#.utf8)
                    JSONWriter.appendString(dest.url, htmlSafe: true, to: &out)
                    out.append(contentsOf: #","e":"#.utf8)
                    JSONWriter.appendString(dest.secureURL, htmlSafe: true, to: &out)
                    out.append(contentsOf: #","y":"img","id":"#.utf8)
                    JSONWriter.appendInteger(destination.id, to: &out)
                    out.append(UInt8(ascii: "}"))
                }
            }
        }
        if request.json { out.append(contentsOf: "]}".utf8) }
        answer.body = out
        return answer
    }

    private static func makeDest(
        _ destination: EdgeCatalog.URLDestination, aliases: [String], request: Request, user: UserState?,
        signer: PixelSigner?, now: Int64, random: inout some RandomNumberGenerator
    ) -> (url: String, secureURL: String, pixel: PixelEvent)? {
        var encodedAlias: [UInt8] = []
        for (index, alias) in aliases.enumerated() {
            if index > 0, let delimiter = destination.settings.serialize?.delimiter {
                // The delimiter is configuration, not user input; separators common in query strings stay as they are.
                PercentEncoding.append(delimiter, keep: { ",;|:".utf8.contains($0) }, to: &encodedAlias)
            }
            PercentEncoding.append(alias, to: &encodedAlias)
        }
        var values = URLTemplate.Values(
            encodedAlias: String(decoding: encodedAlias, as: UTF8.self), uuid: request.uuid,
            random: UInt32.random(in: 0...UInt32.max, using: &random), timestamp: now, region: user?.region,
            secure: false, partnerIDs: user?.partnerIDs ?? [])
        guard let url = destination.url.render(values) else { return nil }
        values.secure = true
        guard let secureURL = destination.secureURL.render(values) else { return nil }
        let pixelID = pixelID(destination: destination.id, &random)
        let pixel = PixelEvent(kind: .fired, pixelID: pixelID, destinationID: Int64(destination.id), uuid: request.uuid,
                               ts: now, aliases: aliases, url: url, source: .edge)
        guard destination.settings.audit == .redirect, let signer else { return (url, secureURL, pixel) }
        func redirect(_ scheme: String, _ target: String) -> String {
            var query: [UInt8] = []
            query.reserveCapacity(256)
            query.append(contentsOf: "d=".utf8)
            JSONWriter.appendInteger(destination.id, to: &query)
            query.append(contentsOf: "&u=".utf8)
            PercentEncoding.append(request.uuid, to: &query)
            query.append(contentsOf: "&a=".utf8)
            for (index, alias) in aliases.enumerated() {
                if index > 0 { query.append(UInt8(ascii: ",")) }
                PercentEncoding.append(alias, to: &query)
            }
            query.append(contentsOf: "&t=".utf8)
            PercentEncoding.append(target, to: &query)
            signer.sign(pixelID: pixelID, query: &query)
            var url: [UInt8] = []
            url.reserveCapacity(query.count + request.edgeHost.utf8.count + pixelID.utf8.count + 16)
            url.append(contentsOf: scheme.utf8)
            url.append(contentsOf: "://".utf8)
            url.append(contentsOf: request.edgeHost.utf8)
            url.append(contentsOf: "/px/".utf8)
            url.append(contentsOf: pixelID.utf8)
            url.append(UInt8(ascii: "?"))
            url.append(contentsOf: query)
            return String(decoding: url, as: UTF8.self)
        }
        return (redirect("http", url), redirect("https", secureURL), pixel)
    }

    private static let base64URLAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 12 characters of Base64url from 72 random bits.
    static func transactionID(_ random: inout some RandomNumberGenerator) -> [UInt8] {
        let alphabet = base64URLAlphabet
        var bits = random.next()
        var more = random.next()
        var out: [UInt8] = []
        out.reserveCapacity(12)
        for index in 0..<12 {
            if index == 10 { bits = more; more = 0 }
            out.append(alphabet[Int(bits & 63)])
            bits >>= 6
        }
        return out
    }

    /// `<destination id>-` and 32 lowercase hex characters from 128 random bits: any receipt of the id, even a bare
    /// one, can name its destination.
    static func pixelID(destination: Int, _ random: inout some RandomNumberGenerator) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(40)
        JSONWriter.appendInteger(destination, to: &out)
        out.append(UInt8(ascii: "-"))
        for _ in 0..<2 {
            var value = random.next()
            for _ in 0..<16 {
                out.append(Hex.lowerDigits[Int(value & 0xF)])
                value >>= 4
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
