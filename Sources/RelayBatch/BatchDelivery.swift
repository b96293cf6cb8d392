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
    /// The prefix of the spool file names (so that dir output writes `.<name>.<tag>.partial` beside the final name).
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
    case .http(let url, let auth):
        return HTTPDelivery(base: url, credentials: try auth.map { try HTTPDelivery.Credentials($0, environment: environment) },
                            spool: spool, client: httpClient)
    case .s3(let s3):
        let source: AWSCredentialProvider.Source
        if let accessKey = s3.accessKey, let secretKey = s3.secretKey {
            source = .fixed(AWSCredentials(
                accessKeyID: try accessKey.resolve(environment: environment),
                secretAccessKey: try secretKey.resolve(environment: environment),
                sessionToken: try s3.sessionToken?.resolve(environment: environment), expiration: nil,
                source: "configuration"))
        } else {
            source = .chain(environment: environment)
        }
        let client = S3Client(endpoint: s3.effectiveEndpoint, region: s3.region,
                              credentials: AWSCredentialProvider(source, region: s3.region, http: httpClient),
                              http: httpClient)
        return S3Delivery(client: client, bucket: s3.bucket, prefix: s3.prefix, spool: spool,
                          objectHeaders: S3Delivery.objectHeaders(s3))
    case .sftp(let sftp):
        return SFTPDelivery(output: sftp, password: try sftp.password?.resolve(environment: environment), spool: spool)
    }
}

/// `{type: dir, path}`: parts are written beside their final name as `.<name>.<tag>.partial`, synced, and renamed into
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
    /// Encryption and storage class, sent with every object (signed).
    var objectHeaders: [(String, String)] = []

    static func objectHeaders(_ output: S3Output) -> [(String, String)] {
        var headers: [(String, String)] = []
        if let encryption = output.encryption {
            headers.append(("x-amz-server-side-encryption", encryption.headerValue))
            if case .kms(let keyID?) = encryption {
                headers.append(("x-amz-server-side-encryption-aws-kms-key-id", keyID))
            }
        }
        if let storageClass = output.storageClass { headers.append(("x-amz-storage-class", storageClass)) }
        return headers
    }

    func deliver(file: URL, name: String) async throws {
        let size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        if size <= multipartThreshold {
            guard let data = FileManager.default.contents(atPath: file.path) else {
                throw BatchError("cannot read \(file.path)")
            }
            try await client.put(bucket: bucket, key: prefix + name, body: Array(data), headers: objectHeaders)
            return
        }
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        let upload = try await client.createMultipartUpload(bucket: bucket, key: prefix + name,
                                                            headers: objectHeaders)
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
        try await client.put(bucket: bucket, key: prefix + name, body: bytes, headers: objectHeaders)
    }
}
