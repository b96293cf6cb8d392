import Crypto
import Foundation

/// The HMAC hash of `signing.algorithm`. SHA-1 and MD5 are offered only because partners of such platforms still
/// ask for them.
public enum SigningAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha256, sha1, md5

    /// Base64 of the HMAC of `body` with `key` (the key's UTF-8 bytes), as sent in the signing header.
    public func signature(of body: some Sequence<UInt8>, key: String) -> String {
        Signer(self, key: key).signature(of: body)
    }

    /// A key ready to sign many bodies: the key's pads are hashed once (``PreparedHMAC``).
    public enum Signer: Sendable {
        case sha256(PreparedHMAC<SHA256>)
        case sha1(PreparedHMAC<Insecure.SHA1>)
        case md5(PreparedHMAC<Insecure.MD5>)

        public init(_ algorithm: SigningAlgorithm, key: String) {
            let key = Array(key.utf8)
            switch algorithm {
            case .sha256: self = .sha256(PreparedHMAC(key: key))
            case .sha1: self = .sha1(PreparedHMAC(key: key))
            case .md5: self = .md5(PreparedHMAC(key: key))
            }
        }

        /// Base64 of the HMAC of `body`.
        public func signature(of body: some Sequence<UInt8>) -> String {
            switch self {
            case .sha256(let hmac): Data(hmac.code(of: body)).base64EncodedString()
            case .sha1(let hmac): Data(hmac.code(of: body)).base64EncodedString()
            case .md5(let hmac): Data(hmac.code(of: body)).base64EncodedString()
            }
        }
    }
}
