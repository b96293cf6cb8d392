extension CookieSettings {
    static func read(_ reader: MappingReader) -> CookieSettings? {
        let cookieName = reader.string("cookie_name", required: true)
        if let cookieName, !RealtimeSettings.isHeaderName(cookieName) {
            reader.report("cookie_name", "not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)")
        }
        let format: CookieFormat = reader.choice("format", "format") ?? .singleKey
        let key = reader.string("key")
        if key == nil && format != .keyValue && !reader.has("key") {
            reader.report("key", "required for format \(format.rawValue)")
        }
        var settings = CookieSettings(cookieName: cookieName ?? "", key: key, format: format)
        var valid = cookieName.map(RealtimeSettings.isHeaderName) ?? false
        if let value = reader.string("key_separator") { settings.keySeparator = value }
        if let value = reader.string("pair_separator") { settings.pairSeparator = value }
        if let value = reader.string("value_separator") { settings.valueSeparator = value }
        if let key, format != .keyValue, key.contains(settings.pairSeparator) || key.contains(settings.keySeparator) {
            reader.report("key", "must not contain the key or pair separator")
            valid = false
        }
        if let maxBytes = reader.integer("max_bytes", atLeast: 1) { settings.maxBytes = maxBytes }
        if let ttl = reader.integer("ttl_days", atLeast: 0) { settings.ttlDays = ttl }
        if let domain = reader.string("domain") {
            if isDomain(domain) {
                settings.domain = domain
            } else {
                reader.report("domain", "not a valid cookie domain, e.g. .publisher.example")
            }
        }
        if let setCookie = reader.bool("set_cookie") { settings.setCookie = setCookie }
        guard valid, key != nil || format == .keyValue else { return nil }
        return settings
    }

    private static func isDomain(_ text: String) -> Bool {
        let labels = (text.hasPrefix(".") ? text.dropFirst() : Substring(text)).split(
            separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty
            && labels.allSatisfy { label in
                !label.isEmpty && label.count <= 63
                    && label.unicodeScalars.allSatisfy { ($0.isASCIIAlphanumeric || $0 == "-") }
            }
    }
}
