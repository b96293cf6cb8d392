import RelayCore
import Testing

@Suite struct HostileEventTests {
    @Test(arguments: ["x 4532\nVICTIM 4532,99 ", "a,b", "tab\there", "nul\u{0}", "del\u{7F}", "space here"])
    func partnerIDsThatCouldForgeABatchLineAreRefused(_ id: String) {
        let event = Qualification(eventID: "e1", uuid: "1234", timestamp: 1_796_000_000_000, region: nil,
                                  segments: [.realized(1)], partnerIDs: ["20914": id])
        #expect {
            try QualificationDecoder.decode(event.jsonBytes())
        } throws: { error in
            (error as? MalformedEvent)?.reason.contains("partner_ids.20914") == true
        }
    }

    @Test func ordinaryPartnerIDsStillPass() throws {
        let event = Qualification(eventID: "e1", uuid: "1234", timestamp: 1_796_000_000_000, region: nil,
                                  segments: [.realized(1)], partnerIDs: ["20914": "6D92078A-8246_é.x:y"])
        #expect(try QualificationDecoder.decode(event.jsonBytes()).partnerIDs["20914"] == "6D92078A-8246_é.x:y")
    }
}
