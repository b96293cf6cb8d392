import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Testing
@testable import RelayRealtime

@Suite("Realtime message format")
struct RealtimeMessageFormatTests {
    let builder = RealtimeMessageBuilder(destinationID: 5001, userDPID: 20915, clientID: "acme")

    @Test func bodyIsTheExactJSONOfTheSpecification() {
        let user = RealtimeUser(uuid: "07955261652886032950143702505894272138",
                                partnerID: "6D92078A-8246-4BA4-AE5B-76104861E7DC", region: 7,
                                timestamp: 1_795_982_000_123,
                                segments: [MappedSegment(alias: "acme-4532", realized: true, segment: 4532),
                                           MappedSegment(alias: "acme-99", realized: false, segment: 99)],
                                offset: 12)
        let body = builder.body(users: [user], processTime: 1_795_982_001_999)
        let expected = #"{"ProcessTime":"2026-11-29T19:53:21Z","User_DPID":"20915","Client_ID":"acme","#
            + #""AAM_Destination_Id":"5001","User_count":"1","Users":[{"AAM_UUID":"07955261652886032950143702505894272138","#
            + #""DataPartner_UUID":"6D92078A-8246-4BA4-AE5B-76104861E7DC","AAM_Regions":["7"],"Segments":["#
            + #"{"Segment_ID":"acme-4532","Status":"1","DateTime":"2026-11-29T19:53:20Z"},"#
            + #"{"Segment_ID":"acme-99","Status":"0","DateTime":"2026-11-29T19:53:20Z"}]}]}"#
        #expect(String(decoding: body, as: UTF8.self) == expected)
        #expect(builder.body(users: [user], processTime: 1_795_982_001_999) == body)
        // Valid JSON, every value a string.
        let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        #expect(json?["User_count"] as? String == "1")
    }

    @Test func stringsAreEscapedAndRegionMayBeAbsent() {
        let user = RealtimeUser(uuid: "u1", partnerID: "a\"b\\c\n", region: nil, timestamp: 0,
                                segments: [MappedSegment(alias: "x", realized: true, segment: 1)], offset: 0)
        let body = builder.body(users: [user, user], processTime: 0)
        let json = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
        let users = json?["Users"] as? [[String: Any]]
        #expect(users?.count == 2)
        #expect(users?.first?["DataPartner_UUID"] as? String == "a\"b\\c\n")
        #expect((users?.first?["AAM_Regions"] as? [Any])?.isEmpty == true)
        #expect(json?["User_count"] as? String == "2")
    }

    @Test func dateTimesMatchFoundationsFormatter() {
        // Foundation as an independent oracle for the byte formatter (seconds, UTC). Foundation switches to the
        // Julian calendar before 1582, so the samples stay within 1906-2286; ours is proleptic Gregorian.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        var rng = SystemRandomNumberGenerator()
        let samples: [Int64] = [0, -1, 999, 1000, 951_782_400_000, 4_107_542_399_999]
            + (0..<2000).map { _ in Int64.random(in: -2_000_000_000_000...10_000_000_000_000, using: &rng) }
        for ms in samples {
            var out: [UInt8] = []
            Timestamps.appendISO8601(milliseconds: ms, to: &out)
            let seconds = (Double(ms) / 1000).rounded(.down)
            let expected = formatter.string(from: Date(timeIntervalSince1970: seconds))
            #expect(String(decoding: out, as: UTF8.self) == expected, "\(ms)")
        }
    }

    @Test func messageIDDependsOnlyOnDestinationAndSources() {
        let a = builder.messageID(topic: "q", partition: 3, offsets: [10, 11, 15])
        #expect(a.count == 32 && a.allSatisfy(\.isHexDigit))
        #expect(builder.messageID(topic: "q", partition: 3, offsets: [10, 11, 15]) == a)
        #expect(builder.messageID(topic: "q", partition: 3, offsets: [10, 11]) != a)
        #expect(builder.messageID(topic: "q", partition: 2, offsets: [10, 11, 15]) != a)
        let other = RealtimeMessageBuilder(destinationID: 5002, userDPID: 20915, clientID: "acme")
        #expect(other.messageID(topic: "q", partition: 3, offsets: [10, 11, 15]) != a)
    }
}

