import AsyncHTTPClient
import Crypto
import Foundation
import RelayEncoding
import NIOCore
import RelayCore

/// `{type: http, url, auth}`: `PUT <url>/<file name>`; any 2xx is success. Every upload carries `Content-MD5` and,
/// when `auth` is set, its credentials. A part is read from disk twice, once for its digests (MD5, and the HMAC of
/// a signing block) and once streamed as the body, so memory stays flat whatever the part's size.
struct HTTPDelivery: BatchDelivery, CustomStringConvertible {
    /// `auth:` with its secrets read (once, at start-up). Printed without them.
    enum Credentials: Sendable, CustomStringConvertible {
        case authorization(String)
        case signing(SigningSettings, key: String)

        init(_ auth: HTTPUploadAuth, environment: [String: String]) throws {
            switch auth {
            case .bearer(let token):
                self = .authorization("Bearer \(try token.resolve(environment: environment))")
            case .basic(let user, let password):
                let pair = "\(user):\(try password.resolve(environment: environment))"
                self = .authorization("Basic \(Data(pair.utf8).base64EncodedString())")
            case .signing(let signing):
                self = .signing(signing, key: try signing.key.resolve(environment: environment))
            }
        }

        var description: String {
            switch self {
            case .authorization(let value): "Authorization: \(value.prefix { $0 != " " }) <redacted>"
            case .signing(let settings, _): "\(settings.header): HMAC-\(settings.algorithm.rawValue)"
            }
        }
    }

    let base: URL
    let credentials: Credentials?
    let spool: URL
    let client: HTTPClient
    var spoolPrefix: String { "" }
    /// Bytes per read of a streamed part.
    var chunkSize = 256 << 10

    var description: String { "HTTPDelivery(PUT \(base.absoluteString)\(credentials.map { ", \($0)" } ?? ""))" }

    func deliver(file: URL, name: String) async throws {
        let signing: (SigningAlgorithm, String)?
        if case .signing(let settings, let key) = credentials { signing = (settings.algorithm, key) } else { signing = nil }
        let digest = try await BlockingIO.run { [chunkSize] in
            try FileDigest(of: file, signing: signing, chunkSize: chunkSize)
        }
        try await put(name: name, body: .stream(FileChunks(file: file, chunkSize: chunkSize),
                                                length: .known(digest.byteCount)), digest: digest)
    }

    func deliver(bytes: [UInt8], name: String) async throws {
        let signing: (SigningAlgorithm, String)?
        if case .signing(let settings, let key) = credentials { signing = (settings.algorithm, key) } else { signing = nil }
        try await put(name: name, body: .bytes(ByteBuffer(bytes: bytes)), digest: FileDigest(of: bytes, signing: signing))
    }

    private func put(name: String, body: HTTPClientRequest.Body, digest: FileDigest) async throws {
        var text = base.absoluteString
        if !text.hasSuffix("/") { text += "/" }
        var request = HTTPClientRequest(url: text + name)
        request.method = .PUT
        request.headers.add(name: "Content-Type",
                            value: name.hasSuffix(".gz") ? "application/gzip" : name.hasSuffix(".info")
                                ? "application/json" : "text/plain")
        request.headers.add(name: "Content-MD5", value: digest.md5Base64)
        switch credentials {
        case .authorization(let value): request.headers.add(name: "Authorization", value: value)
        case .signing(let settings, _): request.headers.add(name: settings.header, value: digest.signature ?? "")
        case nil: break
        }
        request.body = body
        let response = try await client.execute(request, timeout: .seconds(300))
        _ = try? await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw BatchError("PUT \(name): HTTP \(response.status.code)")
        }
    }
}

/// The MD5 of a file's bytes and, for a signing block, their HMAC: the same value as
/// ``SigningAlgorithm/signature(of:key:)`` over the whole bytes, computed piece by piece.
struct FileDigest: Sendable, Equatable {
    var byteCount: Int64
    /// Base64 of the MD5, as `Content-MD5` wants it.
    var md5Base64: String
    var signature: String?

