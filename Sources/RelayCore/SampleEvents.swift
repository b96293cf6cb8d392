/// Realistic, reproducible qualification events for `relayctl produce --sample N` and for tests.
///
/// The same `seed`, `users` and `now` always give the same sequence. Each user has stable traits derived from the
/// seed and the user's number: a 38-digit numeric uuid, a region, partner ids for DPIDs 20915 (about 85% of users,
/// UUID-style) and 20914 (about 70%, hex), and a set of 1–6 segments that always draws on the segments of the
/// example configuration (4532 and 99 are common) plus a long tail between 1000 and 1999. Each event lists the
/// segments the user is realized in and, now and then, one removed (status 0). Users repeat, so that per-user state
/// (iter mode, the edge's current segments) sees updates. `ts` lies within the minute before `now`.
public struct SampleEvents: Sendable {
    /// DPIDs for which sample users carry partner ids.
    public static let partnerDPIDs = (primary: 20915, secondary: 20914)
    /// The segments of the example configuration (SPEC §3), frequent in the samples.
    public static let commonSegments: [Int64] = [4532, 99]
    public static let tailSegments: ClosedRange<Int64> = 1000...1999

    public let seed: UInt64
    public let users: Int
    public let now: Int64
    private var random: SplitMix64
    private var sequence: UInt64 = 0

    /// - Parameters:
    ///   - users: size of the user population (at least 1).
    ///   - now: milliseconds since the epoch; events are stamped in the minute before it.
    public init(seed: UInt64, users: Int = 10_000, now: Int64) {
        precondition(users >= 1, "SampleEvents needs at least one user")
        self.seed = seed
        self.users = users
        self.now = now
        random = SplitMix64(seed: seed)
    }

    /// The next event; the sequence never ends.
    public mutating func next() -> Qualification {
        sequence += 1
        let userNumber = Int(random.next() % UInt64(users))
        let user = SampleUser(seed: seed, number: userNumber)
        var segments: [SegmentState] = []
        var removedOne = false
        for segment in user.segments {
            // Mostly still realized; otherwise removed by this evaluation (at most one per event) or just absent.
            let roll = random.next() % 100
            if roll < 85 {
                segments.append(.realized(segment))
            } else if roll < 95 && !removedOne {
                segments.append(.removed(segment))
                removedOne = true
            }
        }
        let timestamp = now - Int64(random.next() % 60_000)
        return Qualification(
            eventID: "sample-\(String(seed, radix: 16))-\(sequence)",
            uuid: user.uuid,
            timestamp: timestamp,
            region: user.region,
            segments: segments,
            partnerIDs: user.partnerIDs)
    }
}

/// The stable traits of one sample user, derived from the seed and the user's number alone.
private struct SampleUser {
    static let regions = [3, 6, 7, 9, 11]

    var uuid: String
    var region: Int
    var partnerIDs: PartnerIDs
    var segments: [Int64]

    init(seed: UInt64, number: Int) {
        var random = SplitMix64(seed: seed ^ (UInt64(number) &* 0xD6E8_FEB8_6659_FD93))
        // 38 digits, like the platform's ids: a non-zero lead digit and 37 more.
        var digits = String(1 + random.next() % 9)
        while digits.count < 38 {
            let chunk = String(random.next() % 1_000_000_000_000_000)
            digits += String(repeating: "0", count: 18 - chunk.count) + chunk
        }
        uuid = String(digits.prefix(38))
        region = Self.regions[Int(random.next() % UInt64(Self.regions.count))]

        var ids = PartnerIDs()
        if random.next() % 100 < 85 { ids["\(SampleEvents.partnerDPIDs.primary)"] = Self.uuidStyle(&random) }
        if random.next() % 100 < 70 {
            ids["\(SampleEvents.partnerDPIDs.secondary)"] = String(random.next(), radix: 16, uppercase: false)
        }
        partnerIDs = ids

        var segments: [Int64] = []
        if random.next() % 100 < 60 { segments.append(4532) }
        if random.next() % 100 < 40 { segments.append(99) }
        let tail = Int(random.next() % 5) + (segments.isEmpty ? 1 : 0)
        let span = UInt64(SampleEvents.tailSegments.count)
        for _ in 0..<tail {
            let segment = SampleEvents.tailSegments.lowerBound + Int64(random.next() % span)
            if !segments.contains(segment) { segments.append(segment) }
        }
        self.segments = segments
    }

    /// An upper-case 8-4-4-4-12 hex id, as partners' cookie ids usually look.
    static func uuidStyle(_ random: inout SplitMix64) -> String {
        let hex = Array("0123456789ABCDEF")
        var text = ""
        for index in 0..<32 {
            if [8, 12, 16, 20].contains(index) { text.append("-") }
            text.append(hex[Int(random.next() % 16)])
        }
        return text
    }
}