@Suite("Realtime user selection")
struct RealtimeSelectionTests {
    func destination(unsegment: Bool, dpid: Int = 20915) -> (Destination, RealtimeSettings) {
        let settings = RealtimeSettings(url: URL(string: "http://127.0.0.1/aam")!, clientID: "acme", userDPID: dpid,
                                        unsegment: unsegment)
        let mappings = [SegmentMapping(segment: 4532, alias: "a-4532"),
                        SegmentMapping(segment: 99, alias: "a-99", start: CalendarDate(year: 2026, month: 1, day: 1),
                                       end: CalendarDate(year: 2026, month: 6, day: 30))]
        return (Destination(id: 5001, name: "acme", kind: .realtime(settings), mappings: mappings), settings)
    }

    // 2026-03-01T00:00:00Z and 2026-11-29T00:00:00Z
    let inside: Int64 = 1_772_323_200_000
    let after: Int64 = 1_795_910_400_000

    func event(ts: Int64, segments: [SegmentState], partnerIDs: PartnerIDs = ["20915": "P-1"]) -> Qualification {
        Qualification(eventID: "e", uuid: "u1", timestamp: ts, region: 3, segments: segments, partnerIDs: partnerIDs)
    }

    @Test func mappingDatesAreHonoured() {
        let (d, s) = destination(unsegment: true)
        let segments: [SegmentState] = [.realized(4532), .realized(99)]
        guard case .user(let during) = RealtimeSelection.select(event(ts: inside, segments: segments), offset: 1,
                                                                 destination: d, settings: s)
        else { Issue.record("expected a user"); return }
        #expect(during.segments.map(\.alias) == ["a-4532", "a-99"])
        guard case .user(let later) = RealtimeSelection.select(event(ts: after, segments: segments), offset: 1,
                                                                destination: d, settings: s)
        else { Issue.record("expected a user"); return }
        #expect(later.segments.map(\.alias) == ["a-4532"])
        #expect(RealtimeSelection.select(event(ts: after, segments: [.realized(99)]), offset: 1, destination: d,
                                         settings: s) == .none)
    }

    @Test func removalsOnlyWithUnsegment() {
        let segments: [SegmentState] = [.realized(4532), .removed(99)]
        let (on, onSettings) = destination(unsegment: true)
        let (off, offSettings) = destination(unsegment: false)
        guard case .user(let withRemoval) = RealtimeSelection.select(event(ts: inside, segments: segments), offset: 1,
                                                                      destination: on, settings: onSettings)
        else { Issue.record("expected a user"); return }
        #expect(withRemoval.segments.map(\.realized) == [true, false])
        guard case .user(let without) = RealtimeSelection.select(event(ts: inside, segments: segments), offset: 1,
                                                                  destination: off, settings: offSettings)
        else { Issue.record("expected a user"); return }
        #expect(without.segments.map(\.alias) == ["a-4532"])
        #expect(RealtimeSelection.select(event(ts: inside, segments: [.removed(99)]), offset: 1, destination: off,
                                         settings: offSettings) == .none)
    }

    @Test func partnerIDFromUserDPIDOrSkipped() {
        let (d, s) = destination(unsegment: false)
        #expect(RealtimeSelection.select(event(ts: inside, segments: [.realized(4532)], partnerIDs: ["1": "x"]),
                                         offset: 1, destination: d, settings: s) == .skipped)
        let (own, ownSettings) = destination(unsegment: false, dpid: 0)
        guard case .user(let user) = RealtimeSelection.select(event(ts: inside, segments: [.realized(4532)],
                                                                    partnerIDs: [:]),
                                                              offset: 7, destination: own, settings: ownSettings)
        else { Issue.record("expected a user"); return }
        #expect(user.partnerID == "u1" && user.offset == 7 && user.region == 3)
    }
}

