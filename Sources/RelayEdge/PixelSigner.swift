import Crypto
import RelayCore
import RelayEncoding

/// Signs the query of the edge's own `/px/<pixel_id>` URLs so that the edge redirects only where it sent the page
/// itself (SPEC §6, `audit: redirect`): HMAC-SHA256 over `<pixel_id>?<query before &s=>`, Base64url (no padding) in
/// `s`, last. Works on bytes: it runs for every redirect-audited dest handed out.
struct PixelSigner: Sendable {
    private let hmac: PreparedHMAC<SHA256>

    init(secret: String) {
        hmac = PreparedHMAC(key: Array(secret.utf8))
    }

    private static func feed(_ hasher: inout SHA256, pixelID: String, query: UnsafeRawBufferPointer) {
        var pixelID = pixelID
        pixelID.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        withUnsafeBytes(of: UInt8(ascii: "?")) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: query)
    }

    /// Appends `&s=<signature>` to `query`.
    func sign(pixelID: String, query: inout [UInt8]) {
        let mac = query.withUnsafeBytes { bytes in hmac.code { Self.feed(&$0, pixelID: pixelID, query: bytes) } }
        query.append(contentsOf: "&s=".utf8)
        mac.withUnsafeBytes { Base64URL.append($0, to: &query) }
    }

    /// `query` with `&s=<signature>` appended.
    func sign(pixelID: String, query: String) -> String {
        var bytes = Array(query.utf8)
        sign(pixelID: pixelID, query: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The signed part of `query` when its final `s=` is the signature of everything before it; nil otherwise.
    func verify(pixelID: String, query: String) -> Substring? {
        guard let marker = query.range(of: "&s=", options: .backwards) else { return nil }
        let signed = query[..<marker.lowerBound]
        guard let given = Base64URL.decode(query[marker.upperBound...]) else { return nil }
        let valid = Array(signed.utf8).withUnsafeBytes { bytes in
            hmac.isValid(given) { Self.feed(&$0, pixelID: pixelID, query: bytes) }
        }
        return valid ? signed : nil
    }
}
