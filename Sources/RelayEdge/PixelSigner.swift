import Crypto
import RelayEncoding

/// Signs the query of the edge's own `/px/<pixel_id>` URLs so that the edge redirects only where it sent the page
/// itself (SPEC §6, `audit: redirect`): HMAC-SHA256 over `<pixel_id>?<query before &s=>`, Base64url (no padding) in
/// `s`, last. Works on bytes: it runs for every redirect-audited dest handed out.
struct PixelSigner: Sendable {
    private let key: SymmetricKey

    init(secret: String) {
        key = SymmetricKey(data: Array(secret.utf8))
    }

    private func mac(pixelID: String, query: some StringProtocol) -> HMAC<SHA256>.MAC {
        var hmac = HMAC<SHA256>(key: key)
        var pixelID = pixelID
        pixelID.withUTF8 { hmac.update(data: UnsafeRawBufferPointer($0)) }
        hmac.update(data: [UInt8(ascii: "?")])
        var query = String(query)
        query.withUTF8 { hmac.update(data: UnsafeRawBufferPointer($0)) }
        return hmac.finalize()
    }

    func signature(pixelID: String, query: String) -> String {
        let mac = self.mac(pixelID: pixelID, query: query)
        return mac.withUnsafeBytes { Base64URL.encode($0) }
    }

    /// `query` with `&s=<signature>` appended.
    func sign(pixelID: String, query: String) -> String {
        "\(query)&s=\(signature(pixelID: pixelID, query: query))"
    }

    /// The signed part of `query` when its final `s=` is the signature of everything before it; nil otherwise.
    func verify(pixelID: String, query: String) -> Substring? {
        guard let marker = query.range(of: "&s=", options: .backwards) else { return nil }
        let signed = query[..<marker.lowerBound]
        guard let given = Base64URL.decode(query[marker.upperBound...]) else { return nil }
        let valid = HMAC<SHA256>.isValidAuthenticationCode(
            given, authenticating: Array("\(pixelID)?\(signed)".utf8), using: key)
        return valid ? signed : nil
    }
}