@Suite("Chunk assembly")
struct ChunkAssemblerTests {
    let tp = TopicPartition("q", 0)

    func user(_ offset: Int64) -> RealtimeUser {
        RealtimeUser(uuid: "u\(offset)", partnerID: "p\(offset)", region: nil, timestamp: 0,
                     segments: [MappedSegment(alias: "s", realized: true, segment: 1)], offset: offset)
    }

    func entry(_ offset: Int64, ts: Int64, destinations: [Int]) -> ChunkEntry {
        ChunkEntry(offset: offset, kafkaTimestamp: ts,
                   targets: destinations.map { ChunkEntry.Target(destination: $0, user: user(offset)) })
    }

    /// Feeds records and returns the closed chunks as (offsets, users per destination).
    func cut(_ entries: [ChunkEntry], limits: [ChunkAssembler.Limits]) -> [[Int64]] {
        var assembler = ChunkAssembler(limits: limits)
        var chunks: [[Int64]] = []
        for entry in entries {
            chunks += assembler.add(entry, partition: tp, generation: 1, now: .now, wallClockMs: 0).map(\.offsets)
        }
        chunks += assembler.closeAll().map(\.offsets)
        return chunks
    }

    @Test func closesWhenAnyDestinationIsFull() {
        let limits = [ChunkAssembler.Limits(maxUsers: 3, flushIntervalMs: 1000),
                      ChunkAssembler.Limits(maxUsers: 2, flushIntervalMs: 1000)]
        let entries = (0..<7).map { entry(Int64($0), ts: 0, destinations: $0 % 2 == 0 ? [0] : [0, 1]) }
        // Destination 1 fills at offset 3, destination 0 at offset 2 / 5.
        #expect(cut(entries, limits: limits) == [[0, 1, 2], [3, 4, 5], [6]])
    }

    /// `max_message_bytes`: the body of every message stays within it, users stay in order, and a user larger than
    /// the limit on its own travels alone.
    @Test func closesBeforeAUserThatWouldPassTheByteLimit() {
        let builder = RealtimeMessageBuilder(destinationID: 5001, userDPID: 0, clientID: "acme")
        let maxBytes = 1_024
        let limits = [ChunkAssembler.Limits(maxUsers: 1_000, flushIntervalMs: 1_000,
                                            maxUsersBytes: maxBytes - builder.envelopeBytes)]
        func big(_ offset: Int64, aliases: Int) -> ChunkEntry {
            let segments = (0..<aliases).map { MappedSegment(alias: "alias-\($0)", realized: true, segment: Int64($0)) }
            let user = RealtimeUser(uuid: "u\(offset)", partnerID: "p\(offset)", region: nil, timestamp: 0,
                                    segments: segments, offset: offset)
            return ChunkEntry(offset: offset, kafkaTimestamp: 0, targets: [.init(destination: 0, user: user)])
        }
        let entries = (0..<40).map { big(Int64($0), aliases: $0 == 17 ? 40 : 1 + $0 % 4) }
        var assembler = ChunkAssembler(limits: limits)
        var chunks: [Chunk] = []
        for entry in entries {
            chunks += assembler.add(entry, partition: tp, generation: 1, now: .now, wallClockMs: 0)
        }
        chunks += assembler.closeAll()
        #expect(chunks.count > 3)
        #expect(chunks.flatMap(\.offsets) == (0..<40).map(Int64.init))
        for (index, chunk) in chunks.enumerated() {
            let body = builder.body(users: chunk.users[0], processTime: 1_795_982_001_999)
            if chunk.offsets == [17] {
                #expect(body.count > maxBytes)  // alone, and over: the partner decides
            } else {
                #expect(body.count <= maxBytes, "\(chunk.offsets): \(body.count) bytes")
            }
            // Not cut needlessly early: the next record's user would not have fitted.
            if index + 1 < chunks.count, let next = chunks[index + 1].users[0].first {
                #expect(chunk.usersBytes[0] + 1 + next.json.count > limits[0].maxUsersBytes, "\(chunk.offsets)")
            }
        }
    }