    init(of file: URL, signing: (SigningAlgorithm, String)?, chunkSize: Int) throws {
        let fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BatchError("cannot open \(file.path): errno \(errno)") }
        defer { close(fd) }
        var state = Running(signing: signing)
        var buffer = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, chunkSize) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw BatchError("cannot read \(file.path): errno \(errno)") }
            if count == 0 { break }
            buffer.withUnsafeBytes { state.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        self = state.finish()
    }

    init(of bytes: [UInt8], signing: (SigningAlgorithm, String)?) {
        var state = Running(signing: signing)
        bytes.withUnsafeBytes { state.update($0) }
        self = state.finish()
    }

    private init(byteCount: Int64, md5Base64: String, signature: String?) {
        self.byteCount = byteCount
        self.md5Base64 = md5Base64
        self.signature = signature
    }

    private struct Running {
        enum Signer {
            case sha256(HMAC<SHA256>), sha1(HMAC<Insecure.SHA1>), md5(HMAC<Insecure.MD5>)
        }
        var md5 = Insecure.MD5()
        var signer: Signer?
        var count: Int64 = 0

        init(signing: (SigningAlgorithm, String)?) {
            guard let signing else { return }
            let (algorithm, key) = signing
            let symmetric = SymmetricKey(data: Data(key.utf8))
            switch algorithm {
            case .sha256: signer = .sha256(HMAC(key: symmetric))
            case .sha1: signer = .sha1(HMAC(key: symmetric))
            case .md5: signer = .md5(HMAC(key: symmetric))
            }
        }

        mutating func update(_ bytes: UnsafeRawBufferPointer) {
            md5.update(data: bytes)
            count += Int64(bytes.count)
            switch signer {
            case .sha256(var h): h.update(data: bytes); signer = .sha256(h)
            case .sha1(var h): h.update(data: bytes); signer = .sha1(h)
            case .md5(var h): h.update(data: bytes); signer = .md5(h)
            case nil: break
            }
        }

        func finish() -> FileDigest {
            let signature: String? = switch signer {
            case .sha256(let h): Data(h.finalize()).base64EncodedString()
            case .sha1(let h): Data(h.finalize()).base64EncodedString()
            case .md5(let h): Data(h.finalize()).base64EncodedString()
            case nil: nil
            }
            return FileDigest(byteCount: count, md5Base64: Data(md5.finalize()).base64EncodedString(),
                              signature: signature)
        }
    }
}

/// A file's bytes as an async sequence of buffers, read on the blocking queue one chunk at a time, for streamed
/// request bodies.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let file: URL
    let chunkSize: Int

    func makeAsyncIterator() -> Iterator { Iterator(file: file, chunkSize: chunkSize) }

    final class Iterator: AsyncIteratorProtocol {
        let file: URL
        let chunkSize: Int
        private var fd: Int32 = -1
        private var done = false

        init(file: URL, chunkSize: Int) {
            self.file = file
            self.chunkSize = chunkSize
        }

        deinit { if fd >= 0 { close(fd) } }

        func next() async throws -> ByteBuffer? {
            if done { return nil }
            if fd < 0 {
                fd = open(file.path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw BatchError("cannot open \(file.path): errno \(errno)") }
            }
            let (fd, size, path) = (fd, chunkSize, file.path)
            let chunk = try await BlockingIO.run { () throws -> ByteBuffer in
                var buffer = ByteBuffer()
                buffer.reserveCapacity(size)
                while true {
                    var count = 0
                    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                        count = read(fd, raw.baseAddress, size)
                        return Swift.max(count, 0)
                    }
                    if count >= 0 { break }
                    if errno != EINTR { throw BatchError("cannot read \(path): errno \(errno)") }
                }
                return buffer
            }
            if chunk.readableBytes == 0 {
                done = true
                close(fd)
                self.fd = -1
                return nil
            }
            return chunk
        }
    }
}
