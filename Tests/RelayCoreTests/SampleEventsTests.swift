import Testing

@testable import RelayCore

@Suite("Sample events and the encoder")
struct SampleEventsTests {
    static let now: Int64 = 1_795_982_000_000

    @Test func deterministicForASeed() {
        var first = SampleEvents(seed: 7, users: 100, now: Self.now)
        var second = SampleEvents(seed: 7, users: 100, now: Self.now)
        var other = SampleEvents(seed: 8, users: 100, now: Self.now)
        let a = (0..<200).map { _ in first.next() }
        let b = (0..<200).map { _ in second.next() }
        let c = (0..<200).map { _ in other.next() }
        #expect(a == b)
        #expect(a != c)
    }

    @Test func realisticMix() throws {
        var samples = SampleEvents(seed: 42, users: 500, now: Self.now)
        let events = (0..<5_000).map { _ in samples.next() }
        let users = Set(events.map(\.uuid))
        #expect(users.count > 300 && users.count <= 500, "users repeat")
        #expect(Set(events.map(\.eventID)).count == events.count, "event ids are unique")
        #expect(events.allSatisfy { $0.uuid.count == 38 && $0.uuid.allSatisfy(\.isNumber) && $0.uuid.first != "0" })
        #expect(events.allSatisfy { $0.timestamp <= Self.now && $0.timestamp > Self.now - 60_000 })
        #expect(events.allSatisfy { $0.region != nil })
        let segments = events.flatMap(\.segments)
        #expect(segments.contains(.realized(4532)))
        #expect(segments.contains(.realized(99)))
        #expect(segments.contains { !$0.realized }, "some removals")
        #expect(segments.contains { (1000...1999).contains($0.id) })
        let with20915 = events.filter { $0.partnerIDs.id(forDPID: 20915) != nil }.count
        let with20914 = events.filter { $0.partnerIDs.id(forDPID: 20914) != nil }.count
        #expect(with20915 > events.count * 3 / 4 && with20915 < events.count)
        #expect(with20914 > events.count / 2 && with20914 < events.count)
        // A user's traits are stable across events.
        let byUser = Dictionary(grouping: events, by: \.uuid)
        for (_, events) in byUser {
            #expect(Set(events.map(\.region)).count == 1)
            #expect(Set(events.map(\.partnerIDs)).count == 1)
        }
    }

    @Test func roundTripThroughTheDecoder() throws {
        var samples = SampleEvents(seed: 3, users: 1_000, now: Self.now)
        for _ in 0..<2_000 {
            let event = samples.next()
            #expect(try QualificationDecoder.decode(event.jsonBytes()) == event)
        }
    }

    @Test func canonicalForm() {
        let event = Qualification(
            eventID: "ev-42", uuid: "07955261652886032950143702505894272138", timestamp: 1_795_982_000_000,
            region: 7, segments: [.realized(4532), .removed(99)],
            partnerIDs: ["20915": "6D92078A-8246-4BA4-AE5B-76104861E7DC"])
        #expect(
            event.jsonString()
                == #"{"event_id":"ev-42","uuid":"07955261652886032950143702505894272138","ts":1795982000000,"#
                + #""region":7,"segments":[{"id":4532,"status":1},{"id":99,"status":0}],"#
                + #""partner_ids":{"20915":"6D92078A-8246-4BA4-AE5B-76104861E7DC"}}"#)
        let bare = Qualification(eventID: "e", uuid: "u", timestamp: 0, segments: [])
        #expect(bare.jsonString() == #"{"event_id":"e","uuid":"u","ts":0,"segments":[]}"#)
    }

    @Test func encoderEscapesStrings() throws {
        let tricky = "q\"b\\s/\n\r\t\u{08}\u{0C}\u{01}\u{1F}é😀"
        let event = Qualification(eventID: tricky, uuid: "u", timestamp: -5, segments: [.realized(.max)])
        let json = event.jsonString()
        #expect(json.contains(#""q\"b\\s/\n\r\t\b\f\u0001\u001fé😀""#))
        #expect(json.contains(#""ts":-5"#))
        #expect(json.contains("9223372036854775807"))
        var valid = event
        valid.timestamp = 5
        #expect(try QualificationDecoder.decode(valid.jsonBytes()) == valid)
    }

    /// Not a benchmark (no timing is asserted): makes sure a realistic volume decodes without trouble.
    @Test func decodesOneHundredThousandEvents() throws {
        var samples = SampleEvents(seed: 11, users: 20_000, now: Self.now)
        var encoded: [[UInt8]] = []
        encoded.reserveCapacity(100_000)
        for _ in 0..<100_000 { encoded.append(samples.next().jsonBytes()) }
        var segments = 0
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for bytes in encoded { segments += try QualificationDecoder.decode(bytes).segments.count }
        }
        #expect(segments > 100_000)
        print("decoded 100k sample events in \(elapsed)")
    }
}