    @Test func closesBeforeARecordAFlushIntervalLater() {
        let limits = [ChunkAssembler.Limits(maxUsers: 10, flushIntervalMs: 100)]
        let entries = [entry(0, ts: 1000, destinations: [0]), entry(1, ts: 1050, destinations: [0]),
                       entry(2, ts: 1100, destinations: [0]), entry(3, ts: 1150, destinations: [0])]
        #expect(cut(entries, limits: limits) == [[0, 1], [2, 3]])
    }

    @Test func recordsWithoutUsersAreFinalAloneOrJoinTheOpenChunk() {
        let limits = [ChunkAssembler.Limits(maxUsers: 2, flushIntervalMs: 1000)]
        let entries = [entry(0, ts: 0, destinations: []), entry(1, ts: 0, destinations: [0]),
                       entry(2, ts: 0, destinations: []), entry(3, ts: 0, destinations: [0]),
                       entry(4, ts: 0, destinations: [])]
        #expect(cut(entries, limits: limits) == [[0], [1, 2, 3], [4]])
    }

    @Test func aReplayFromAChunkStartCutsTheSameChunks() {
        let limits = [ChunkAssembler.Limits(maxUsers: 3, flushIntervalMs: 100),
                      ChunkAssembler.Limits(maxUsers: 5, flushIntervalMs: 100)]
        var rng = SystemRandomNumberGenerator()
        var ts: Int64 = 0
        let entries = (0..<200).map { offset -> ChunkEntry in
            ts += Int64.random(in: 0...30, using: &rng)
            let destinations = [[], [0], [1], [0, 1]][Int.random(in: 0...3, using: &rng)]
            return entry(Int64(offset), ts: ts, destinations: destinations)
        }
        let original = cut(entries, limits: limits)
        for start in original.dropLast().map({ $0[0] }) where start > 0 {
            let replay = cut(Array(entries[Int(start)...]), limits: limits)
            #expect(Array(original.drop { $0[0] < start }) == replay)
        }
    }

    @Test func quietPartitionsCloseByTimeAndGenerationsNeverMix() {
        var assembler = ChunkAssembler(limits: [ChunkAssembler.Limits(maxUsers: 10, flushIntervalMs: 100)])
        let start = ContinuousClock.now
        _ = assembler.add(entry(0, ts: 5000, destinations: [0]), partition: tp, generation: 1, now: start,
                          wallClockMs: 5000)
        #expect(assembler.closeDue(now: start + .milliseconds(99)).isEmpty)
        #expect(assembler.closeDue(now: start + .milliseconds(150)).map(\.offsets) == [[0]])
        _ = assembler.add(entry(1, ts: 6000, destinations: [0]), partition: tp, generation: 1, now: start,
                          wallClockMs: 6000)
        let closed = assembler.add(entry(2, ts: 6000, destinations: [0]), partition: tp, generation: 2, now: start,
                                   wallClockMs: 6000)
        #expect(closed.map(\.offsets) == [[1]])
        assembler.drop([tp])
        #expect(assembler.openCount == 0)
    }
}

@Suite("Delivery policy")
struct DeliveryPolicyTests {
    @Test func statusClasses() {
        #expect(AttemptResult.classify(status: 200, retryAfter: nil) == .delivered(status: 200))
        #expect(AttemptResult.classify(status: 204, retryAfter: nil) == .delivered(status: 204))
        for status in [408, 429, 500, 502, 503] {
            guard case .retryable = AttemptResult.classify(status: status, retryAfter: nil) else {
                Issue.record("\(status) should be retried"); continue
            }
        }
        for status in [400, 401, 403, 404, 413] {
            guard case .rejected = AttemptResult.classify(status: status, retryAfter: nil) else {
                Issue.record("\(status) should be rejected"); continue
            }
        }
    }

