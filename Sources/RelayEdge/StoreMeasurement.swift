import Foundation
import RelayCore

/// `relay-edge --measure-store N`: fills a ``SegmentStore`` with N users shaped like the platform's (38-digit ids,
/// 1–6 segments, as ``SampleEvents``) and reports the memory it holds, for sizing and the benchmark.
public enum StoreMeasurement {
    public struct Result: Sendable, CustomStringConvertible {
        public var users: Int
        public var memberships: Int
        public var storeBytes: Int
        public var residentBytesAdded: Int
        public var seconds: Double

        /// Bytes per user once 4 bytes per membership are set aside (the target is 64).
        public var bytesPerUserBeyondSegments: Double {
            Double(storeBytes - 4 * memberships) / Double(max(users, 1))
        }

        public var description: String {
            String(format: "users=%d memberships=%d store_bytes=%d bytes_per_user=%.1f "
                       + "bytes_per_user_beyond_4_per_membership=%.1f rss_added_bytes=%d rss_per_user=%.1f fill_seconds=%.2f",
                   users, memberships, storeBytes, Double(storeBytes) / Double(max(users, 1)),
                   bytesPerUserBeyondSegments, residentBytesAdded, Double(residentBytesAdded) / Double(max(users, 1)),
                   seconds)
        }
    }

    public static func run(users: Int, seed: UInt64 = 42) -> Result {
        let rssBefore = residentBytes()
        let start = ContinuousClock.now
        let store = SegmentStore()
        var random = SplitMix64(seed: seed)
        var memberships = 0
        var batch: [UserUpdate] = []
        batch.reserveCapacity(10_000)
        for n in 0..<users {
            var digits = String(1 + random.next() % 9)
            while digits.utf8.count < 38 {
                let chunk = String(random.next() % 1_000_000_000_000_000)
                digits += String(repeating: "0", count: 18 - chunk.utf8.count) + chunk
            }
            var segments: [UInt32] = []
            if random.next() % 100 < 60 { segments.append(4532) }
            if random.next() % 100 < 40 { segments.append(99) }
            for _ in 0..<(Int(random.next() % 5) + (segments.isEmpty ? 1 : 0)) {
                let segment = UInt32(1000 + random.next() % 1000)
                if !segments.contains(segment) { segments.append(segment) }
            }
            memberships += segments.count
            batch.append(UserUpdate(uuid: String(digits.prefix(38)),
                                    state: UserState(region: [3, 6, 7, 9, 11][n % 5], segments: segments)))
            if batch.count == 10_000 {
                store.apply(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        store.apply(batch)
        let elapsed = ContinuousClock.now - start
        return Result(users: store.userCount, memberships: memberships, storeBytes: store.byteCount,
                      residentBytesAdded: residentBytes() - rssBefore,
                      seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// Resident set size from /proc/self/statm (0 where unavailable).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
