import Crypto
import Foundation

/// The HMAC hash of `signing.algorithm`. SHA-1 and MD5 are offered only because partners of such platforms still
/// ask for them.
public enum SigningAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha256, sha1, md5

    /// Base64 of the HMAC of `body` with `key` (the key's UTF-8 bytes), as sent in the signing header.
    public func signature(of body: some DataProtocol, key: String) -> String {
        let symmetricKey = SymmetricKey(data: Data(key.utf8))
        switch self {
        case .sha256: return Data(HMAC<SHA256>.authenticationCode(for: body, using: symmetricKey)).base64EncodedString()
        case .sha1: return Data(HMAC<Insecure.SHA1>.authenticationCode(for: body, using: symmetricKey)).base64EncodedString()
        case .md5: return Data(HMAC<Insecure.MD5>.authenticationCode(for: body, using: symmetricKey)).base64EncodedString()
        }
    }
}
