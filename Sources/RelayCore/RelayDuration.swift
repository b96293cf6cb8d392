/// A duration written in the configuration as a string with a unit: `500ms`, `30s`, `10m`, `24h`, `1d`, or a
/// sum of such parts (`1h30m`). Whole numbers only; a bare number is refused because `30` could mean anything.
public struct RelayDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public static func milliseconds(_ value: Int64) -> RelayDuration { RelayDuration(milliseconds: value) }
    public static func seconds(_ value: Int64) -> RelayDuration { RelayDuration(milliseconds: value * 1_000) }
    public static func minutes(_ value: Int64) -> RelayDuration { RelayDuration(milliseconds: value * 60_000) }
    public static func hours(_ value: Int64) -> RelayDuration { RelayDuration(milliseconds: value * 3_600_000) }
    public static func days(_ value: Int64) -> RelayDuration { RelayDuration(milliseconds: value * 86_400_000) }

    public static let zero = RelayDuration(milliseconds: 0)

    /// The same span as a `Swift.Duration`, for clocks and sleeps.
    public var duration: Duration { .milliseconds(milliseconds) }

    public static func < (lhs: RelayDuration, rhs: RelayDuration) -> Bool { lhs.milliseconds < rhs.milliseconds }

    /// The shortest way to write it back: `24h`, `90s`, `1500ms`.
    public var description: String {
        for (unit, size) in Self.units.reversed() where milliseconds != 0 && milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }

    static let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]

    /// Why a duration string was refused; `message` reads well after `<path>: `.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Parses `500ms`, `30s`, `10m`, `24h`, `1d` and sums such as `1h30m`.
    public init(parsing text: String) throws(ParseError) {
        let unitList = "(ms, s, m, h, d)"
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else {
            throw ParseError(message: "must be a duration with a unit such as 500ms, 30s, 10m or 24h")
        }
        var total: Int64 = 0
        var index = 0
        while index < bytes.count {
            var number: Int64 = 0
            let numberStart = index
            while index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 {
                let (times10, o1) = number.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int64(bytes[index] - UInt8(ascii: "0")))
                guard !o1 && !o2 else { throw ParseError(message: "\"\(text)\" is too long a duration") }
                number = sum
                index += 1
            }
            guard index > numberStart else {
                throw ParseError(message: "\"\(text)\" is not a duration such as 500ms, 30s, 10m or 24h")
            }
            let unitStart = index
            while index < bytes.count, bytes[index] &- UInt8(ascii: "0") >= 10 { index += 1 }
            let unit = String(decoding: bytes[unitStart..<index], as: UTF8.self)
            guard !unit.isEmpty else {
                throw ParseError(message: "\"\(text)\" has no unit \(unitList)")
            }
            guard let size = Self.units.first(where: { $0.0 == unit })?.1 else {
                throw ParseError(message: "unknown unit \"\(unit)\" in \"\(text)\" \(unitList)")
            }
            let (part, o1) = number.multipliedReportingOverflow(by: size)
            let (sum, o2) = total.addingReportingOverflow(part)
            guard !o1 && !o2 else { throw ParseError(message: "\"\(text)\" is too long a duration") }
            total = sum
        }
        guard total <= Self.longest.milliseconds else {
            throw ParseError(message: "\"\(text)\" is longer than \(Self.longest) (100 years)")
        }
        milliseconds = total
    }

    /// No configured duration is longer: added to any event time of this era it stays far from `Int64` overflow.
    public static let longest = RelayDuration(milliseconds: 36_500 * 86_400_000)
}