    @Test func retryAfterSecondsAndHTTPDate() {
        #expect(RetryAfter.parse("2") == .seconds(2))
        #expect(RetryAfter.parse("soon") == nil)
        let now = Date(timeIntervalSince1970: 1_795_982_000)
        #expect(RetryAfter.parse("Sun, 29 Nov 2026 19:53:30 GMT", now: now) == .seconds(10))
        #expect(AttemptResult.classify(status: 429, retryAfter: "3")
            == .retryable(reason: "HTTP 429", retryAfter: .seconds(3)))
    }

    @Test func retryAfterFromOutsideNeverTraps() {
        let now = Date(timeIntervalSince1970: 1_795_982_000)
        #expect(RetryAfter.parse("9223372036854775807") == .seconds(3600))
        #expect(RetryAfter.parse("99999999999999999999999") == nil)
        #expect(RetryAfter.parse("-5") == nil)
        #expect(RetryAfter.parse("Fri, 31 Dec 9999 23:59:59 GMT", now: now) == .seconds(3600))
        let backoff = RetryBackoff(policy: RetryPolicy(maxAttempts: .max, initialBackoffMs: .max, maxBackoffMs: .max))
        #expect(backoff.delay(afterAttempt: .max, retryAfter: nil, random: 1) >= .zero)
    }

    @Test func exponentialBackoffWithFullJitter() {
        let backoff = RetryBackoff(policy: RetryPolicy(maxAttempts: 4, initialBackoffMs: 100, maxBackoffMs: 1000))
        #expect(backoff.bound(afterAttempt: 1) == .milliseconds(100))
        #expect(backoff.bound(afterAttempt: 3) == .milliseconds(400))
        #expect(backoff.bound(afterAttempt: 9) == .milliseconds(1000))
        #expect(backoff.delay(afterAttempt: 3, retryAfter: nil, random: 0.5) == .milliseconds(200))
        #expect(backoff.delay(afterAttempt: 1, retryAfter: .seconds(2), random: 1) == .seconds(2))
        #expect(backoff.allowsAnother(after: 3) && !backoff.allowsAnother(after: 4))
    }

    @Test func breakerOpensProbesAndCloses() {
        var breaker = CircuitBreaker(failureThreshold: 3, coolDown: .seconds(1))
        let t0 = ContinuousClock.now
        var allowed: [Bool] = []
        for _ in 0..<3 {
            allowed.append(breaker.allowRequest(now: t0))
            breaker.recordFailure(now: t0)
        }
        #expect(allowed == [true, true, true])
        #expect(breaker.state.gaugeValue == 1)
        allowed = [breaker.allowRequest(now: t0 + .milliseconds(500)),
                   breaker.allowRequest(now: t0 + .seconds(1)),  // the probe
                   breaker.allowRequest(now: t0 + .seconds(1))]  // only one
        #expect(allowed == [false, true, false])
        breaker.recordFailure(now: t0 + .seconds(1))
        allowed = [breaker.allowRequest(now: t0 + .milliseconds(1500)), breaker.allowRequest(now: t0 + .seconds(2))]
        #expect(allowed == [false, true])
        breaker.recordSuccess()
        let closed = breaker.allowRequest(now: t0 + .seconds(2))
        #expect(breaker.state == .closed && closed)
    }

    @Test func tokenBucketSpacesRequests() {
        let t0 = ContinuousClock.now
        var bucket = TokenBucket(ratePerSecond: 2, now: t0)
        let waits = [bucket.reserve(now: t0), bucket.reserve(now: t0), bucket.reserve(now: t0),
                     bucket.reserve(now: t0), bucket.reserve(now: t0 + .seconds(2))]
        #expect(waits == [.zero, .zero, .milliseconds(500), .milliseconds(1000), .zero])
    }
}
