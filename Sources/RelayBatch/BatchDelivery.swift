import AsyncHTTPClient
import Foundation
import RelayEncoding
import NIOCore
import RelayCore

/// Where a destination's files go (`output:`). Parts are first written to a local file in `spool`; `deliver` puts
/// one there under its final name. Every method may be called again with the same arguments (retries, replays) and
/// must then leave the same result.
protocol BatchDelivery: Sendable {
    /// Where parts are written before delivery.
    var spool: URL { get }
    /// The prefix of the spool file names (so that dir output writes `.name.partial` beside the final name).
    var spoolPrefix: String { get }
    func deliver(file: URL, name: String) async throws
    func deliver(bytes: [UInt8], name: String) async throws
    /// Whether a delivered file's local copy should be removed after delivery.
    var removesSpool: Bool { get }
}

extension BatchDelivery {
    var removesSpool: Bool { true }
}

func makeDelivery(_ output: BatchOutput, spool: URL, httpClient: HTTPClient,
                  environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any BatchDelivery
{
    switch output {
    case .dir(let path):
        return DirDelivery(directory: URL(fileURLWithPath: path))
    case .http(let url):
        return HTTPDelivery(base: url, spool: spool, client: httpClient)
    case .s3(let s3):
        let client = S3Client(endpoint: s3.effectiveEndpoint, region: s3.region,
                              accessKey: try s3.accessKey.resolve(environment: environment),
                              secretKey: try s3.secretKey.resolve(environment: environment), http: httpClient)
        return S3Delivery(client: client, bucket: s3.bucket, prefix: s3.prefix, spool: spool)
    }
}

/// `{type: dir, path}`: parts are written beside their final name as `.<name>.partial`, synced, and renamed into
/// place; the directory is synced after the rename. A reader never sees a partial file under a final name.
struct DirDelivery: BatchDelivery {
    let directory: URL
    var spool: URL { directory }
    var spoolPrefix: String { "." }
    var removesSpool: Bool { false }

    func deliver(file: URL, name: String) async throws {
        try AtomicFile.publish(file, as: directory.appendingPathComponent(name))
    }

    func deliver(bytes: [UInt8], name: String) async throws {
        try AtomicFile.write(bytes, to: directory.appendingPathComponent(name))
    }
}

/// `{type: http, url}`: `PUT <url>/<file name>`; any 2xx is success.
struct HTTPDelivery: BatchDelivery {
    let base: URL
    let spool: URL
    let client: HTTPClient
    var spoolPrefix: String { "" }

    func deliver(file: URL, name: String) async throws {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw BatchError("cannot read \(file.path)")
        }
        try await deliver(bytes: Array(data), name: name)
    }

    func deliver(bytes: [UInt8], name: String) async throws {
        var text = base.absoluteString
        if !text.hasSuffix("/") { text += "/" }
        var request = HTTPClientRequest(url: text + name)
        request.method = .PUT
        request.headers.add(name: "Content-Type",
                            value: name.hasSuffix(".gz") ? "application/gzip" : name.hasSuffix(".info")
                                ? "application/json" : "text/plain")
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let response = try await client.execute(request, timeout: .seconds(300))
        _ = try? await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw BatchError("PUT \(name): HTTP \(response.status.code)")
        }
    }
}

/// `{type: s3, ...}`: one PUT per part, or a multipart upload for parts above ``multipartThreshold``.
struct S3Delivery: BatchDelivery {
    let client: S3Client
    let bucket: String
    let prefix: String
    let spool: URL
    var spoolPrefix: String { "" }
    /// Parts above this size go up as multipart uploads of `chunk`-byte pieces (S3's minimum piece is 5 MiB).
    var multipartThreshold = 64 << 20
    var chunk = 16 << 20

    func deliver(file: URL, name: String) async throws {
        let size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        if size <= multipartThreshold {
            guard let data = FileManager.default.contents(atPath: file.path) else {
                throw BatchError("cannot read \(file.path)")
            }
            try await client.put(bucket: bucket, key: prefix + name, body: Array(data))
            return
        }
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        let upload = try await client.createMultipartUpload(bucket: bucket, key: prefix + name)
        do {
            var etags: [String] = []
            while let data = try handle.read(upToCount: chunk), !data.isEmpty {
                etags.append(try await client.uploadPart(bucket: bucket, key: prefix + name, uploadID: upload,
                                                         number: etags.count + 1, body: Array(data)))
            }
            try await client.completeMultipartUpload(bucket: bucket, key: prefix + name, uploadID: upload,
                                                     etags: etags)
        } catch {
            try? await client.abortMultipartUpload(bucket: bucket, key: prefix + name, uploadID: upload)
            throw error
        }
    }

    func deliver(bytes: [UInt8], name: String) async throws {
        try await client.put(bucket: bucket, key: prefix + name, body: bytes)
    }
}
