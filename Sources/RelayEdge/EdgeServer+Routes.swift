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
        router.get("/event") { request, _ in
            await measured(0, request) { try await event(request, body: nil) }
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
                return try await event(request, body: body)
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

    /// Runs a handler, turns refusals into plain-text answers, adds CORS headers and records the metrics.
    /// `endpoint` indexes ``EdgeMetrics/endpoints``.
    private func measured(_ endpoint: Int, _ request: Request, _ body: () async throws -> Response) async -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await body()
        } catch let refusal as EventParameters.Refusal {
            response = Self.text(refusal.status, refusal.message)
            if refusal.status == .unauthorized {
                response.headers[.wwwAuthenticate] = #"Bearer realm="px-receipts""#
            }
        } catch {
            logger.error("request failed", metadata: ["endpoint": "\(EdgeMetrics.endpoints[endpoint])", "error": "\(error)"])
            response = Self.text(.internalServerError, "internal error")
        }
        addCORS(request, to: &response)
        metrics.request(endpoint: endpoint, status: response.status.code, duration: ContinuousClock.now - start)
        return response
    }

    static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(status: status,
                 headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    static func gif(_ headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "image/gif"
        headers[.cacheControl] = "no-cache, no-store, must-revalidate, max-age=0"
        headers[HTTPField.Name("Pragma")!] = "no-cache"
        headers[.expires] = "0"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: transparentGIF)))
    }

    // MARK: /event

    private func event(_ request: Request, body: ByteBuffer?) async throws -> Response {
        let query = request.uri.query ?? ""
        if query.utf8.count > EventParameters.maxQueryBytes {
            throw EventParameters.Refusal(status: .uriTooLong, message: "query string above 8 KiB")
        }
        guard var form = PercentEncoding.decodeForm(query.utf8) else {
            throw EventParameters.Refusal.badRequest("malformed query string (bad %-escape or invalid UTF-8)")
        }
        if let body {
            guard let pairs = body.withUnsafeReadableBytes({ PercentEncoding.decodeForm($0) }) else {
                throw EventParameters.Refusal.badRequest(
                    "malformed form body (expected application/x-www-form-urlencoded)")
            }
            form += pairs
        }
        let cookieHeader = request.headers[values: .cookie].joined(separator: "; ")
        let parameters = try EventParameters.parse(form, cookieHeader: cookieHeader.isEmpty ? nil : cookieHeader)
        let authority = EventParameters.sanitizedHost(request.head.authority) ?? fallbackHost
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
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
    }


    // MARK: /px

    private func pixel(_ request: Request, id: String) throws -> Response {
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
        return Response(status: .found, headers: [.location: target, .cacheControl: "no-store"])
    }

    /// `POST /px/receipts`, once ``PixelReceipts`` has accepted the caller and its ids.
    private func recordReceipts(_ headers: HTTPFields, body: [UInt8]) throws -> Response {
        let (destinationID, ids) = try receipts.accept(headers: headers, body: body)
        let now = Timestamps.nowMilliseconds()
        recorder.record(ids.map {
            PixelEvent(kind: .received, pixelID: $0, destinationID: Int64(destinationID), uuid: "", ts: now,
                       aliases: [], url: nil, source: .partner)
        })
        metrics.received(.partner, count: ids.count)
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: #"{"recorded":\#(ids.count)}"#)))
    }

    // MARK: CORS

    private func addCORS(_ request: Request, to response: inout Response) {
        guard cors.isEnabled else { return }
        response.headers.append(HTTPField(name: .vary, value: "Origin"))
        switch cors.grant(origin: request.headers[.origin]) {
        case .none:
            break
        case .anyOrigin:
            response.headers[.accessControlAllowOrigin] = "*"
        case .credentialed(let origin):
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlAllowCredentials] = "true"
        }
    }

    private func preflight(_ request: Request) -> Response {
        var response = Response(status: .noContent)
        addCORS(request, to: &response)
        if response.headers[.accessControlAllowOrigin] != nil {
            response.headers[.accessControlAllowMethods] = "GET, POST, OPTIONS"
            response.headers[.accessControlAllowHeaders] = "Content-Type"
            response.headers[.accessControlMaxAge] = "600"
        }
        return response
    }
}
