import AsyncHTTPClient
import Crypto
import Foundation
import RelayEncoding
import NIOCore
import NIOHTTP1

/// A small S3 client: path-style requests signed with AWS Signature Version 4, for any S3-compatible store.
/// Credentials come from an ``AWSCredentialProvider`` at each request, so temporary ones are renewed in time.
public struct S3Client: Sendable {
    public let endpoint: URL
    public let region: String
    let credentials: AWSCredentialProvider
    let http: HTTPClient

    public init(endpoint: URL, region: String, accessKey: String, secretKey: String, sessionToken: String? = nil,
                http: HTTPClient)
    {
        let fixed = AWSCredentials(accessKeyID: accessKey, secretAccessKey: secretKey, sessionToken: sessionToken,
                                   expiration: nil, source: "configuration")
        self.init(endpoint: endpoint, region: region,
                  credentials: AWSCredentialProvider(.fixed(fixed), region: region, http: http), http: http)
    }

    init(endpoint: URL, region: String, credentials: AWSCredentialProvider, http: HTTPClient) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.http = http
    }

    /// `headers` are sent and signed (`x-amz-server-side-encryption`, `x-amz-storage-class`, ...).
    public func put(bucket: String, key: String, body: [UInt8], headers: [(String, String)] = []) async throws {
        _ = try await send("PUT", bucket: bucket, key: key, body: body, headers: headers)
    }
    public func get(bucket: String, key: String) async throws -> [UInt8] {
        try await send("GET", bucket: bucket, key: key).body
    }

    public func createBucket(_ bucket: String) async throws {
        _ = try await send("PUT", bucket: bucket, key: nil)
    }

    /// The encryption and storage class of a multipart upload are given here, not with its pieces.
    func createMultipartUpload(bucket: String, key: String, headers: [(String, String)] = []) async throws -> String {
        let response = try await send("POST", bucket: bucket, key: key, query: [("uploads", "")], headers: headers)
        guard let upload = Self.element("UploadId", in: String(decoding: response.body, as: UTF8.self)) else {
            throw BatchError("S3 multipart upload: no UploadId in the answer")
        }
        return upload
    }

    func uploadPart(bucket: String, key: String, uploadID: String, number: Int, body: [UInt8]) async throws
        -> String
    {
        let response = try await send("PUT", bucket: bucket, key: key,
                                      query: [("partNumber", String(number)), ("uploadId", uploadID)], body: body)
        guard let etag = response.headers.first(name: "ETag") else { throw BatchError("S3 upload part: no ETag") }
        return etag
    }

    func completeMultipartUpload(bucket: String, key: String, uploadID: String, etags: [String]) async throws {
        var xml = "<CompleteMultipartUpload>"
        for (i, etag) in etags.enumerated() {
            xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(etag)</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try await send("POST", bucket: bucket, key: key, query: [("uploadId", uploadID)],
                                      body: Array(xml.utf8))
        // S3 may answer 200 with an error document.
        if String(decoding: response.body, as: UTF8.self).contains("<Error>") {
            throw BatchError("S3 complete multipart upload failed")
        }
    }

    func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        _ = try await send("DELETE", bucket: bucket, key: key, query: [("uploadId", uploadID)])
    }

    struct Response {
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    private func send(_ method: String, bucket: String, key: String?, query: [(String, String)] = [],
                      body: [UInt8] = [], headers extra: [(String, String)] = []) async throws -> Response
    {
        var path = endpoint.path
        if path.hasSuffix("/") { path.removeLast() }
        path += "/" + Self.encode(bucket, keepSlash: false)
        if let key { path += "/" + Self.encode(key, keepSlash: true) }
        let signed = sign(method: method, path: path, query: query, payloadHash: Hex.lower(SHA256.hash(data: body)),
                          headers: extra, credentials: try await credentials.credentials(), date: Date())
        var url = "\(endpoint.scheme ?? "http")://\(Self.hostHeader(endpoint))\(path)"
        if !signed.query.isEmpty { url += "?" + signed.query }
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in signed.headers { request.headers.add(name: name, value: value) }
        if !body.isEmpty || method == "PUT" || method == "POST" {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: .seconds(300))
        let bytes = Array(buffer: try await response.body.collect(upTo: 1 << 30))
        guard (200..<300).contains(response.status.code) else {
            let code = Self.element("Code", in: String(decoding: bytes.prefix(300), as: UTF8.self))
            throw BatchError("S3 \(method) \(key ?? bucket): HTTP \(response.status.code) \(code ?? "")")
        }
        return Response(headers: response.headers, body: bytes)
    }

    /// The text of the first `<tag>...</tag>` in an XML answer (S3 and STS answers are flat enough for this).
    static func element(_ tag: String, in text: String) -> String? {
        guard let start = text.range(of: "<\(tag)>"),
            let end = text.range(of: "</\(tag)>", range: start.upperBound..<text.endIndex)
        else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }

    static func hostHeader(_ url: URL) -> String {
        let host = url.host ?? "localhost"
        if let port = url.port { return "\(host):\(port)" }
        return host
    }

    /// URI-encodes as SigV4 wants: everything but unreserved characters (and `/` in object keys).
    static func encode(_ text: String, keepSlash: Bool) -> String {
        PercentEncoding.encode(text) { keepSlash && $0 == UInt8(ascii: "/") }
    }

    /// Signature V4 of one request: the headers to send (`headers` among them, signed) and the canonical query.
    /// A session token is sent and signed as `x-amz-security-token`.
    func sign(method: String, path: String, query: [(String, String)], payloadHash: String,
              headers extra: [(String, String)] = [], credentials: AWSCredentials, date: Date)
        -> (headers: [(String, String)], query: String)
    {
        let amzDate = Self.amzDate(date)
        let day = String(amzDate.prefix(8))
        let canonicalQuery = query.map { (Self.encode($0.0, keepSlash: false), Self.encode($0.1, keepSlash: false)) }
            .sorted { $0 < $1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        var sent = [("x-amz-content-sha256", payloadHash), ("x-amz-date", amzDate)]
        if let token = credentials.sessionToken { sent.append(("x-amz-security-token", token)) }
        sent += extra.map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }
        let headers = ([("host", Self.hostHeader(endpoint))] + sent).sorted { $0.0 < $1.0 }
        let canonicalHeaders = headers.map { "\($0.0):\($0.1)\n" }.joined()
        let signedHeaders = headers.map(\.0).joined(separator: ";")
        let canonicalRequest = [method, path, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash]
            .joined(separator: "\n")
        let scope = "\(day)/\(region)/s3/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n"
            + Hex.lower(SHA256.hash(data: Array(canonicalRequest.utf8)))
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, "s3", "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Hex.lower(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return (sent + [("Authorization", authorization)], canonicalQuery)
    }

    static func amzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

}
