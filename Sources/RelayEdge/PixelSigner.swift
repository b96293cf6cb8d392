import Crypto

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
        return mac.withUnsafeBytes { Self.base64URL($0) }
    }

    /// `query` with `&s=<signature>` appended.
    func sign(pixelID: String, query: String) -> String {
        "\(query)&s=\(signature(pixelID: pixelID, query: query))"
    }

    /// The signed part of `query` when its final `s=` is the signature of everything before it; nil otherwise.
    func verify(pixelID: String, query: String) -> Substring? {
        guard let marker = query.range(of: "&s=", options: .backwards) else { return nil }
        let signed = query[..<marker.lowerBound]
        guard let given = Self.decodeBase64URL(query[marker.upperBound...]) else { return nil }
        let valid = HMAC<SHA256>.isValidAuthenticationCode(
            given, authenticating: Array("\(pixelID)?\(signed)".utf8), using: key)
        return valid ? signed : nil
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func base64URL(_ bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let b0 = UInt32(bytes[index])
            let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(triple >> 18 & 63)])
            out.append(alphabet[Int(triple >> 12 & 63)])
            if index + 1 < bytes.count { out.append(alphabet[Int(triple >> 6 & 63)]) }
            if index + 2 < bytes.count { out.append(alphabet[Int(triple & 63)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var bits: UInt32 = 0
        var count = 0
        var out: [UInt8] = []
        for byte in text.utf8 {
            guard let value = alphabet.firstIndex(of: byte) else { return nil }
            bits = bits << 6 | UInt32(value)
            count += 6
            if count >= 8 {
                count -= 8
                out.append(UInt8(truncatingIfNeeded: bits >> UInt32(count)))
            }
        }
        return out
    }
}
