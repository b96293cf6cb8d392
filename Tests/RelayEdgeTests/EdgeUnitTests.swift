import Crypto
import Foundation
import RelayCore
import RelayEncoding
import Testing

@testable import RelayEdge

@Suite("relay-edge pure logic")
struct EdgeUnitTests {
    @Test("numeric ids pack into 128 bits and back, leading zeros included")
    func userKeyRoundTrip() {
        let ids = ["0", "7", "00", "07955261652886032950143702505894272138", "99999999999999999999999999999999999999",
                   "00000000000000000000000000000000000000", "12345", "012345"]
        var packed = Set<UInt128>()
        for id in ids {
            guard case .numeric(let value) = UserKey(id) else {
                Issue.record("\(id) not packed")
                continue
            }
            #expect(value != 0)
            #expect(UserKey.unpack(value) == id)
            packed.insert(value)
        }
        #expect(packed.count == ids.count)
        #expect(UserKey("abc-1") == .text("abc-1"))
        #expect(UserKey(String(repeating: "1", count: 39)) == .text(String(repeating: "1", count: 39)))
    }

    @Test("the store replaces a user's set, grows, compacts and keeps text ids")
    func storeReplaceAndGrow() {
        let store = SegmentStore(keptDPIDs: ["20915"])
        var updates: [UserUpdate] = []
        for n in 0..<20_000 {
            updates.append(UserUpdate(uuid: String(format: "%038d", n * 7919),
                                      state: UserState(region: n % 5, segments: [UInt32(n), 4532, 99],
                                                       partnerIDs: [n % 2 == 0 ? "P\(n)" : nil])))
        }
        store.apply(updates)
        // Replace every user several times with sets of changing size (arena garbage and compaction).
        for round in 0..<3 {
            var replacements: [UserUpdate] = []
            for n in 0..<20_000 {
                let segments = [UInt32](repeating: UInt32(round), count: (n + round) % 4)
                let partner: String? = round == 2 ? "Q\(n)" : nil
                replacements.append(UserUpdate(uuid: String(format: "%038d", n * 7919),
                                               state: UserState(region: 7, segments: segments, partnerIDs: [partner])))
            }
            store.apply(replacements)
        }
        store.apply([UserUpdate(uuid: "cookie-user_1", state: UserState(region: nil, segments: [1, 2]))])
        #expect(store.userCount == 20_001)
        for n in [0, 1, 2, 3, 19_999] {
            let state = store.lookup(String(format: "%038d", n * 7919))
            #expect(state == UserState(region: 7, segments: Array(repeating: 2, count: (n + 2) % 4),
                                       partnerIDs: ["Q\(n)"]))
        }
        #expect(store.lookup("cookie-user_1") == UserState(region: nil, segments: [1, 2], partnerIDs: []))
        #expect(store.lookup("00000000000000000000000000000000000001") == nil)
        #expect(store.lookup("1") == nil)
    }

    @Test("a snapshot round-trips every user and the offsets")
    func snapshotRoundTrip() throws {
        let store = SegmentStore(keptDPIDs: ["20915"])
        var updates: [UserUpdate] = []
        for n in 0..<5_000 {
            let uuid: String = n % 10 == 0 ? "text-\(n)" : "\(n)"
            let region: Int? = n % 3 == 0 ? nil : n
            let segments: [UInt32] = (0..<UInt32(n % 6)).map { $0 * 3 }
            let partner: String? = n % 4 == 0 ? nil : "ID-\(n)"
            updates.append(UserUpdate(uuid: uuid, state: UserState(region: region, segments: segments, partnerIDs: [partner])))
        }
        store.apply(updates)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edge-snap-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try StoreSnapshot.write(store: store, topic: "t", offsets: [0: 10, 1: 25], directory: directory)
        #expect(written == 5_000)
        let restored = SegmentStore(keptDPIDs: ["20915"])
        let loaded = try #require(try StoreSnapshot.load(into: restored, directory: directory))
        #expect(loaded.offsets == [0: 10, 1: 25])
        #expect(loaded.topic == "t")
        #expect(restored.userCount == 5_000)
        for n in 0..<5_000 {
            let id = n % 10 == 0 ? "text-\(n)" : "\(n)"
            #expect(restored.lookup(id) == store.lookup(id))
        }
        // A configuration that keeps other partner ids cannot use it.
        #expect(throws: StoreSnapshot.Failure.self) {
            try StoreSnapshot.load(into: SegmentStore(keptDPIDs: []), directory: directory)
        }
    }

    @Test("cookie values: single_key, key_value, serialized, separators, whole pairs dropped at max_bytes")
    func cookieValues() {
        var settings = CookieSettings(cookieName: "aam_seg", key: "segID")
        #expect(CookieValue.make(settings, aliases: ["4532", "99"]) == "segID=4532,segID=99")
        #expect(CookieValue.make(settings, aliases: []) == nil)
        settings.maxBytes = 18  // "segID=4532,segID=99" is 19 bytes: the second pair is dropped whole
        #expect(CookieValue.make(settings, aliases: ["4532", "99", "7"]) == "segID=4532,segID=7")
        settings.maxBytes = 5
        #expect(CookieValue.make(settings, aliases: ["4532"]) == nil)
        let keyValue = CookieSettings(cookieName: "kv", format: .keyValue, keySeparator: ":", pairSeparator: ";")
        #expect(CookieValue.make(keyValue, aliases: ["gender:f", "age:30"]) == "gender:f;age:30")
        let serialized = CookieSettings(cookieName: "s", key: "seg", format: .serialized, valueSeparator: "|",
                                        maxBytes: 11)
        #expect(CookieValue.make(serialized, aliases: ["1", "22", "333", "4"]) == "seg=1|22|4")
        let header = CookieValue.setCookieHeader(
            CookieSettings(cookieName: "aam_seg", key: "segID", ttlDays: 10, domain: ".publisher.example",
                           setCookie: true), value: "segID=4532,segID=99")
        #expect(header == "aam_seg=segID=4532%2CsegID=99; Max-Age=864000; Path=/; Domain=.publisher.example; Secure; SameSite=None")
    }

    @Test("URL templates: every macro, URL-encoded; a missing partner id skips the URL")
    func urlTemplate() {
        let template = URLTemplate(
            "http://px.example/s?seg=%alias%&uid=%did%&r=%rnd%&ts=%timestamp%&reg=%region%&p=%http_proto%&x=%dpid_20915%&lit=%2F%zz%",
            keptDPIDs: ["20915"])
        let values = URLTemplate.Values(encodedAlias: "a%20b", uuid: "u-1", random: 42, timestamp: 1_700_000_000_000,
                                        region: 7, secure: true, partnerIDs: ["ID/1 2"])
        #expect(template.render(values)
            == "http://px.example/s?seg=a%20b&uid=u-1&r=42&ts=1700000000000&reg=7&p=https&x=ID%2F1%202&lit=%2F%zz%")
        var missing = values
        missing.partnerIDs = [nil]
        #expect(template.render(missing) == nil)
        #expect(URLTemplate.dpids(in: "http://a/?x=%dpid_1%&y=%dpid_22%&%alias%") == ["1", "22"])
    }

    @Test("pixel signatures: valid verifies, any change is refused")
    func signer() {
        let signer = PixelSigner(secret: "k1")
        let query = signer.sign(pixelID: "abc", query: "d=7001&u=1&a=x&t=http%3A%2F%2Fp.example%2F")
        #expect(signer.verify(pixelID: "abc", query: query) == "d=7001&u=1&a=x&t=http%3A%2F%2Fp.example%2F")
        #expect(signer.verify(pixelID: "abd", query: query) == nil)
        #expect(signer.verify(pixelID: "abc", query: query.replacingOccurrences(of: "p.example", with: "evil.example")) == nil)
        #expect(PixelSigner(secret: "k2").verify(pixelID: "abc", query: query) == nil)
        #expect(signer.verify(pixelID: "abc", query: "d=7001&t=http%3A%2F%2Fevil") == nil)
        // On the wire: Base64url of HMAC-SHA256(key, "<pixel id>?<query>"), what a URL signed before still carries.
        let expected = HMAC<SHA256>.authenticationCode(
            for: Array("abc?d=7001&u=1&a=x&t=http%3A%2F%2Fp.example%2F".utf8), using: SymmetricKey(data: Array("k1".utf8)))
        #expect(query == "d=7001&u=1&a=x&t=http%3A%2F%2Fp.example%2F&s=" + Base64URL.encode(Array(expected)))
    }

    @Test("event parameters: uuid from d_uuid or the aam_uuid cookie, clear refusals")
    func parameters() throws {
        let parsed = try EventParameters.parse([("d_uuid", "123"), ("d_rtbd", "json"), ("d_dst", "1")], cookieHeader: nil)
        #expect(parsed == EventParameters(uuid: "123", json: true, dests: true))
        let fromCookie = try EventParameters.parse([], cookieHeader: "a=1; aam_uuid=456; b=2")
        #expect(fromCookie == EventParameters(uuid: "456", json: false, dests: false))
        for form: [(String, String)] in [[], [("d_uuid", "bad id")], [("d_uuid", "1"), ("d_rtbd", "xml")],
                                         [("d_uuid", "1"), ("d_dst", "2")], [("d_uuid", "1"), ("d_uuid", "2")]]
        {
            #expect(throws: EventParameters.Refusal.self) { try EventParameters.parse(form, cookieHeader: nil) }
        }
        #expect(PercentEncoding.decodeForm("a=%zz".utf8) == nil)
        #expect(PercentEncoding.decodeForm("a=1+2&b=%C3%A9".utf8).map { $0.map { "\($0.0)=\($0.1)" } } == ["a=1 2", "b=é"])
    }

    @Test("JSON strings are escaped for embedding in a page")
    func jsonEscaping() {
        var out: [UInt8] = []
        JSONWriter.appendString("a\"b\\c\n<script>&\u{2028}é", htmlSafe: true, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #""a\"b\\c\n\u003cscript\u003e&\u2028é""#)
    }
}
