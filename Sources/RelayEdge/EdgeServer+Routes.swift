import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RelayCore
import RelayEncoding

extension EdgeServer {
    static let transparentGIF: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF,
        0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

    func addRoutes(to router: Router<BasicRequestContext>) {
        // Most GET /event requests are answered by EventFastPath before they reach the router; these are the rest.
        router.get("/event") { request, _ in
            await measured(0, request) { try event(EventCall(request, body: nil)) }
        }
        router.post("/event") { request, _ in
            await measured(0, request) {
                var request = request
                if let length = request.headers[.contentLength].flatMap(Int.init), length > EventParameters.maxBodyBytes {
                    throw EventParameters.Refusal(status: .contentTooLarge, message: "request body above 32 KiB")
                }
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: EventParameters.maxBodyBytes)
                } catch {
                    throw EventParameters.Refusal(status: .contentTooLarge, message: "request body above 32 KiB")
                }
                return try event(EventCall(request, body: body))
            }
        }
        router.on("/event", method: .options) { request, _ in preflight(request) }
        router.get("/px/{pixel}") { request, context in
            await measured(1, request) { try pixel(request, id: context.parameters.get("pixel") ?? "") }
        }
        router.post("/px/receipts") { request, _ in
            await measured(2, request) {
                try PixelReceipts.checkHead(request.headers)
                var request = request
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: PixelReceipts.maxBodyBytes)
                } catch {
                    throw EventParameters.Refusal(status: .contentTooLarge, message: "request body above 256 KiB")
                }
                return try recordReceipts(request.headers, body: Array(body.readableBytesView))
            }
        }
        router.on("/px/receipts", method: .options) { request, _ in preflight(request) }
    }

    /// Runs a Hummingbird route's handler through ``finish(_:_:origin:since:)``.
    private func measured(_ endpoint: Int, _ request: Request, _ body: () async throws -> EdgeReply) async -> Response {
        let start = ContinuousClock.now
        let outcome: Result<EdgeReply, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        return finish(endpoint, outcome, origin: request.headers[.origin], since: start).response
    }

    /// `GET /event` as ``EventFastPath`` takes it: the same handler and the same ``finish(_:_:origin:since:)``.
    func answerEvent(_ call: EventCall) -> EdgeReply {
        let start = ContinuousClock.now
        let outcome: Result<EdgeReply, any Error>
        do { outcome = .success(try event(call)) } catch { outcome = .failure(error) }
        return finish(0, outcome, origin: call.origin, since: start)
    }

    /// Turns refusals into plain-text answers, adds CORS headers and records the metrics. `endpoint` indexes
    /// ``EdgeMetrics/endpoints``.
    private func finish(_ endpoint: Int, _ outcome: Result<EdgeReply, any Error>, origin: String?,
                        since start: ContinuousClock.Instant) -> EdgeReply
    {
        var reply: EdgeReply
        switch outcome {
        case .success(let answer):
            reply = answer
        case .failure(let refusal as EventParameters.Refusal):
            reply = Self.text(refusal.status, refusal.message)
            if refusal.status == .unauthorized {
                reply.headers[.wwwAuthenticate] = #"Bearer realm="px-receipts""#
            }
        case .failure(let error):
            logger.error("request failed", metadata: ["endpoint": "\(EdgeMetrics.endpoints[endpoint])", "error": "\(error)"])
            reply = Self.text(.internalServerError, "internal error")
        }
        addCORS(origin: origin, to: &reply.headers)
        metrics.request(endpoint: endpoint, status: reply.status.code, duration: ContinuousClock.now - start)
        return reply
    }

    static func text(_ status: HTTPResponse.Status, _ message: String) -> EdgeReply {
        EdgeReply(status: status,
                  headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                  body: ByteBuffer(string: message + "\n"))
    }

    static func gif(_ headers: HTTPFields = [:]) -> EdgeReply {
        var headers = headers
        headers[.contentType] = "image/gif"
        headers[.cacheControl] = "no-cache, no-store, must-revalidate, max-age=0"
        headers[HTTPField.Name("Pragma")!] = "no-cache"
        headers[.expires] = "0"
        return EdgeReply(status: .ok, headers: headers, body: ByteBuffer(bytes: transparentGIF))
    }

    // MARK: /event

    private func event(_ call: EventCall) throws -> EdgeReply {
        let query = call.query
        if query.utf8.count > EventParameters.maxQueryBytes {
            throw EventParameters.Refusal(status: .uriTooLong, message: "query string above 8 KiB")
        }
        guard var form = PercentEncoding.decodeForm(query.utf8) else {
            throw EventParameters.Refusal.badRequest("malformed query string (bad %-escape or invalid UTF-8)")
        }
        if let body = call.body {
            guard let pairs = body.withUnsafeReadableBytes({ PercentEncoding.decodeForm($0) }) else {
                throw EventParameters.Refusal.badRequest(
                    "malformed form body (expected application/x-www-form-urlencoded)")
            }
            form += pairs
        }
        let parameters = try EventParameters.parse(form, cookieHeader: call.cookieHeader)
        let authority = EventParameters.sanitizedHost(call.authority) ?? fallbackHost
        // One system random draw per answer seeds the ids of this answer (tid, pixel ids, %rnd%): unguessable from
        // outside, without a getrandom call for each id.
        var system = SystemRandomNumberGenerator()
        var random = SplitMix64(seed: system.next())
        let answer = EventAnswer.make(
            EventAnswer.Request(uuid: parameters.uuid, json: parameters.json, dests: parameters.dests,
                                edgeHost: authority, cookieDomain: EventParameters.hostName(authority)),
            user: store.lookup(parameters.uuid), catalog: catalog, signer: signer, now: Timestamps.nowMilliseconds(),
            random: &random)
        if !answer.pixels.isEmpty { recorder.record(answer.pixels) }
        var headers: HTTPFields = [:]
        for cookie in answer.setCookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        guard parameters.json else { return Self.gif(headers) }
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return EdgeReply(status: .ok, headers: headers, body: ByteBuffer(bytes: answer.body))
    }


    // MARK: /px

    private func pixel(_ request: Request, id: String) throws -> EdgeReply {
        guard EventParameters.isValidUUID(id) else {
            throw EventParameters.Refusal.badRequest("pixel id must be 1-64 characters of [0-9A-Za-z_-]")
        }
        let query = request.uri.query ?? ""
        if query.utf8.count > EventParameters.maxQueryBytes {
            throw EventParameters.Refusal(status: .uriTooLong, message: "query string above 8 KiB")
        }
        let now = Timestamps.nowMilliseconds()
        guard !query.isEmpty else {
            recorder.record([PixelEvent(kind: .received, pixelID: id,
                                        destinationID: PixelEvent.destination(inPixelID: id) ?? 0, uuid: "",
                                        ts: now, aliases: [], url: nil, source: .beacon)])
            metrics.received(.beacon)
            return Self.gif()
        }
        guard let signer, let signed = signer.verify(pixelID: id, query: query) else {
            throw EventParameters.Refusal(status: .forbidden, message: "pixel URL signature does not match")
        }
        // Signed by this edge: the values below are the ones it issued.
        guard let pairs = PercentEncoding.decodeForm(signed.utf8) else {
            throw EventParameters.Refusal.badRequest("malformed pixel URL")
        }
        var fields: [String: String] = [:]
        for (name, value) in pairs { fields[name] = value }
        let aliases = signed.split(separator: "&").first { $0.hasPrefix("a=") }.map { part in
            part.dropFirst(2).split(separator: ",").compactMap { PercentEncoding.decodeFormComponent($0.utf8) }
        } ?? []
        let destinationID = fields["d"].flatMap { Int64($0) } ?? PixelEvent.destination(inPixelID: id) ?? 0
        guard let target = fields["t"] else {
            recorder.record([PixelEvent(kind: .received, pixelID: id, destinationID: destinationID, uuid: fields["u"] ?? "",
                                        ts: now, aliases: aliases, url: nil, source: .beacon)])
            metrics.received(.beacon)
            return Self.gif()
        }
        guard target.hasPrefix("http://") || target.hasPrefix("https://"), !target.contains(where: \.isNewline) else {
            throw EventParameters.Refusal.badRequest("malformed pixel target")
        }
        recorder.record([PixelEvent(kind: .received, pixelID: id, destinationID: destinationID, uuid: fields["u"] ?? "",
                                    ts: now, aliases: aliases, url: nil, source: .redirect)])
        metrics.received(.redirect)
        return EdgeReply(status: .found, headers: [.location: target, .cacheControl: "no-store"])
    }

    /// `POST /px/receipts`, once ``PixelReceipts`` has accepted the caller and its ids.
    private func recordReceipts(_ headers: HTTPFields, body: [UInt8]) throws -> EdgeReply {
        let (destinationID, ids) = try receipts.accept(headers: headers, body: body)
        let now = Timestamps.nowMilliseconds()
        recorder.record(ids.map {
            PixelEvent(kind: .received, pixelID: $0, destinationID: Int64(destinationID), uuid: "", ts: now,
                       aliases: [], url: nil, source: .partner)
        })
        metrics.received(.partner, count: ids.count)
        return EdgeReply(status: .ok, headers: [.contentType: "application/json"],
                         body: ByteBuffer(string: #"{"recorded":\#(ids.count)}"#))
    }

    // MARK: CORS

    private func addCORS(origin: String?, to headers: inout HTTPFields) {
        guard cors.isEnabled else { return }
        headers.append(HTTPField(name: .vary, value: "Origin"))
        switch cors.grant(origin: origin) {
        case .none:
            break
        case .anyOrigin:
            headers[.accessControlAllowOrigin] = "*"
        case .credentialed(let origin):
            headers[.accessControlAllowOrigin] = origin
            headers[.accessControlAllowCredentials] = "true"
        }
    }

    private func preflight(_ request: Request) -> Response {
        var reply = EdgeReply(status: .noContent)
        addCORS(origin: request.headers[.origin], to: &reply.headers)
        if reply.headers[.accessControlAllowOrigin] != nil {
            reply.headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            reply.headers[.accessControlAllowHeaders] = "Content-Type"
            reply.headers[.accessControlMaxAge] = "600"
        }
        return reply.response
    }
}

/// What the edge answers to one request, before Hummingbird (``response``) or ``EventFastPath`` writes it.
/// `Content-Length` is set here, before CORS adds its headers, as Hummingbird's `Response` sets it: the headers come
/// out in the same order on both paths.
struct EdgeReply {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer

    init(status: HTTPResponse.Status, headers: HTTPFields = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
        if !self.headers.contains(.contentLength) { self.headers[.contentLength] = String(body.readableBytes) }
    }

    var response: Response {
        Response(status: status, headers: headers, body: body.readableBytes == 0 ? .init() : .init(byteBuffer: body))
    }
}

/// The parts of an `/event` request the answer depends on, however it arrived.
struct EventCall {
    /// The raw query string (after `?`, before any `#`).
    var query: Substring
    /// A POST's form body.
    var body: ByteBuffer?
    /// Every `Cookie` header, joined with `; `; nil without any.
    var cookieHeader: String?
    /// The `Host` header.
    var authority: String?
    /// The `Origin` header(s), joined with `, `.
    var origin: String?

    init(query: Substring, body: ByteBuffer?, cookieHeader: String?, authority: String?, origin: String?) {
        self.query = query
        self.body = body
        self.cookieHeader = cookieHeader
        self.authority = authority
        self.origin = origin
    }

    init(_ request: Request, body: ByteBuffer?) {
        let cookies = request.headers[values: .cookie].joined(separator: "; ")
        self.init(query: Substring(request.uri.query ?? ""), body: body, cookieHeader: cookies.isEmpty ? nil : cookies,
                  authority: request.head.authority, origin: request.headers[.origin])
    }
}
