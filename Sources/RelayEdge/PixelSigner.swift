import Crypto
import Foundation

/// Signs the query of the edge's own `/px/<pixel_id>` URLs so that the edge redirects only where it sent the page
/// itself (SPEC §6, `audit: redirect`): HMAC-SHA256 over `<pixel_id>?<query before &s=>`, Base64url in `s`, last.
struct PixelSigner: Sendable {
    private let key: SymmetricKey

    init(secret: String) {
        key = SymmetricKey(data: Data(secret.utf8))
    }

    func signature(pixelID: String, query: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(pixelID)?\(query)".utf8), using: key)
        return Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// `query` with `&s=<signature>` appended.
    func sign(pixelID: String, query: String) -> String {
        "\(query)&s=\(signature(pixelID: pixelID, query: query))"
    }

    /// The signed part of `query` when its final `s=` is the signature of everything before it; nil otherwise.
    func verify(pixelID: String, query: String) -> Substring? {
        guard let marker = query.range(of: "&s=", options: .backwards) else { return nil }
        let signed = query[..<marker.lowerBound]
        let given = query[marker.upperBound...]
        var padded = given.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while padded.count % 4 != 0 { padded += "=" }
        guard let code = Data(base64Encoded: padded) else { return nil }
        let valid = HMAC<SHA256>.isValidAuthenticationCode(
            code, authenticating: Data("\(pixelID)?\(signed)".utf8), using: key)
        return valid ? signed : nil
    }
}
