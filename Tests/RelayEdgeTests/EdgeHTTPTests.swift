import Foundation
import RelayCore
import RelayKafka
import RelayTestSupport
import Testing

@testable import RelayEdge

@Suite("relay-edge over HTTP (real broker, live port)", .serialized, .timeLimit(.minutes(3)))
struct EdgeHTTPTests {
    typealias Edge = RunningEdge

    func edge() async throws -> RunningEdge { try await EdgeFixture.shared.edge() }

    func stuff(_ response: RawHTTP.Response) -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for item in response.json["stuff"] as? [[String: Any]] ?? [] { result[item["cn"] as? String ?? ""] = item }
        return result
    }

    func dests(_ response: RawHTTP.Response) -> [[String: Any]] { response.json["dests"] as? [[String: Any]] ?? [] }

    @Test("JSON for a known user: uuid, dcs_region, 12-char tid, every cookie format, no dests without d_dst")
    func knownUser() async throws {
        let edge = try await edge()
        let response = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        let json = response.json
        #expect(json["uuid"] as? String == Edge.userA)
        #expect(json["dcs_region"] as? Int == 7)
        #expect((json["tid"] as? String)?.count == 12)
        let cookies = stuff(response)
        #expect(cookies.count == 3)
        // single_key, in the user's segment order; 1002 and the removed 1003 are not mapped here.
        #expect(cookies["aam_seg"]?["cv"] as? String == "segID=4532,segID=99,segID=1001")
        #expect(cookies["aam_seg"]?["ttl"] as? Int == 10)
        #expect(cookies["aam_seg"]?["dmn"] as? String == ".publisher.example")
        #expect(cookies["aam_kv"]?["cv"] as? String == "gender:f;age:30")
        #expect(cookies["aam_kv"]?["ttl"] as? Int == 30)
        #expect(cookies["aam_kv"]?["dmn"] as? String == "127.0.0.1")
        // serialized with max_bytes 11: "seg=1|22|333" is 12 bytes, so 333 is dropped whole and 4 still fits.
        #expect(cookies["aam_ser"]?["cv"] as? String == "seg=1|22|4")
        #expect(dests(response).isEmpty)
        // The earlier event of the same user was replaced, not merged.
        let b = try await edge.http.get("/event?d_uuid=\(Edge.userB)&d_rtbd=json")
        #expect(stuff(b)["aam_seg"]?["cv"] as? String == "segID=4532")
        #expect(b.json["dcs_region"] as? Int == 3)
        let text = try await edge.http.get("/event?d_uuid=\(Edge.userText)&d_rtbd=json")
        #expect(stuff(text)["aam_seg"]?["cv"] as? String == "segID=99")
        #expect(text.json["dcs_region"] is NSNull)
    }

    @Test("an unknown user gets empty lists, not an error")
    func unknownUser() async throws {
        let edge = try await edge()
        let response = try await edge.http.get("/event?d_uuid=99999&d_rtbd=json&d_dst=1")
        #expect(response.status == 200)
        #expect(response.json["uuid"] as? String == "99999")
        #expect((response.json["stuff"] as? [Any])?.isEmpty == true)
        #expect((response.json["dests"] as? [Any])?.isEmpty == true)
    }

    @Test("Set-Cookie for set_cookie destinations: Secure, SameSite=None, Domain, Max-Age")
    func setCookie() async throws {
        let edge = try await edge()
        let response = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json")
        let cookies = response.headers("Set-Cookie")
        #expect(cookies == [
            "aam_seg=segID=4532%2CsegID=99%2CsegID=1001; Max-Age=864000; Path=/; Domain=.publisher.example; Secure; SameSite=None"
        ])
    }

    @Test("without d_rtbd=json: a 1x1 transparent GIF with no-cache headers (and the cookies)")
    func gif() async throws {
        let edge = try await edge()
        let response = try await edge.http.get("/event?d_uuid=\(Edge.userA)")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "image/gif")
        #expect(response.body == EdgeServer.transparentGIF)
        #expect(response.header("Cache-Control")?.contains("no-cache") == true)
        #expect(response.header("Cache-Control")?.contains("no-store") == true)
        #expect(response.header("Pragma") == "no-cache")
        #expect(response.headers("Set-Cookie").count == 1)
    }

    @Test("dests: every macro URL-encoded, one URL per segment vs one serialized, redirect-audited URLs signed")
    func urlDestinations() async throws {
        let edge = try await edge()
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let response = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json&d_dst=1")
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        let list = dests(response)
        #expect(list.count == 3)
        #expect(list.allSatisfy { $0["y"] as? String == "img" })
        // Serialized (audit none): the partner URL itself, expired mapping (555) left out.
        let serialized = try #require(list.first { $0["id"] as? Int == 7002 })
        #expect(serialized["c"] as? String == "http://ser.example/s?segs=s1,s2&uid=\(Edge.userA)")
        // Per segment, audited by redirect: the edge's own signed /px URL, which redirects to the partner URL.
        let redirected = list.filter { $0["id"] as? Int == 7001 }
        #expect(redirected.count == 2)
        var targets: [String] = []
        for dest in redirected {
            let c = try #require(dest["c"] as? String)
            let e = try #require(dest["e"] as? String)
            #expect(c.hasPrefix("http://127.0.0.1:\(edge.port)/px/"))
            #expect(e.hasPrefix("https://127.0.0.1:\(edge.port)/px/"))
            let follow = try await edge.http.get(String(c.dropFirst("http://127.0.0.1:\(edge.port)".count)))
            #expect(follow.status == 302)
            targets.append(try #require(follow.header("Location")))
            let secure = try await edge.http.get(String(e.dropFirst("https://127.0.0.1:\(edge.port)".count)))
            #expect(secure.status == 302)
            #expect(secure.header("Location")?.hasPrefix("https://px.partner.example/sync?seg=p") == true)
            #expect(secure.header("Location")?.hasSuffix("&uid=\(Edge.userA)&p=https") == true)
        }
        targets.sort()
        #expect(targets.count == 2)
        let pattern = #/^http://px\.partner\.example/sync\?seg=(p4532|p%2099)&uid=(\d+)&r=(\d+)&ts=(\d+)&reg=7&p=http&pid=P-1%2Fx$/#
        var seen: [String] = []
        for target in targets {
            let match = try #require(target.wholeMatch(of: pattern), "\(target)")
            seen.append(String(match.1))
            #expect(String(match.2) == Edge.userA)
            let ts = try #require(Int64(match.4))
            #expect(ts >= before && ts <= after)
        }
        #expect(seen == ["p%2099", "p4532"])
        // A user without the partner id that a template needs gets no URL from that destination.
        let b = try await edge.http.get("/event?d_uuid=\(Edge.userB)&d_rtbd=json&d_dst=1")
        #expect(dests(b).map { $0["id"] as? Int } == [7002])
        #expect(dests(b).first?["c"] as? String == "http://ser.example/s?segs=s1&uid=\(Edge.userB)")
    }

    @Test("every dest handed out is a fired pixel on the pixel-events topic, and redirect/beacon/receipts record received")
    func pixelEvents() async throws {
        let edge = try await edge()
        let response = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json&d_dst=1")
        let list = dests(response)
        #expect(list.count == 3)
        let redirectURL = try #require(list.first { $0["id"] as? Int == 7001 }?["c"] as? String)
        let path = String(redirectURL.dropFirst("http://127.0.0.1:\(edge.port)".count))
        let redirectPixel = String(path.dropFirst("/px/".count).prefix { $0 != "?" })
        #expect(try await edge.http.get(path).status == 302)
        let beacon = try await edge.http.get("/px/beacon-\(UUID().uuidString.prefix(8))")
        #expect(beacon.status == 200)
        #expect(beacon.body == EdgeServer.transparentGIF)
        let receiptIDs = ["7001-receipt-\(UUID().uuidString.prefix(8))", "7001-receipt-\(UUID().uuidString.prefix(8))"]
        let bearer = [("Authorization", "Bearer \(Edge.receiptsToken)")]
        let receipts = try await edge.http.post(
            "/px/receipts", body: #"{"destination_id": 7001, "pixel_ids": ["\#(receiptIDs[0])", "\#(receiptIDs[1])"]}"#,
            contentType: "application/json", headers: bearer)
        #expect(receipts.status == 200)
        #expect(receipts.json["recorded"] as? Int == 2)
        let bad = try await edge.http.post("/px/receipts", body: #"{"pixel_ids": [42]}"#, contentType: "application/json",
                                           headers: bearer)
        #expect(bad.status == 400)

        var events: [[String: Any]] = []
        let found = await eventually(timeout: .seconds(15)) {
            let records = (try? await TestBroker.readAll(edge.topics.pixelEvents)) ?? []
            events = records.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.value))) as? [String: Any] }
            return events.contains { $0["pixel_id"] as? String == receiptIDs[1] }
                && events.contains { $0["pixel_id"] as? String == redirectPixel && $0["type"] as? String == "received" }
        }
        #expect(found)
        let fired = events.filter { $0["type"] as? String == "fired" && $0["uuid"] as? String == Edge.userA }
        // Each dest handed out in this answer has its fired event, with its destination, aliases and URL.
        let firedRedirect = try #require(fired.first { $0["pixel_id"] as? String == redirectPixel })
        #expect(firedRedirect["destination_id"] as? Int == 7001)
        #expect(firedRedirect["source"] as? String == "edge")
        #expect((firedRedirect["url"] as? String)?.hasPrefix("http://px.partner.example/sync?seg=p") == true)
        #expect(((firedRedirect["aliases"] as? [String]) ?? []).count == 1)
        let serialURL = try #require(list.first { $0["id"] as? Int == 7002 }?["c"] as? String)
        #expect(fired.contains {
            $0["url"] as? String == serialURL && $0["aliases"] as? [String] == ["s1", "s2"]
                && $0["destination_id"] as? Int == 7002
        })
        let received = events.filter { $0["type"] as? String == "received" }
        let viaRedirect = try #require(received.first { $0["pixel_id"] as? String == redirectPixel })
        #expect(viaRedirect["source"] as? String == "redirect")
        #expect(viaRedirect["destination_id"] as? Int == 7001)
        #expect(viaRedirect["uuid"] as? String == Edge.userA)
        #expect(viaRedirect["url"] == nil)
        #expect(received.contains { ($0["pixel_id"] as? String)?.hasPrefix("beacon-") == true && $0["source"] as? String == "beacon" })
        for id in receiptIDs {
            #expect(received.contains {
                $0["pixel_id"] as? String == id && $0["source"] as? String == "partner" && $0["destination_id"] as? Int == 7001
            })
        }
        // Keyed by pixel id.
        let records = try await TestBroker.readAll(edge.topics.pixelEvents)
        #expect(records.contains { $0.key.map { String(decoding: $0, as: UTF8.self) } == redirectPixel })
    }

    @Test("a forged or altered redirect target is refused, never followed")
    func redirectTamper() async throws {
        let edge = try await edge()
        let response = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json&d_dst=1")
        let url = try #require(dests(response).first { $0["id"] as? Int == 7001 }?["c"] as? String)
        let path = String(url.dropFirst("http://127.0.0.1:\(edge.port)".count))
        let altered = path.replacingOccurrences(of: "px.partner.example", with: "evil.example")
        #expect(altered != path)
        for attempt in [
            altered,
            String(path[..<path.range(of: "&s=")!.lowerBound]),  // signature removed
            path.replacingOccurrences(of: "/px/", with: "/px/x"),  // another pixel id
            "/px/abc?t=http%3A%2F%2Fevil.example%2F",
            "/px/abc?t=http%3A%2F%2Fevil.example%2F&s=AAAA",
        ] {
            let answer = try await edge.http.get(attempt)
            #expect(answer.status == 403, "\(attempt)")
            #expect(answer.header("Location") == nil)
            #expect(!answer.text.contains("evil"))
        }
        #expect(try await edge.http.get("/px/bad%20id").status == 400)
    }

    @Test("limits and bad input: 414, 413, 400 with clear messages that do not echo the input")
    func limitsAndBadInput() async throws {
        let edge = try await edge()
        let long = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json&pad=" + String(repeating: "x", count: 8_200))
        #expect(long.status == 414)
        #expect(long.text.contains("8 KiB"))
        let justUnder = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json&p=" + String(repeating: "x", count: 8_000))
        #expect(justUnder.status == 200)
        let big = try await edge.http.post("/event", body: "d_uuid=1&pad=" + String(repeating: "x", count: 33_000))
        #expect(big.status == 413)
        #expect(big.text.contains("32 KiB"))
        for (query, message) in [
            ("d_rtbd=json", "d_uuid is required"),
            ("d_uuid=%3Cscript%3E&d_rtbd=json", "d_uuid must be"),
            ("d_uuid=%zz", "malformed query"),
            ("d_uuid=1&d_rtbd=xml", "d_rtbd must be json"),
            ("d_uuid=1&d_dst=yes", "d_dst must be 0 or 1"),
            ("d_uuid=1&d_uuid=2", "more than once"),
        ] {
            let answer = try await edge.http.get("/event?\(query)")
            #expect(answer.status == 400, "\(query)")
            #expect(answer.text.contains(message), "\(query): \(answer.text)")
            #expect(!answer.text.contains("script"))
        }
    }

    @Test("form POST and the aam_uuid cookie identify the user")
    func postAndCookie() async throws {
        let edge = try await edge()
        let post = try await edge.http.post("/event", body: "d_uuid=\(Edge.userB)&d_rtbd=json")
        #expect(post.status == 200)
        #expect(post.json["uuid"] as? String == Edge.userB)
        let cookie = try await edge.http.get("/event?d_rtbd=json", headers: [("Cookie", "x=1; aam_uuid=\(Edge.userB)")])
        #expect(cookie.json["uuid"] as? String == Edge.userB)
        #expect(stuff(cookie)["aam_seg"]?["cv"] as? String == "segID=4532")
        let badCookie = try await edge.http.get("/event?d_rtbd=json", headers: [("Cookie", "aam_uuid=a b")])
        #expect(badCookie.status == 400)
    }

    @Test("CORS: credentials only for origins listed by name")
    func cors() async throws {
        let edge = try await edge()
        let allowed = try await edge.http.get("/event?d_uuid=1&d_rtbd=json", headers: [("Origin", "https://publisher.example")])
        #expect(allowed.header("Access-Control-Allow-Origin") == "https://publisher.example")
        #expect(allowed.header("Access-Control-Allow-Credentials") == "true")
        let other = try await edge.http.get("/event?d_uuid=1&d_rtbd=json", headers: [("Origin", "https://evil.example")])
        #expect(other.header("Access-Control-Allow-Origin") != "https://evil.example")
        #expect(other.header("Access-Control-Allow-Credentials") == nil)
        let preflight = try await edge.http.send(
            method: "OPTIONS", target: "/event", headers: [("Origin", "https://publisher.example")], body: [])
        #expect(preflight.status == 204)
        #expect(preflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
    }

    @Test("a removal and a re-qualification show within one second of being produced")
    func freshness() async throws {
        let edge = try await edge()
        func cookieValue() async throws -> String? {
            stuff(try await edge.http.get("/event?d_uuid=\(Edge.userFresh)&d_rtbd=json"))["aam_seg"]?["cv"] as? String
        }
        #expect(try await cookieValue() == "segID=4532")
        for (segments, expected) in [([SegmentState.removed(4532), .realized(99)], "segID=99"),
                                     ([SegmentState.realized(4532), .realized(99)], "segID=4532,segID=99")]
        {
            try await TestBroker.produce([
                Edge.event(Edge.userFresh, region: 9, segments: segments, topic: edge.topics.qualifications)
            ])
            let produced = ContinuousClock.now
            var seen = false
            // The bound is loose for a machine running the whole suite at once; the edge's latency itself is
            // measured in bench/edge.sh.
            while ContinuousClock.now - produced < .seconds(5) {
                if try await cookieValue() == expected {
                    seen = true
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(seen, "\(expected) not visible within 5 s")
        }
    }

    @Test("metrics: requests by endpoint and status, users held, store bytes, lag, pixels")
    func metrics() async throws {
        let edge = try await edge()
        _ = try await edge.http.get("/event?d_uuid=\(Edge.userA)&d_rtbd=json&d_dst=1")
        _ = try await edge.http.get("/event?d_rtbd=json")
        let text = try await edge.http.get("/metrics").text
        #expect(text.contains(#"relay_edge_requests_total{endpoint="event",status="200"}"#))
        #expect(text.contains(#"relay_edge_requests_total{endpoint="event",status="400"}"#))
        #expect(text.contains("relay_edge_request_duration_seconds_bucket"))
        #expect(text.contains("relay_edge_users 4"))
        #expect(text.contains("relay_edge_store_bytes"))
        #expect(text.contains("relay_edge_catchup_lag"))
        #expect(text.contains("relay_edge_pixels_fired_total"))
        #expect(text.contains("relay_edge_malformed_events_total 1"))
        #expect(try await edge.http.get("/health/live").status == 200)
    }
}
