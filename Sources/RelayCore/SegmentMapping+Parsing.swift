extension SegmentMapping {
    static func read(_ reader: MappingReader, rules: AliasRules) -> SegmentMapping? {
        let segment = reader.int64("segment", required: true, atLeast: 1)
        let alias = reader.string("alias")
        var valid = true
        func date(_ key: String) -> CalendarDate? {
            guard let text = reader.string(key) else { return nil }
            guard let date = CalendarDate(text) else {
                reader.report(key, "must be a date written YYYY-MM-DD")
                valid = false
                return nil
            }
            return date
        }
        let start = date("start")
        let end = date("end")
        if let start, let end, end < start {
            reader.report("end", "before start")
            valid = false
        }
        if let alias, let problem = rules.problem(with: alias) {
            reader.report("alias", problem)
            valid = false
        }
        reader.reportUnknownKeys()
        guard valid, let segment else { return nil }
        let mapping = SegmentMapping(segment: segment, alias: alias, start: start, end: end)
        // A defaulted alias is the segment id, fine everywhere except as a key=value pair.
        if alias == nil, let problem = rules.problem(with: mapping.alias) {
            reader.report("alias", "required: \(problem)")
            return nil
        }
        return mapping
    }
}

/// What a destination's aliases must look like to be delivered intact.
///
/// Judged from the kind's name, so that batch aliases are checked even when the rest of the batch settings are
/// broken; cookie rules need the separators and apply only once the cookie settings are valid.
struct AliasRules {
    var kindName: String?
    var cookie: CookieSettings?

    init(kindName: String?, kind: Destination.Kind?) {
        self.kindName = kindName
        cookie = kind?.cookieSettings
    }

    /// Why `alias` cannot be delivered, if it cannot.
    func problem(with alias: String) -> String? {
        if alias.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "must not contain control characters"
        }
        if kindName == "batch" && (alias.contains(",") || alias.contains(where: \.isWhitespace)) {
            return "must not contain ',' or spaces (they separate aliases in batch lines)"
        }
        if let settings = cookie {
            if settings.format == .keyValue {
                guard let range = alias.range(of: settings.keySeparator), range.lowerBound != alias.startIndex,
                    range.upperBound != alias.endIndex
                else { return "must be written key\(settings.keySeparator)value for format key_value" }
            }
            if alias.contains(settings.pairSeparator) {
                return "must not contain the pair separator \"\(settings.pairSeparator)\""
            }
            if settings.format == .serialized && alias.contains(settings.valueSeparator) {
                return "must not contain the value separator \"\(settings.valueSeparator)\""
            }
        }
        return nil
    }
}

extension Destination.Kind {
    fileprivate var cookieSettings: CookieSettings? {
        if case .cookie(let settings) = self { settings } else { nil }
    }
}
