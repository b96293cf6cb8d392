import RelayCore
import RelayEncoding

/// The value of a `kind: cookie` destination for one user (SPEC §6 `stuff[].cv`).
enum CookieValue {
    /// `aliases` are the user's mapped aliases (active now, without duplicates). Pairs (values for `serialized`)
    /// that would take the value beyond `max_bytes` are dropped whole; nil when nothing is left.
    static func make(_ settings: CookieSettings, aliases: [String]) -> String? {
        guard !aliases.isEmpty else { return nil }
        let key = settings.key ?? settings.cookieName
        var value = ""
        switch settings.format {
        case .singleKey, .keyValue:
            for alias in aliases {
                let pair: String
                // key_value aliases are whole pairs, written `key<key_separator>value` (checked by the configuration).
                pair = settings.format == .singleKey ? key + settings.keySeparator + alias : alias
                let candidate = value.isEmpty ? pair : value + settings.pairSeparator + pair
                if candidate.utf8.count <= settings.maxBytes { value = candidate }
            }
        case .serialized:
            let prefix = key + settings.keySeparator
            for alias in aliases {
                let candidate = value.isEmpty ? prefix + alias : value + settings.valueSeparator + alias
                if candidate.utf8.count <= settings.maxBytes { value = candidate }
            }
        }
        return value.isEmpty ? nil : value
    }

    /// `Set-Cookie` for a value: characters outside RFC 6265's cookie-octet (`,`, `;`, space, quotes, `\`, non-ASCII)
    /// are percent-encoded, and so is `%`.
    static func setCookieHeader(_ settings: CookieSettings, value: String) -> String {
        let encoded = PercentEncoding.encode(value) { byte in
            byte >= 0x21 && byte <= 0x7E && byte != 0x22 && byte != 0x2C && byte != 0x3B && byte != 0x5C
                && byte != 0x25
        }
        var header = "\(settings.cookieName)=\(encoded); Max-Age=\(settings.ttlDays * 86_400); Path=/"
        if let domain = settings.domain { header += "; Domain=\(domain)" }
        header += "; Secure; SameSite=None"
        return header
    }
}
