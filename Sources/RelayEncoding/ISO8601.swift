import Foundation

/// ISO-8601 times as the partner formats and dead letters write them (`2026-11-29T20:13:16Z`, seconds, UTC),
/// formatted byte by byte: realtime bodies write one for every user of every message.
public enum Timestamps {
    /// `2026-11-29T20:13:16Z`, as the partner formats use (seconds, UTC).
    public static func iso8601(_ date: Date) -> String {
        iso8601(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    public static func iso8601(milliseconds: Int64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(20)
        appendISO8601(milliseconds: milliseconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `2026-11-29T20:13:16Z` (seconds, UTC) as bytes, without Foundation: partner formats write one for
    /// every user of every message.
    public static func appendISO8601(milliseconds: Int64, to out: inout [UInt8]) {
        var seconds = milliseconds / 1000
        if milliseconds < 0, milliseconds % 1000 != 0 { seconds -= 1 }
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondsOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        if year < 0 { out.append(UInt8(ascii: "-")) }
        digits(abs(year), 4)
        out.append(UInt8(ascii: "-"))
        digits(month, 2)
        out.append(UInt8(ascii: "-"))
        digits(day, 2)
        out.append(UInt8(ascii: "T"))
        digits(secondsOfDay / 3600, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondsOfDay / 60 % 60, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondsOfDay % 60, 2)
        out.append(UInt8(ascii: "Z"))
    }

    /// Accepts `2026-11-29T20:13:16Z`, with optional fractional seconds or a `+hh:mm` offset.
    public static func parseISO8601(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFraction.date(from: text) { return date }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text)
    }

    /// Howard Hinnant's days-to-civil algorithm: no calendar objects on hot paths.
    public static func civilDate(daysSinceEpoch: Int64) -> (Int, Int, Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (Int(y), Int(m), Int(d))
    }
}

extension Timestamps {
    /// A time given by an operator or a caller: milliseconds since the epoch, or ISO-8601. nil when it is neither, or
    /// lies outside what an `Int64` of milliseconds holds.
    public static func parseMilliseconds(_ text: String) -> Int64? {
        if let ms = Int64(text) { return ms }
        guard let date = parseISO8601(text) else { return nil }
        return Int64(exactly: (date.timeIntervalSince1970 * 1000).rounded(.down))
    }
}

extension Timestamps {
    /// The wall clock in milliseconds since the epoch; one `clock_gettime`, no `Date` (the edge reads it per request).
    public static func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
