import Crypto
import Foundation
import HTTPTypes
import RelayCore
import RelayKafka
import RelayTestSupport
import Testing

@testable import RelayEdge

/// The edge as a public endpoint: receipts only with the destination's credential, CORS `*` without credentials.
@Suite("relay-edge public endpoint: receipts credential, CORS (real broker, live port)", .serialized,
       .timeLimit(.minutes(3)))
struct EdgePublicEndpointTests {
    typealias Edge = RunningEdge

    func edge() async throws -> RunningEdge { try await EdgeFixture.shared.edge() }

    static func pixelID(_ destination: Int) -> String { "\(destination)-\(UUID().uuidString.prefix(13))" }

    func post(_ edge: RunningEdge, _ body: String, contentType: String = "application/json",
              headers: [(String, String)] = []) async throws -> RawHTTP.Response
    {
        try await edge.http.post("/px/receipts", body: body, contentType: contentType, headers: headers)
    }

    static let bearer = [("Authorization", "Bearer \(Edge.receiptsToken)")]

    @Test("receipts without the destination's credential are refused (401/403); with it they are counted")
    func receiptsCredential() async throws {
        let edge = try await edge()
        let ids = [Self.pixelID(7001), Self.pixelID(7001)]
        let body = #"{"destination_id": 7001, "pixel_ids": ["\#(ids[0])", "\#(ids[1])"]}"#

        let anonymous = try await post(edge, body)
        #expect(anonymous.status == 401)
        #expect(anonymous.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
        let wrong = try await post(edge, body, headers: [("Authorization", "Bearer not-the-token")])
        #expect(wrong.status == 403)
        let badSignature = try await post(edge, body, headers: [("X-Signature", "AAAA")])
        #expect(badSignature.status == 403)

        let accepted = try await post(edge, body, headers: Self.bearer)
        #expect(accepted.status == 200)
        #expect(accepted.json["recorded"] as? Int == 2)

        // The HMAC form: Base64 of HMAC-SHA256 of the exact body, keyed with the token.
        let signedID = Self.pixelID(7001)
        let signedBody = #"["\#(signedID)"]"#
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signedBody.utf8),
                                                  using: SymmetricKey(data: Array(Edge.receiptsToken.utf8)))
        let signed = try await post(edge, signedBody, headers: [("X-Signature", Data(mac).base64EncodedString())])
        #expect(signed.status == 200, "\(signed)")
        #expect(signed.json["recorded"] as? Int == 1)

        var received: [[String: Any]] = []
        let found = await eventually(timeout: .seconds(15)) {
            let records = (try? await TestBroker.readAll(edge.topics.pixelEvents)) ?? []
            received = records.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.value))) as? [String: Any] }
                .filter { $0["type"] as? String == "received" && $0["source"] as? String == "partner" }
            return Set(received.compactMap { $0["pixel_id"] as? String }).isSuperset(of: ids + [signedID])
        }
        #expect(found)
        #expect(received.allSatisfy { $0["destination_id"] as? Int == 7001 })
        // Only the accepted requests were recorded: 3 ids, each once.
        let mine = received.filter { ids.contains($0["pixel_id"] as? String ?? "") || $0["pixel_id"] as? String == signedID }
        #expect(mine.count == 3)

        let metrics = try await edge.http.get("/metrics").text
        #expect(metrics.contains(#"relay_edge_requests_total{endpoint="px_receipts",status="401"}"#))
        #expect(metrics.contains(#"relay_edge_requests_total{endpoint="px_receipts",status="403"}"#))
    }

    @Test("receipts: JSON only (no cross-site form post), ids of that destination only, bounded per request")
    func receiptsBounds() async throws {
        let edge = try await edge()
        let id = Self.pixelID(7001)
        let form = try await post(edge, "pixel_ids=\(id)", contentType: "application/x-www-form-urlencoded",
                                  headers: Self.bearer)
        #expect(form.status == 415)
        let plain = try await post(edge, #"["\#(id)"]"#, contentType: "text/plain", headers: Self.bearer)
        #expect(plain.status == 415)
        #expect(try await post(edge, #"["\#(id)"]"#, contentType: "application/json; charset=utf-8",
                               headers: Self.bearer).status == 200)

        // 7001's credential cannot speak for 7002, neither by naming it nor by slipping its ids in.
        let foreignID = Self.pixelID(7002)
        let override = try await post(edge, #"{"destination_id": 7001, "pixel_ids": ["\#(id)", "\#(foreignID)"]}"#,
                                      headers: Self.bearer)
        #expect(override.status == 403)
        #expect(override.text.contains("pixel_ids[1]"))
        let named = try await post(edge, #"{"destination_id": 7002, "pixel_ids": ["\#(foreignID)"]}"#,
                                   headers: Self.bearer)
        #expect(named.status == 403)
        let bare = try await post(edge, #"["receipt-\#(UUID().uuidString.prefix(8))"]"#, headers: Self.bearer)
        #expect(bare.status == 400)

        let tooMany = "[" + (0...PixelReceipts.maxPixelIDs).map { #""7001-\#($0)""# }.joined(separator: ",") + "]"
        #expect(tooMany.utf8.count < PixelReceipts.maxBodyBytes)
        #expect(try await post(edge, tooMany, headers: Self.bearer).status == 413)
        let tooLarge = #"{"destination_id": 7001, "pad": ""# + String(repeating: "x", count: PixelReceipts.maxBodyBytes)
            + #"", "pixel_ids": []}"#
        #expect(try await post(edge, tooLarge, headers: Self.bearer).status == 413)
    }

    @Test("CORS: \"*\" answers Access-Control-Allow-Origin: * without credentials; listed origins get credentials")
    func corsAnyOrigin() async throws {
        let edge = try await edge()
        let foreign = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json",
                                              headers: [("Origin", "https://evil.example")])
        #expect(foreign.status == 200)
        #expect(foreign.header("Access-Control-Allow-Origin") == "*")
        #expect(foreign.header("Access-Control-Allow-Credentials") == nil)
        let noOrigin = try await edge.http.get("/event?d_uuid=1&d_rtbd=json")
        #expect(noOrigin.header("Access-Control-Allow-Credentials") == nil)
        let listed = try await edge.http.get("/event?d_uuid=1&d_rtbd=json",
                                             headers: [("Origin", "https://publisher.example")])
        #expect(listed.header("Access-Control-Allow-Origin") == "https://publisher.example")
        #expect(listed.header("Access-Control-Allow-Credentials") == "true")
        let preflight = try await edge.http.send(
            method: "OPTIONS", target: "/event", headers: [("Origin", "https://evil.example")], body: [])
        #expect(preflight.header("Access-Control-Allow-Origin") == "*")
        #expect(preflight.header("Access-Control-Allow-Credentials") == nil)
    }
}

