import Crypto
import Foundation
import HTTPTypes
import RelayCore
import RelayEncoding

/// `POST /px/receipts` (SPEC §6): a partner's list of the pixel ids it received, accepted only with that
/// destination's credential.
///
/// The body is `["7001-...", ...]` or `{"destination_id": 7001, "pixel_ids": [...]}`; the destination is the one
/// named, or the one in the first id. The caller proves it is that destination's partner with its
/// `receipts_token`: `Authorization: Bearer <token>`, or `X-Signature: <Base64 of HMAC-SHA256(body, token)>`.
/// Every id must be one the edge issued for that destination (`<destination id>-...`), so a partner can neither
/// speak for another destination nor override the destination of an id. Only `application/json` is taken, so a
/// page cannot post receipts from a cross-site form.
struct PixelReceipts: Sendable {
    static let maxBodyBytes = 256 * 1_024
    static let maxPixelIDs = 10_000
    static let signatureHeader = HTTPField.Name("X-Signature")!

    typealias Refusal = EventParameters.Refusal

    /// What one destination's partner proves itself with: the token's digest (compared in constant time) and the
    /// token as an HMAC key.
    struct Credential: Sendable {
        let tokenDigest: SHA256.Digest
        let key: SymmetricKey

        init(token: String) {
            tokenDigest = SHA256.hash(data: Array(token.utf8))
            key = SymmetricKey(data: Array(token.utf8))
        }
    }

    /// Destination id to credential; destinations without `receipts_token` are absent, so refused.
    let credentials: [Int: Credential]

    init(credentials: [Int: Credential]) {
        self.credentials = credentials
    }

    /// Resolves every URL destination's `receipts_token` now, so that a missing secret stops the start.
    init(config: RelayConfig, environment: [String: String]) throws {
        var credentials: [Int: Credential] = [:]
        for destination in config.destinations {
            guard let token = destination.url?.receiptsToken else { continue }
            credentials[destination.id] = Credential(token: try token.resolve(environment: environment))
        }
        self.credentials = credentials
    }

    /// Checks that can be made before the body is read: media type, declared size, and that some credential is
    /// presented at all.
    static func checkHead(_ headers: HTTPFields) throws(Refusal) {
        let mediaType = headers[.contentType]?.split(separator: ";", maxSplits: 1).first?
            .trimmingCharacters(in: .whitespaces).lowercased()
        guard mediaType == "application/json" else {
            throw Refusal(status: .unsupportedMediaType, message: "Content-Type must be application/json")
        }
        if let length = headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw Refusal(status: .contentTooLarge, message: "request body above 256 KiB")
        }
        guard headers[.authorization] != nil || headers[signatureHeader] != nil else {
            throw Refusal(status: .unauthorized,
                          message: "receipts need the destination's credential (Authorization: Bearer, or X-Signature)")
        }
    }

    /// The destination and the pixel ids of an authenticated request; a refusal otherwise.
    func accept(headers: HTTPFields, body: [UInt8]) throws(Refusal) -> (destinationID: Int, pixelIDs: [String]) {
        try Self.checkHead(headers)
        let (named, list) = try Self.decode(body)
        guard list.count <= Self.maxPixelIDs else {
            throw Refusal(status: .contentTooLarge, message: "more than \(Self.maxPixelIDs) pixel ids in one request")
        }
        let first = list.first.flatMap(PixelEvent.destination(inPixelID:)).flatMap { Int(exactly: $0) }
        guard let destinationID = named ?? first else {
            throw Refusal.badRequest(
                #"name the destination: {"destination_id": N, "pixel_ids": [...]}, or ids the edge issued"#)
        }
        guard let credential = credentials[destinationID] else {
            throw Refusal(status: .forbidden, message: "receipts are not accepted for destination \(destinationID)")
        }
        guard Self.isAuthentic(headers: headers, body: body, credential: credential) else {
            throw Refusal(status: .forbidden, message: "credential does not match destination \(destinationID)")
        }
        var ids: [String] = []
        ids.reserveCapacity(list.count)
        for (index, id) in list.enumerated() {
            guard EventParameters.isValidUUID(id) else {
                throw Refusal.badRequest("pixel_ids[\(index)] must be a string of 1-64 characters of [0-9A-Za-z_-]")
            }
            guard PixelEvent.destination(inPixelID: id) == Int64(destinationID) else {
                throw Refusal(status: .forbidden,
                              message: "pixel_ids[\(index)] is not a pixel of destination \(destinationID)")
            }
            ids.append(id)
        }
        return (destinationID, ids)
    }

    /// The body, read with the shared strict scanner: a JSON list of strings, or an object with `pixel_ids` (a list
    /// of strings) and an optional integer `destination_id`; other keys are skipped, a key twice is refused.
    private static func decode(_ body: [UInt8]) throws(Refusal) -> (destinationID: Int?, list: [String]) {
        let shape = #"body must be a JSON list of pixel ids or {"destination_id": N, "pixel_ids": [...]}"#
        func strings(_ scanner: inout JSONScanner) throws(MalformedInput) -> [String] {
            guard scanner.next == UInt8(ascii: "[") else { throw MalformedInput(shape) }
            var list: [String] = []
            if try scanner.beginArray() {
                repeat {
                    guard scanner.next == UInt8(ascii: "\"") else {
                        throw MalformedInput("pixel_ids[\(list.count)] must be a string of 1-64 characters of [0-9A-Za-z_-]")
                    }
                    // Bounded by the body limit; `accept` refuses more than `maxPixelIDs` with 413.
                    list.append(scanner.string(try scanner.scanString()))
                } while try scanner.nextElement()
            }
            return list
        }
        do throws(MalformedInput) {
            return try JSONScanner.scan(body) { scanner throws(MalformedInput) in
                scanner.skipWhitespace()
                var destination: Int?
                var list: [String]?
                if scanner.next == UInt8(ascii: "[") {
                    list = try strings(&scanner)
                } else {
                    guard scanner.next == UInt8(ascii: "{") else { throw MalformedInput(shape) }
                    if try scanner.beginObject() {
                        repeat {
                            let key = try scanner.objectKey()
                            if scanner.equals(key, "pixel_ids") {
                                guard list == nil else { throw MalformedInput("pixel_ids: duplicate key") }
                                list = try strings(&scanner)
                            } else if scanner.equals(key, "destination_id") {
                                guard destination == nil, scanner.nextKind == .number,
                                    let value = try scanner.scanNumber().integer, let id = Int(exactly: value)
                                else { throw MalformedInput("destination_id must be one integer") }
                                destination = id
                            } else {
                                try scanner.skipValue(depth: 1)
                            }
                        } while try scanner.nextMember()
                    }
                }
                scanner.skipWhitespace()
                guard scanner.isAtEnd, let list else { throw MalformedInput(shape) }
                return (destination, list)
            }
        } catch {
            throw Refusal.badRequest(error.reason)
        }
    }

    private static func isAuthentic(headers: HTTPFields, body: [UInt8], credential: Credential) -> Bool {
        if let authorization = headers[.authorization] {
            let scheme = "bearer "
            guard authorization.count > scheme.count, authorization.prefix(scheme.count).lowercased() == scheme
            else { return false }
            let token = authorization.dropFirst(scheme.count).trimmingCharacters(in: .whitespaces)
            // Digest equality is constant-time, so the comparison does not leak how much of a guess was right.
            return SHA256.hash(data: Array(token.utf8)) == credential.tokenDigest
        }
        guard let signature = headers[signatureHeader], let mac = Data(base64Encoded: signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: credential.key)
    }
}
