extension URLSettings {
    static func read(_ reader: MappingReader) -> URLSettings? {
        let url = template(reader, "url", required: true, secure: false)
        let secureURL = template(reader, "secure_url", required: false, secure: true)
        var serialize: SerializeSettings?
        if reader.has("serialize") {
            if let serializeReader = reader.mapping("serialize") {
                serialize = SerializeSettings(delimiter: serializeReader.string("delimiter") ?? ",")
                serializeReader.reportUnknownKeys()
            }
        } else {
            reader.ignore("serialize")
        }
        let audit: PixelAuditMode = reader.choice("audit", "audit") ?? .none
        var maxLossRate = 0.20
        if let rate = reader.number("max_loss_rate") {
            if (0...1).contains(rate) {
                maxLossRate = rate
            } else {
                reader.report("max_loss_rate", "must be between 0 and 1")
            }
        }
        let receiptsToken = reader.secret("receipts_token", required: false)
        guard let url, secureURL != nil || !reader.has("secure_url") else { return nil }
        return URLSettings(url: url, secureURL: secureURL, serialize: serialize, audit: audit, maxLossRate: maxLossRate,
                           receiptsToken: receiptsToken)
    }

    /// A URL template: `%alias%` required, only known macros, and an http(s) URL once the macros are filled in.
    private static func template(_ reader: MappingReader, _ key: String, required: Bool, secure: Bool) -> String? {
        guard let text = reader.string(key, required: required) else { return nil }
        var filled = ""
        var hasAlias = false
        var valid = true
        var rest = Substring(text)
        while let percent = rest.firstIndex(of: "%") {
            filled += rest[..<percent]
            let afterPercent = rest.index(after: percent)
            let name = rest[afterPercent...].prefix { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }
            let closing = name.endIndex
            guard let first = name.first, first.isLetter, closing < rest.endIndex, rest[closing] == "%" else {
                // A literal percent (e.g. an encoded %20): left for the URL check.
                filled += "%"
                rest = rest[afterPercent...]
                continue
            }
            let macro = String(name)
            if macro == "alias" { hasAlias = true }
            if !macros.contains(macro) && !isDPIDMacro(macro) {
                reader.report(
                    key, "unknown macro %\(macro)% (alias, did, rnd, timestamp, region, http_proto, dpid_<DPID>)")
                valid = false
            }
            filled += "x"
            rest = rest[rest.index(after: closing)...]
        }
        filled += rest
        if !hasAlias {
            reader.report(key, "%alias% macro required")
            valid = false
        }
        if let url = MappingReader.httpURL(filled) {
            if secure && url.scheme?.lowercased() != "https" {
                reader.report(key, "must be an https URL")
                valid = false
            }
        } else {
            reader.report(key, "not an http(s) URL")
            valid = false
        }
        return valid ? text : nil
    }

    private static func isDPIDMacro(_ name: String) -> Bool {
        name.hasPrefix("dpid_") && name.count > 5 && name.dropFirst(5).allSatisfy { $0.isASCII && $0.isNumber }
    }
}