@Suite("relay-edge receipts and CORS rules")
struct EdgeReceiptRuleTests {
    @Test("CORS grants: listed origins credentialed (any case), others * only when configured, malformed never")
    func corsGrants() {
        let both = CORSPolicy(origins: ["https://pub.example", "*"])
        #expect(both.grant(origin: "https://PUB.example") == .credentialed("https://PUB.example"))
        #expect(both.grant(origin: "https://evil.example") == .anyOrigin)
        #expect(both.grant(origin: nil) == .anyOrigin)
        #expect(both.grant(origin: "https://pub.example\r\nX: y") == .anyOrigin)
        let listed = CORSPolicy(origins: ["https://pub.example"])
        #expect(listed.grant(origin: "https://evil.example") == .none)
        #expect(!CORSPolicy(origins: []).isEnabled)
    }

    @Test("receipts: destination from the body or the first id; refusals in order of the checks")
    func acceptRules() throws {
        let receipts = PixelReceipts(credentials: [7001: .init(token: "t")])
        var headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer t"]
        let accepted = try receipts.accept(headers: headers, body: Array(#"["7001-a","7001-b"]"#.utf8))
        #expect(accepted.destinationID == 7001)
        #expect(accepted.pixelIDs == ["7001-a", "7001-b"])
        #expect(throws: PixelReceipts.Refusal.self) {
            try receipts.accept(headers: headers, body: Array(#"{"destination_id": 7001.5, "pixel_ids": []}"#.utf8))
        }
        headers[.authorization] = "bearer t"  // the scheme is case-insensitive
        #expect(try receipts.accept(headers: headers, body: Array(#"["7001-a"]"#.utf8)).pixelIDs == ["7001-a"])
        headers[.authorization] = "Basic dDp0"
        #expect(throws: PixelReceipts.Refusal(status: .forbidden, message: "credential does not match destination 7001")) {
            try receipts.accept(headers: headers, body: Array(#"["7001-a"]"#.utf8))
        }
    }
}
