import RelayCore
import RelayEncoding
import Testing

/// The pixel contract's decoders are as strict as the qualification decoder: what the shared scanner refuses, and
/// what the contract forbids, is refused with a reason.
@Suite struct PixelContractTests {
    static let valid = #"{"type":"fired","pixel_id":"p1","destination_id":7001,"uuid":"u1","ts":5,"aliases":["a"],"url":"http://x","source":"edge"}"#

    @Test func decodesTheCanonicalForm() throws {
        let event = try PixelEvent.decode(Array(Self.valid.utf8))
        #expect(event.jsonBytes() == Array(Self.valid.utf8))
        #expect(event.source == .edge && event.destinationID == 7001)
    }

    @Test(arguments: [
        (#"{"type":"fired","pixel_id":"p1","destination_id":7001,"ts":nan}"#, "ts: expected an integer"),
        (#"{"type":"fired","pixel_id":"p1","destination_id":7001,"ts":inf}"#, "ts: expected an integer"),
        (#"{"type":"fired","pixel_id":"p1","destination_id":7001,"ts":1,"x":NaN}"#, "expected a value"),
        (#"{"type":"fired","pixel_id":"p\x31","destination_id":7001,"ts":1}"#, "invalid escape"),
        (#"{"type":"fired","pixel_id":"p\u12","destination_id":7001,"ts":1}"#, "4 hexadecimal digits"),
        (#"{"type":"fired","pixel_id":"p\ud800","destination_id":7001,"ts":1}"#, "unpaired surrogate"),
        (#"{"type":"fired","pixel_id":"p1","pixel_id":"p2","destination_id":7001,"ts":1}"#, "pixel_id: duplicate key"),
        (#"{"type":"fired","type":"received","pixel_id":"p1","destination_id":7001,"ts":1}"#, "type: duplicate key"),
        (#"{"type":"fired","pixel_id":"p1","destination_id":7001,"ts":99999999999999999999}"#, "64-bit range"),
        (#"{"type":"fired","pixel_id":"p1","destination_id":7001,"ts":1,"source":"pigeon"}"#, "source: expected"),
    ])
    func refusesWhatTheContractForbids(_ json: String, _ reason: String) {
        for decode in [{ _ = try PixelEvent.decode(Array(json.utf8)) }, { _ = try PixelSighting.decode(Array(json.utf8)) }]
            as [() throws -> Void]
        {
            #expect {
                try decode()
            } throws: { error in
                (error as? MalformedPixelEvent)?.reason.contains(reason) == true
            }
        }
    }

    @Test func refusesInvalidUTF8() {
        var bytes = Array(#"{"type":"fired","pixel_id":"p"#.utf8)
        bytes += [0xC3, 0x28]  // a lead byte followed by a non-continuation byte
        bytes += Array(#"","destination_id":7001,"ts":1}"#.utf8)
        #expect(throws: MalformedPixelEvent.self) { try PixelEvent.decode(bytes) }
        #expect(throws: MalformedPixelEvent.self) { try PixelSighting.decode(bytes) }
    }

    @Test func auditReportsThatDoNotAddUpAreRefused() throws {
        let report = AuditReport(destinationID: 7001, windowStart: 0, windowEnd: 600_000, fired: 10, received: 8,
                                 lateReceipts: 1, duplicateReceipts: 0, unmatchedReceipts: 2, maxLossRate: 0.1,
                                 partition: 2)
        #expect(try AuditReport.decode(report.jsonBytes()) == report)
        let text = String(decoding: report.jsonBytes(), as: UTF8.self)
        for forged in [text.replacingOccurrences(of: #""lost":2"#, with: #""lost":-2"#),
                       text.replacingOccurrences(of: #""received":8"#, with: #""received":80"#),
                       text.replacingOccurrences(of: #""fired":10"#, with: #""fired":1e3"#),
                       text.replacingOccurrences(of: #""window_end":600000"#, with: #""window_end":0"#),
                       text.replacingOccurrences(of: #","alert":true"#, with: "")]
        {
            #expect(throws: MalformedInput.self) { try AuditReport.decode(Array(forged.utf8)) }
        }
    }

    @Test func mergingHugeCountsSaturatesInsteadOfTrapping() throws {
        let huge = AuditReport(destinationID: 1, windowStart: 0, windowEnd: 10, fired: .max, received: 0,
                               lateReceipts: .max, duplicateReceipts: 0, unmatchedReceipts: 0, maxLossRate: 0.2,
                               partition: 0)
        let merged = try #require(AuditReport.merged([huge, huge, huge], maxLossRate: 0.2))
        #expect(merged.fired == .max && merged.lateReceipts == .max && merged.lost == .max)
    }
}
