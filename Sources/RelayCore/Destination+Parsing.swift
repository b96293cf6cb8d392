import Foundation
import Yams

extension Destination {
    /// What could be read of one `destinations[i]` entry: `id` and `name` even when the rest is broken (for the
    /// duplicate checks), `complete` only when the entry has no problem.
    struct Reading {
        var id: Int?
        var name: String?
        var complete: Destination?
    }

    static func read(_ reader: MappingReader) -> Reading {
        let id = reader.integer("id", required: true, atLeast: 1)
        let name = reader.string("name", required: true)
        let kindName = reader.string("kind", required: true)

        var kind: Kind?
        var kindKnown = true
        switch kindName {
        case "realtime": kind = RealtimeSettings.read(reader).map(Kind.realtime)
        case "batch": kind = BatchSettings.read(reader, destinationName: name).map(Kind.batch)
        case "url": kind = URLSettings.read(reader).map(Kind.url)
        case "cookie": kind = CookieSettings.read(reader).map(Kind.cookie)
        case let other?:
            kindKnown = false
            reader.report("kind", "unknown kind \"\(other)\" (\(Kind.names.joined(separator: ", ")))")
        case nil:
            kindKnown = false
        }

        let mappings = readMappings(reader, rules: AliasRules(kindName: kindName, kind: kind))
        // Without a known kind, the other keys cannot be judged: reporting them all would bury the real problem.
        if kindKnown { reader.reportUnknownKeys() }

        var complete: Destination?
        if let id, let name, let kind, let mappings {
            complete = Destination(id: id, name: name, kind: kind, mappings: mappings)
        }
        return Reading(id: id, name: name, complete: complete)
    }

    private static func readMappings(_ reader: MappingReader, rules: AliasRules) -> [SegmentMapping]? {
        guard let nodes = reader.sequence("mappings", required: true) else { return nil }
        var mappings: [SegmentMapping] = []
        var indices: [Int] = []  // of each kept mapping in the file, for duplicate reports
        var valid = true
        for (index, node) in nodes.enumerated() {
            let path = "\(reader.path("mappings"))[\(index)]"
            guard let entry = MappingReader(node, path: path, validation: reader.validation) else {
                valid = false
                continue
            }
            guard let mapping = SegmentMapping.read(entry, rules: rules) else {
                valid = false
                continue
            }
            if let first = mappings.firstIndex(of: mapping) {
                entry.report(nil, "same mapping as mappings[\(indices[first])]")
                valid = false
                continue
            }
            mappings.append(mapping)
            indices.append(index)
        }
        return valid ? mappings : nil
    }
}

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

extension RealtimeSettings {
    static func read(_ reader: MappingReader) -> RealtimeSettings? {
        let url = reader.httpURL("url", required: true)
        let clientID = reader.string("client_id", required: true)
        let defaults = RetryPolicy()
        var retry = defaults
        if let retryReader = reader.mapping("retry") {
            retry.maxAttempts = retryReader.integer("max_attempts", atLeast: 1) ?? defaults.maxAttempts
            retry.initialBackoffMs = retryReader.integer("initial_backoff_ms", atLeast: 1) ?? defaults.initialBackoffMs
            if let maximum = retryReader.integer("max_backoff_ms", atLeast: 1) {
                if maximum < retry.initialBackoffMs {
                    retryReader.report("max_backoff_ms", "must be >= initial_backoff_ms (\(retry.initialBackoffMs))")
                }
                retry.maxBackoffMs = maximum
            }
            retryReader.reportUnknownKeys()
        }
        var settings = RealtimeSettings(
            url: url ?? URL(string: "http://invalid")!, clientID: clientID ?? "",
            userDPID: reader.integer("user_dpid", atLeast: 0) ?? 0,
            unsegment: reader.bool("unsegment") ?? false,
            maxUsersPerMessage: reader.integer("max_users_per_message", atLeast: 1) ?? 10,
            flushIntervalMs: reader.integer("flush_interval_ms", atLeast: 0) ?? 1_000,
            timeoutMs: reader.integer("timeout_ms", atLeast: 1) ?? 3_000,
            maxInFlight: reader.integer("max_in_flight", atLeast: 1) ?? 4,
            retry: retry,
            gzip: reader.bool("gzip") ?? false)
        if let rate = reader.number("rate_limit_per_second") {
            if rate > 0 {
                settings.rateLimitPerSecond = rate
            } else {
                reader.report("rate_limit_per_second", "must be > 0 (leave it out for no limit)")
            }
        }
        if let signing = reader.mapping("signing") {
            let algorithm: SigningAlgorithm? = signing.choice("algorithm", "algorithm")
            let header = signing.string("header")
            if let header, !isHeaderName(header) { signing.report("header", "not a valid HTTP header name") }
            if let key = signing.secret("key") {
                settings.signing = SigningSettings(algorithm: algorithm ?? .sha256, header: header ?? "X-Signature", key: key)
            }
            signing.reportUnknownKeys()
        }
        if let oauth2 = reader.mapping("oauth2") {
            let tokenURL = oauth2.httpURL("token_url", required: true)
            let clientID = oauth2.secret("client_id")
            let clientSecret = oauth2.secret("client_secret")
            if let tokenURL, let clientID, let clientSecret {
                settings.oauth2 = OAuth2Settings(tokenURL: tokenURL, clientID: clientID, clientSecret: clientSecret)
            }
            oauth2.reportUnknownKeys()
            if reader.has("signing") { reader.report("oauth2", "use signing or oauth2, not both") }
        }
        guard url != nil, clientID != nil else { return nil }
        return settings
    }

