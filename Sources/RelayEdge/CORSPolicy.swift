/// Which pages may read the edge's answers (`edge.cors_origins`, SPEC §6).
///
/// An origin listed by name is reflected with `Access-Control-Allow-Credentials: true`: its scripts may send the
/// visitor's cookies and read the answer. `"*"` lets any page read answers to requests made *without*
/// credentials (`Access-Control-Allow-Origin: *`, never with credentials), so a foreign site cannot read a visitor's
/// uuid and segments through the visitor's cookie.
struct CORSPolicy: Sendable, Equatable {
    /// Lowercased origins listed by name.
    let named: Set<String>
    let anyOrigin: Bool

    init(origins: [String]) {
        named = Set(origins.filter { $0 != "*" }.map { $0.lowercased() })
        anyOrigin = origins.contains("*")
    }

    var isEnabled: Bool { anyOrigin || !named.isEmpty }

    /// The CORS answer to a request from `origin`.
    enum Grant: Equatable {
        /// No CORS headers: the page cannot read the answer.
        case none
        /// `Access-Control-Allow-Origin: *`, no credentials.
        case anyOrigin
        /// The origin reflected, with `Access-Control-Allow-Credentials: true`.
        case credentialed(String)
    }

    func grant(origin: String?) -> Grant {
        if let origin, Self.isWellFormed(origin), named.contains(origin.lowercased()) { return .credentialed(origin) }
        return anyOrigin ? .anyOrigin : .none
    }

    /// `http(s)://` then host and port characters only, so that a reflected origin never carries anything else
    /// into a header.
    static func isWellFormed(_ origin: String) -> Bool {
        !origin.isEmpty && origin.utf8.count <= 255
            && (origin.hasPrefix("http://") || origin.hasPrefix("https://"))
            && origin.utf8.allSatisfy { EventParameters.isIDByte($0) || ".:/[]".utf8.contains($0) }
    }
}
