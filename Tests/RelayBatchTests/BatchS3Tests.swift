import AsyncHTTPClient
import Foundation
import NIOCore
import RelayCore
import RelayTestSupport
import Testing

@testable import RelayBatch

@Suite("Batch S3 output", .serialized, .timeLimit(.minutes(3)))
struct BatchS3Tests {
    /// AWS's published Signature V4 examples (GET bucket lifecycle, list objects), same key, date and region.
    @Test func signatureV4MatchesAWSExamples() throws {
        let client = S3Client(endpoint: URL(string: "https://examplebucket.s3.amazonaws.com")!, region: "us-east-1",
                              accessKey: "unused", secretKey: "unused", http: .shared)
        let keys = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE",
                                  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", source: "test")
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 20130524T000000Z
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  // SHA-256 of nothing
        let lifecycle = client.sign(method: "GET", path: "/", query: [("lifecycle", "")], payloadHash: empty,
                                    credentials: keys, date: date)
        let auth = try #require(lifecycle.headers.first { $0.0 == "Authorization" }?.1)
        #expect(auth == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            + "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
        let list = client.sign(method: "GET", path: "/", query: [("max-keys", "2"), ("prefix", "J")],
                               payloadHash: empty, credentials: keys, date: date)
        #expect(list.query == "max-keys=2&prefix=J")
        #expect(list.headers.first { $0.0 == "Authorization" }?.1.hasSuffix(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7") == true)
    }

    @Test func cutsAreUploadedAndReadBack() async throws {
        let moto = try await Moto.start()
        defer { moto.stop() }
        let client = S3Client(endpoint: moto.endpoint, region: "us-east-1", accessKey: "testing", secretKey: "testing",
                              http: .shared)
        try await client.createBucket("relay-out")
        let yaml = """
            kafka: {brokers: \(TestBroker.brokers)}
            destinations:
              - id: 6001
                name: acme-files
                kind: batch
                every: 10s
                grace: 1s
                mode: iter
                master_dpid: 20914
                pid_alias: acme
                gzip: true
                output: {type: s3, bucket: relay-out, prefix: aam/, endpoint: "\(moto.endpoint.absoluteString)",
                         region: us-east-1, access_key_env: T_S3_KEY, secret_key_env: T_S3_SECRET}
                mappings: [{segment: 4532, alias: a4532}, {segment: 99, alias: "99"}]
            """
        let h = try await Harness(partitions: [0], partitionCount: 1, yaml: yaml,
                                  environment: ["T_S3_KEY": "testing", "T_S3_SECRET": "testing"])
        let t0 = BatchEngineTests.t0
        await h.feed(0, (0..<20).map { (t0 + 1_000 + Int64($0), event("u\($0)", [.realized(4532)], pid: "P\($0)")) })
        h.clock.set(t0 + 11_500)
        await h.engine.tick()
        await h.settle()  // the completer writes the .info
        let cut = t0 + 10_000
        let part = try await client.get(bucket: "relay-out", key: "aam/s3_6001_20914_acme_iter_\(cut)_000.sync.gz")
        let local = h.output.appendingPathComponent("readback.gz")
        try Data(part).write(to: local)
        let expected = (0..<20).map { "P\($0) a4532 \n" }.sorted().joined()
        #expect(await gunzip(local) == expected)
        let info = try await client.get(bucket: "relay-out", key: "aam/s3_6001_20914_acme_iter_\(cut).info")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(info)) as? [String: Any])
        let files = try #require(json["Files"] as? [[String: Any]])
        #expect(files.count == 1)
        #expect(files[0]["FileByteSize"] as? Int == part.count)
        #expect(await md5sum(local) == files[0]["MD5"] as? String)
        #expect(files[0]["FileLineCount"] as? Int == 20)
    }

    @Test func largePartsGoUpAsMultipartUploads() async throws {
        let moto = try await Moto.start()
        defer { moto.stop() }
        let client = S3Client(endpoint: moto.endpoint, region: "us-east-1", accessKey: "testing", secretKey: "testing",
                              http: .shared)
        try await client.createBucket("big")
        let folder = try TemporaryFolder()
        let file = folder.url.appendingPathComponent("part")
        var bytes = [UInt8](repeating: 0, count: 11 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
        try Data(bytes).write(to: file)
        var delivery = S3Delivery(client: client, bucket: "big", prefix: "x/", spool: folder.url)
        delivery.multipartThreshold = 5 << 20
        delivery.chunk = 5 << 20
        try await delivery.deliver(file: file, name: "part.sync")
        let back = try await client.get(bucket: "big", key: "x/part.sync")
        #expect(back.count == bytes.count)
        let same = back == bytes  // compared outside #expect: a failing 11 MiB diff would take forever
        #expect(same)
    }
}

/// moto's S3 server (installed by scripts/setup.sh into .local/bin), on a free port, for one test.
struct Moto {
    let process: Process
    let endpoint: URL

    static func start() async throws -> Moto {
        var root = URL(fileURLWithPath: #filePath)
        while root.path != "/", !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        let port = freePort()
        let process = Process()
        process.executableURL = root.appendingPathComponent(".local/bin/moto_server")
        process.arguments = ["-H", "127.0.0.1", "-p", String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let endpoint = URL(string: "http://127.0.0.1:\(port)")!
        let up = await eventually(timeout: .seconds(30)) {
            (try? await HTTPGet.fetch("http://127.0.0.1:\(port)/moto-api/")) != nil
        }
        guard up else {
            process.terminate()
            throw TestFailure("moto_server did not start on port \(port)")
        }
        return Moto(process: process, endpoint: endpoint)
    }

    /// From the next request on, moto checks every signature and IAM policy, except for the first `free`
    /// requests (moto cannot tell an unsigned STS AssumeRoleWithWebIdentity from an unauthenticated call).
    func requireAuthentication(after free: Int = 0) async throws {
        var request = HTTPClientRequest(url: endpoint.absoluteString + "/moto-api/reset-auth")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: String(free)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 16)
        guard response.status.code == 200 else { throw TestFailure("moto reset-auth: HTTP \(response.status.code)") }
    }

    /// Runs a Python script (with boto3, from the project's .venv) against this server; returns its stdout.
    func python(_ script: String) async throws -> String {
        var root = URL(fileURLWithPath: #filePath)
        while root.path != "/", !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        let (status, output) = try await runTool(root.appendingPathComponent(".venv/bin/python").path,
                                                 ["-c", script, endpoint.absoluteString])
        guard status == 0 else { throw TestFailure("python against moto exited \(status)") }
        return output
    }

    func stop() {
        // SIGKILL: the test process's ignored SIGTERM and SIGINT are inherited by its children.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