    /// RFC 9110 token characters.
    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty
            && name.unicodeScalars.allSatisfy { ($0.isASCIIAlphanumeric || "!#$%&'*+-.^_`|~".unicodeScalars.contains($0)) }
    }
}

extension BatchSettings {
    static func read(_ reader: MappingReader, destinationName: String?) -> BatchSettings? {
        let every = reader.duration("every", positive: true) ?? .hours(24)
        var at: TimeOfDay?
        if let text = reader.string("at") {
            at = TimeOfDay(text)
            if at == nil { reader.report("at", "must be a UTC time written HH:MM, e.g. \"14:00\"") }
        }
        let grace = reader.duration("grace", positive: false) ?? .seconds(30)
        let mode: BatchMode = reader.choice("mode", "mode") ?? .iter
        let masterDPID = reader.integer("master_dpid", atLeast: 0) ?? 0
        let rule = "1-64 characters of [0-9A-Za-z.-]"
        var pidAlias = reader.string("pid_alias")
        if let alias = pidAlias, !isPIDAlias(alias) {
            reader.report("pid_alias", "must be \(rule) (it is part of file names)")
            pidAlias = nil
        } else if pidAlias == nil, !reader.has("pid_alias"), let name = destinationName {
            if isPIDAlias(name) {
                pidAlias = name
            } else {
                reader.report("pid_alias", "required: the name \"\(name)\" cannot be used in file names (\(rule))")
            }
        }
        let gzip = reader.bool("gzip") ?? true
        let maxFileBytes = reader.integer("max_file_bytes", atLeast: 1) ?? 1_073_741_824
        let output = BatchOutput.read(reader.mapping("output", required: true))
        guard let pidAlias, let output else { return nil }
        return BatchSettings(
            every: every, at: at, grace: grace, mode: mode, masterDPID: masterDPID, pidAlias: pidAlias, gzip: gzip,
            maxFileBytes: maxFileBytes, output: output)
    }

    static func isPIDAlias(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.unicodeScalars.allSatisfy { ($0.isASCIIAlphanumeric || $0 == "." || $0 == "-") }
    }
}

extension BatchOutput {
    static func read(_ reader: MappingReader?) -> BatchOutput? {
        guard let reader else { return nil }
        let type = reader.string("type", required: true)
        var output: BatchOutput?
        switch type {
        case "dir":
            if let path = reader.string("path", required: true) { output = .dir(path: path) }
        case "s3":
            let bucket = reader.string("bucket", required: true)
            if let bucket, !isBucketName(bucket) {
                reader.report("bucket", "not a valid bucket name (1-255 characters of [A-Za-z0-9._-])")
            }
            let prefix = reader.string("prefix", allowEmpty: true) ?? ""
            let endpoint = reader.httpURL("endpoint")
            let region = reader.string("region") ?? "us-east-1"
            let accessKey = reader.secret("access_key")
            let secretKey = reader.secret("secret_key")
            if let bucket, isBucketName(bucket), let accessKey, let secretKey,
                endpoint != nil || !reader.has("endpoint")
            {
                output = .s3(
                    S3Output(
                        bucket: bucket, prefix: prefix, endpoint: endpoint, region: region, accessKey: accessKey,
                        secretKey: secretKey))
            }
        case "http":
            if let url = reader.httpURL("url", required: true) { output = .http(url: url) }
        case let other?:
            reader.report("type", "unknown type \"\(other)\" (dir, s3, http)")
            return nil
        case nil:
            return nil
        }
        reader.reportUnknownKeys()
        return output
    }

    static func isBucketName(_ name: String) -> Bool {
        // Loose on purpose: S3-compatible stores differ (AWS wants 3-63 lower-case characters).
        (1...255).contains(name.utf8.count)
            && name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "_" || $0 == "-" }
    }
}

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
        guard let url, secureURL != nil || !reader.has("secure_url") else { return nil }
        return URLSettings(url: url, secureURL: secureURL, serialize: serialize, audit: audit, maxLossRate: maxLossRate)
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
