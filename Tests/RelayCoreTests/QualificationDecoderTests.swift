import Foundation
import Testing

@testable import RelayCore

/// Decodes `json`, expecting it to be rejected, and returns the reason.
private func reason(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    do {
        let event = try QualificationDecoder.decode(json)
        Issue.record("accepted: \(event)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error.reason
    }
}

private func reason(bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    do {
        let event = try QualificationDecoder.decode(bytes)
        Issue.record("accepted: \(event)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error.reason
    }
}

/// A valid event with one field replaced (or removed with `nil`), for rule-by-rule tests.
private func event(_ overrides: [String: String?] = [:]) -> String {
    var fields: [(String, String)] = [
        ("event_id", #""ev-42""#),
        ("uuid", #""07955261652886032950143702505894272138""#),
        ("ts", "1795982000000"),
        ("region", "7"),
        ("segments", #"[{"id": 4532, "status": 1}, {"id": 99, "status": 0}]"#),
        ("partner_ids", #"{"20915": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}"#),
    ]
    for (key, value) in overrides {
        if let index = fields.firstIndex(where: { $0.0 == key }) {
            if let value { fields[index].1 = value } else { fields.remove(at: index) }
        } else if let value {
            fields.append((key, value))
        }
    }
    return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}

@Suite("Qualification decoding: valid events")
struct QualificationDecoderValidTests {
    @Test func specExample() throws {
        let json = """
            {"event_id": "ev-42", "uuid": "07955261652886032950143702505894272138", "ts": 1795982000000,
             "region": 7, "segments": [{"id": 4532, "status": 1}, {"id": 99, "status": 0}],
             "partner_ids": {"20915": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}}
            """
        let event = try QualificationDecoder.decode(json)
        #expect(event.eventID == "ev-42")
        #expect(event.uuid == "07955261652886032950143702505894272138")
        #expect(event.timestamp == 1_795_982_000_000)
        #expect(event.region == 7)
        #expect(event.segments == [.realized(4532), .removed(99)])
        #expect(event.partnerIDs["20915"] == "6D92078A-8246-4BA4-AE5B-76104861E7DC")
        #expect(event.partnerIDs.id(forDPID: 20915) == "6D92078A-8246-4BA4-AE5B-76104861E7DC")
        #expect(event.userID(forDPID: 0) == event.uuid)
        #expect(event.userID(forDPID: 20914) == nil)
    }

    @Test func optionalFieldsMayBeAbsentOrNull() throws {
        let absent = try QualificationDecoder.decode(event(["region": nil, "partner_ids": nil]))
        #expect(absent.region == nil)
        #expect(absent.partnerIDs.isEmpty)
        let null = try QualificationDecoder.decode(event(["region": "null", "partner_ids": "null"]))
        #expect(null.region == nil)
        #expect(null.partnerIDs.isEmpty)
    }

    @Test func emptySegmentListIsAllowed() throws {
        #expect(try QualificationDecoder.decode(event(["segments": "[]"])).segments.isEmpty)
    }

    @Test func unknownFieldsOfAnyTypeAreSkipped() throws {
        let json = event([
            "extra": #"{"a": [1, 2.5e-3, -0, true, false, null, {"b": {"c": []}}], "d": "x\"y", "e": {}}"#,
            "more": "-12.75E+2",
            "flag": "true",
            "nothing": "null",
            "list": #"[[], [[]], "s", 0]"#,
            "segments": #"[{"id": 4532, "status": 1, "weight": [1, {"x": null}], "label": "é"}]"#,
        ])
        let event = try QualificationDecoder.decode(json)
        #expect(event.segments == [.realized(4532)])
    }

    @Test func whitespaceEverywhere() throws {
        let json = " \n\t{ \"event_id\" :\"e\" ,\r\n\"uuid\":\"u\",\"ts\" : 0 , \"segments\" : [ { \"id\" : 1 , \"status\" : 1 } ] } \n"
        let event = try QualificationDecoder.decode(json)
        #expect(event.eventID == "e")
        #expect(event.timestamp == 0)
    }

    @Test func unicodeEscapesAndSurrogatePairs() throws {
        let json = event(["event_id": #""a\u00e9\u4e2d\ud83d\ude00\n\t\"\\\/z""#])
        let event = try QualificationDecoder.decode(json)
        #expect(event.eventID == "aé中😀\n\t\"\\/z")
    }

    @Test func escapedKeysAreMatchedByTheirDecodedText() throws {
        let json = #"{"event_\u0069d": "e", "\u0075uid": "u", "ts": 1, "segments": []}"#
        let event = try QualificationDecoder.decode(json)
        #expect(event.eventID == "e")
        #expect(event.uuid == "u")
    }

    @Test func rawUTF8InStrings() throws {
        let event = try QualificationDecoder.decode(event(["event_id": "\"naïve-中文-😀\""]))
        #expect(event.eventID == "naïve-中文-😀")
    }

    @Test func maximumLengths() throws {
        let eventID = String(repeating: "é", count: 128)  // 128 characters, 256 bytes
        let uuid = String(repeating: "aZ9_-", count: 13).prefix(64)
        let event = try QualificationDecoder.decode(event(["event_id": "\"\(eventID)\"", "uuid": "\"\(uuid)\""]))
        #expect(event.eventID == eventID)
        #expect(event.uuid == String(uuid))
    }

    @Test func tenThousandSegments() throws {
        let segments = (1...10_000).map { #"{"id":\#($0),"status":\#($0 % 2)}"# }.joined(separator: ",")
        let event = try QualificationDecoder.decode(event(["segments": "[\(segments)]"]))
        #expect(event.segments.count == 10_000)
        #expect(event.segments.last == .removed(10_000))
    }

    @Test func integerLimits() throws {
        let event = try QualificationDecoder.decode(
            event(["ts": "9223372036854775807", "segments": #"[{"id": 9223372036854775807, "status": 1}]"#]))
        #expect(event.timestamp == .max)
        #expect(event.segments == [.realized(.max)])
    }

    @Test func manyPartnerIDs() throws {
        let ids = (1...40).map { #""\#(20_000 + $0)":"p\#($0)""# }.joined(separator: ",")
        let event = try QualificationDecoder.decode(event(["partner_ids": "{\(ids)}"]))
        #expect(event.partnerIDs.count == 40)
        #expect(event.partnerIDs.id(forDPID: 20_040) == "p40")
    }

    @Test func decodesFromData() throws {
        let data = Data(event().utf8)
        #expect(try QualificationDecoder.decode(data).eventID == "ev-42")
    }
}

@Suite("Qualification decoding: rules of SPEC §2")
struct QualificationDecoderRuleTests {
    @Test func eventID() {
        #expect(reason(event(["event_id": nil])) == "event_id: required")
        #expect(reason(event(["event_id": "42"])) == "event_id: must be a string")
        #expect(reason(event(["event_id": #""""#])) == "event_id: must be 1-128 characters")
        let long = String(repeating: "x", count: 129)
        #expect(reason(event(["event_id": "\"\(long)\""])) == "event_id: must be 1-128 characters")
    }

    @Test func uuid() {
        let rule = "uuid: must be 1-64 characters of [0-9A-Za-z_-]"
        #expect(reason(event(["uuid": nil])) == "uuid: required")
        #expect(reason(event(["uuid": "795526165288603295"])) == "uuid: must be a string")
        #expect(reason(event(["uuid": #""""#])) == rule)
        #expect(reason(event(["uuid": "\"\(String(repeating: "1", count: 65))\""])) == rule)
        #expect(reason(event(["uuid": #""abc def""#])) == rule)
        #expect(reason(event(["uuid": #""abc.def""#])) == rule)
        #expect(reason(event(["uuid": #""é""#])) == rule)
        #expect(reason(event(["uuid": #""a\u0000""#])) == rule)
    }

    @Test func timestamp() {
        let rule = "ts: must be a non-negative integer (ms since the epoch)"
        #expect(reason(event(["ts": nil])) == "ts: required")
        #expect(reason(event(["ts": #""1795982000000""#])) == rule)
        #expect(reason(event(["ts": "1795982000000.5"])) == rule)
        #expect(reason(event(["ts": "1.795982e12"])) == rule)
        #expect(reason(event(["ts": "-1"])) == rule)
        #expect(reason(event(["ts": "9223372036854775808"])) == rule)
        #expect(reason(event(["ts": "null"])) == rule)
    }

    @Test func region() {
        #expect(reason(event(["region": #""7""#])) == "region: must be an integer")
        #expect(reason(event(["region": "7.5"])) == "region: must be an integer")
        #expect(reason(event(["region": "[7]"])) == "region: must be an integer")
    }

    @Test func segmentsShape() {
        #expect(reason(event(["segments": nil])) == "segments: required")
        #expect(reason(event(["segments": "{}"])) == "segments: must be an array")
        #expect(reason(event(["segments": "null"])) == "segments: must be an array")
        #expect(reason(event(["segments": #"[{"id": 1, "status": 1}, 4532]"#])) == "segments[1]: must be an object")
    }

    @Test func segmentID() {
        let rule = "segments[3].id: must be an integer > 0"
        func with(_ id: String) -> String {
            event(["segments": #"[{"id":1,"status":1},{"id":2,"status":1},{"id":3,"status":1},{"id":\#(id),"status":1}]"#])
        }
        #expect(reason(with("0")) == rule)
        #expect(reason(with("-5")) == rule)
        #expect(reason(with("4.5")) == rule)
        #expect(reason(with("4e2")) == rule)
        #expect(reason(with(#""4532""#)) == rule)
        #expect(reason(with("null")) == rule)
        #expect(reason(with("99999999999999999999")) == rule)
        #expect(reason(event(["segments": #"[{"status": 1}]"#])) == "segments[0].id: required")
    }

    @Test func segmentStatus() {
        #expect(reason(event(["segments": #"[{"id": 5}]"#])) == "segments[0].status: required")
        for bad in ["2", "-1", "1.0", #""1""#, "true", "null"] {
            #expect(reason(event(["segments": #"[{"id": 5, "status": \#(bad)}]"#])) == "segments[0].status: must be 0 or 1")
        }
    }

    @Test func duplicateSegments() {
        #expect(
            reason(event(["segments": #"[{"id": 4532, "status": 1}, {"id": 99, "status": 1}, {"id": 4532, "status": 0}]"#])) == "segments[2].id: duplicate segment 4532 (also segments[0])")
        let long = (1...100).map { #"{"id":\#($0),"status":1}"# } + [#"{"id":50,"status":0}"#]
        #expect(
            reason(event(["segments": "[\(long.joined(separator: ","))]"]))
                == "segments[100].id: duplicate segment 50 (also segments[49])")
    }

    @Test func tooManySegments() {
        let segments = (1...10_001).map { #"{"id":\#($0),"status":1}"# }.joined(separator: ",")
        #expect(reason(event(["segments": "[\(segments)]"])) == "segments: more than 10000 entries")
    }

    @Test func partnerIDs() {
        #expect(reason(event(["partner_ids": "[]"])) == "partner_ids: must be an object")
        #expect(reason(event(["partner_ids": #"{"abc": "x"}"#])) == "partner_ids: keys must be digits")
        #expect(reason(event(["partner_ids": #"{"": "x"}"#])) == "partner_ids: keys must be digits")
        #expect(reason(event(["partner_ids": #"{"-1": "x"}"#])) == "partner_ids: keys must be digits")
        #expect(reason(event(["partner_ids": #"{"20915": 6}"#])) == "partner_ids.20915: must be a string")
        #expect(reason(event(["partner_ids": #"{"20915": null}"#])) == "partner_ids.20915: must be a string")
        #expect(reason(event(["partner_ids": #"{"20915": ""}"#])) == "partner_ids.20915: must not be empty")
        #expect(
            reason(event(["partner_ids": #"{"20915": "a", "20914": "b", "20915": "c"}"#]))
                == "partner_ids.20915: duplicate key")
    }

    @Test func duplicateKeysAreRejected() {
        let json = #"{"event_id": "a", "uuid": "u", "uuid": "v", "ts": 1, "segments": []}"#
        #expect(reason(json) == "uuid: duplicate key")
        #expect(reason(event(["segments": #"[{"id": 1, "id": 2, "status": 1}]"#])) == "segments[0].id: duplicate key")
        // Unknown keys are ignored, repeated or not.
        let repeatedUnknown = #"{"x": 1, "event_id": "a", "uuid": "u", "ts": 1, "segments": [], "x": {}}"#
        #expect(throws: Never.self) { try QualificationDecoder.decode(repeatedUnknown) }
    }

    @Test func topLevelMustBeAnObject() {
        #expect(reason("[1, 2]") == "event: must be a JSON object, not an array")
        #expect(reason(#""event""#) == "event: must be a JSON object, not a string")
        #expect(reason("42") == "event: must be a JSON object, not a number")
        #expect(reason("null") == "event: must be a JSON object, not a null")
    }

    @Test func firstProblemInDocumentOrderWins() {
        let json = #"{"event_id": 1, "uuid": "bad uuid", "segments": []}"#
        #expect(reason(json) == "event_id: must be a string")
    }
}

@Suite("Qualification decoding: JSON and UTF-8")
struct QualificationDecoderSyntaxTests {
    @Test func invalidJSONReportsTheByte() {
        #expect(reason("") == "not valid JSON at byte 0: empty input")
        #expect(reason("   ") == "not valid JSON at byte 3: empty input")
        #expect(reason(#"{"event_id" "ev"}"#) == "not valid JSON at byte 12: unexpected '\"', expected ':' after an object key")
        #expect(reason(#"{"uuid": "u",}"#) == "not valid JSON at byte 13: unexpected '}', expected a string key")
        #expect(reason(#"{"a": 1"#) == "not valid JSON at byte 7: unexpected end of input, expected ',' or '}'")
        #expect(reason(#"{"a": [1 2]}"#) == "not valid JSON at byte 9: unexpected '2', expected ',' or ']'")
        #expect(reason(#"{"a": 01}"#) == "not valid JSON at byte 6: leading zero in a number")
        #expect(reason(#"{"a": 1.}"#) == "not valid JSON at byte 8: unexpected '}', expected a digit after '.'")
        #expect(reason(#"{"a": .5}"#) == "not valid JSON at byte 6: unexpected '.', expected a value")
        #expect(reason(#"{"a": +1}"#) == "not valid JSON at byte 6: unexpected '+', expected a value")
        #expect(reason(#"{"a": 1e}"#) == "not valid JSON at byte 8: unexpected '}', expected a digit in the exponent")
        #expect(reason(#"{"a": tru}"#) == "not valid JSON at byte 6: unexpected 't', expected a value")
        #expect(reason(#"{"a": NaN}"#) == "not valid JSON at byte 6: unexpected 'N', expected a value")
        #expect(reason(#"{"a": "x}"#) == "not valid JSON at byte 6: unterminated string")
        #expect(reason(#"{"a": 'x'}"#) == "not valid JSON at byte 6: unexpected ''', expected a value")
        #expect(reason(#"{a: 1}"#) == "not valid JSON at byte 1: unexpected 'a', expected a string key")
    }

    @Test func trailingData() {
        #expect(reason(event() + " {}") == "not valid JSON at byte \(event().utf8.count + 1): unexpected data after the JSON value")
        #expect(reason(event() + "x")?.hasSuffix("unexpected data after the JSON value") == true)
    }

    @Test func syntaxErrorsWinOverRuleViolations() {
        #expect(reason(#"{"uuid": 5, "x": }"#) == "not valid JSON at byte 17: unexpected '}', expected a value")
    }

    @Test func badStrings() {
        #expect(reason("{\"a\": \"x\ny\"}") == "not valid JSON at byte 8: control character 0x0A in a string must be escaped")
        #expect(reason(#"{"a": "\x"}"#) == "not valid JSON at byte 7: invalid escape sequence in a string")
        #expect(reason(#"{"a": "\u12"}"#) == #"not valid JSON at byte 7: \u escape needs 4 hexadecimal digits"#)
        #expect(reason(#"{"a": "\u12G4"}"#) == #"not valid JSON at byte 7: \u escape needs 4 hexadecimal digits"#)
        #expect(reason(#"{"a": "\ud83d"}"#) == #"not valid JSON at byte 7: unpaired surrogate in \u escape"#)
        #expect(reason(#"{"a": "\ud83dx"}"#) == #"not valid JSON at byte 7: unpaired surrogate in \u escape"#)
        #expect(reason(#"{"a": "\ud83d\u0041"}"#) == #"not valid JSON at byte 7: unpaired surrogate in \u escape"#)
        #expect(reason(#"{"a": "\ude00"}"#) == #"not valid JSON at byte 7: unpaired surrogate in \u escape"#)
    }

    @Test func invalidUTF8() {
        let prefix = Array(#"{"a": "x"#.utf8)
        let bad: [[UInt8]] = [
            [0xC3],  // truncated
            [0xC3, 0x28],  // bad continuation
            [0xC0, 0xAF],  // overlong '/'
            [0xE0, 0x80, 0xAF],  // overlong
            [0xED, 0xA0, 0x80],  // UTF-16 surrogate encoded in UTF-8
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xF8, 0x88, 0x80, 0x80, 0x80],
            [0x80],  // lone continuation
            [0xFF],
        ]
        for sequence in bad {
            #expect(reason(bytes: prefix + sequence + Array(#""}"#.utf8)) == "not valid UTF-8 at byte 8")
        }
        #expect(reason(bytes: [0xEF, 0xBB, 0xBF] + Array(event().utf8)) == "not valid JSON at byte 0: unexpected byte 0xEF, expected a value")
    }

    @Test func deepNestingIsRefusedNotCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(reason(event(["x": deep]))?.hasSuffix("nesting deeper than 512 levels") == true)
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect(throws: Never.self) { try QualificationDecoder.decode(event(["x": fine])) }
    }
}
