import Foundation
import RelayCore
import RelayTestSupport
import Testing

@testable import RelayBatch

/// `output: {type: http}` against a real HTTP server on loopback (Python's http.server with a PUT handler) that
/// refuses the first upload with 503: the part is retried, then every file arrives, the `.info` last.
@Suite("Batch HTTP output", .serialized, .timeLimit(.minutes(2)))
struct BatchHTTPTests {
    static let server = #"""
        import http.server, os, sys
        root, fail = sys.argv[2], {"left": 1}
        class H(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if fail["left"] > 0:
                    fail["left"] -= 1
                    self.send_response(503); self.end_headers(); return
                name = os.path.basename(self.path)
                with open(os.path.join(root, ".tmp-" + name), "wb") as f: f.write(body)
                os.rename(os.path.join(root, ".tmp-" + name), os.path.join(root, name))
                with open(os.path.join(root, "order.txt"), "a") as f: f.write(name + "\n")
                self.send_response(201); self.end_headers()
            def log_message(self, *args): pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """#

    /// Starts `script` with `arguments` after its port; waits until it listens. SIGKILL at the end: the test
    /// process's ignored SIGTERM is inherited by its children.
    static func startServer(_ script: String, in folder: URL, arguments: [String]) async throws -> (Process, Int) {
        let port = freePort()
        let file = folder.appendingPathComponent("server-\(port).py")
        try script.write(to: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [file.path, String(port)] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let listening = await eventually(timeout: .seconds(10)) { isListening(port: port) }
        guard listening else {
            kill(process.processIdentifier, SIGKILL)
            throw TestFailure("\(file.lastPathComponent) did not listen on \(port)")
        }
        return (process, port)
    }

    static func stop(_ process: Process) {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    @Test func partsAreRetriedAndPutUnderTheURL() async throws {
        let received = try TemporaryFolder()
        let inbox = received.url.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        let (process, port) = try await Self.startServer(Self.server, in: received.url, arguments: [inbox.path])
        defer { Self.stop(process) }
        let yaml = """
            kafka: {brokers: \(TestBroker.brokers)}
            destinations:
              - id: 6003
                name: upload
                kind: batch
                every: 10s
                grace: 1s
                mode: full
                pid_alias: up
                gzip: false
                max_file_bytes: 60
                output: {type: http, url: "http://127.0.0.1:\(port)/drop"}
                mappings: [{segment: 4532, alias: a4532}]
            """
        let h = try await Harness(partitions: [0], partitionCount: 1, yaml: yaml)
        let t0 = BatchEngineTests.t0
        await h.feed(0, (0..<10).map { (t0 + 1_000 + Int64($0), event("user\($0)", [.realized(4532)], pid: nil)) })
        h.clock.set(t0 + 11_500)
        await h.engine.tick()
        await h.settle()  // the completer writes the .info
        let cut = t0 + 10_000
        let order = try String(contentsOf: inbox.appendingPathComponent("order.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        #expect(order.last == "http_6003_0_up_full_\(cut).info")
        #expect(order.count == 3)  // 10 lines of 12 bytes in 60-byte parts: 2 parts, then the .info
        var lines: [String] = []
        for name in order.dropLast() {
            lines += try String(contentsOf: inbox.appendingPathComponent(name), encoding: .utf8)
                .split(separator: "\n").map(String.init)
        }
        #expect(lines == (0..<10).map { "user\($0) a4532" })
    }

    /// A partner's upload endpoint that checks credentials (`bearer`, `basic` or `hmac` with its secret) and
    /// `Content-MD5` against the bytes it received: 401 or 400 otherwise. Accepted files are written under their
    /// name; every request is listed in log.txt as `<status> <name>`.
    static let checkingServer = #"""
        import base64, hashlib, hmac, http.server, os, sys
        root, mode, secret = sys.argv[2], sys.argv[3], sys.argv[4]
        class H(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                name = os.path.basename(self.path)
                length = int(self.headers["Content-Length"])
                digest, signature = hashlib.md5(), hmac.new(secret.encode(), digestmod=hashlib.sha256)
                tmp = os.path.join(root, ".tmp-" + name)
                with open(tmp, "wb") as f:
                    left = length
                    while left > 0:
                        chunk = self.rfile.read(min(left, 1 << 16))
                        if not chunk: break
                        left -= len(chunk); digest.update(chunk); signature.update(chunk); f.write(chunk)
                auth = self.headers.get("Authorization", "")
                ok = {"bearer": auth == "Bearer " + secret,
                      "basic": auth == "Basic " + base64.b64encode(secret.encode()).decode(),
                      "hmac": self.headers.get("X-Upload-Signature", "") == base64.b64encode(signature.digest()).decode()}[mode]
                status = 201
                if not ok: status = 401
                elif self.headers.get("Content-MD5") != base64.b64encode(digest.digest()).decode(): status = 400
                if status == 201: os.rename(tmp, os.path.join(root, name))
                else: os.unlink(tmp)
                with open(os.path.join(root, "log.txt"), "a") as f: f.write("%d %s\n" % (status, name))
                self.send_response(status); self.end_headers()
            def log_message(self, *args): pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """#

    /// The three `auth:` blocks, each with the secret the checking server expects.
    static let auths: [(mode: String, secret: String, yaml: String)] = [
        ("bearer", "t0k3n-for-uploads", "{bearer_env: T_UPLOAD_TOKEN}"),
        ("basic", "aam:pa55-word", "{basic: {user: aam, password_env: T_UPLOAD_PASSWORD}}"),
        ("hmac", "hmac-k3y", "{signing: {algorithm: sha256, header: X-Upload-Signature, key_env: T_UPLOAD_KEY}}"),
    ]
    static let environment = ["T_UPLOAD_TOKEN": "t0k3n-for-uploads", "T_UPLOAD_PASSWORD": "pa55-word",
                              "T_UPLOAD_KEY": "hmac-k3y"]

    @Test(arguments: [0, 1, 2]) func credentialsAndContentMD5AreChecked(_ index: Int) async throws {
        let auth = Self.auths[index]
        let received = try TemporaryFolder()
        let inbox = received.url.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        let (process, port) = try await Self.startServer(Self.checkingServer, in: received.url,
                                                         arguments: [inbox.path, auth.mode, auth.secret])
        defer { Self.stop(process) }
        let yaml = """
            kafka: {brokers: \(TestBroker.brokers)}
            destinations:
              - id: 6004
                name: upload
                kind: batch
                every: 10s
                grace: 1s
                mode: full
                pid_alias: up
                gzip: true
                output: {type: http, url: "http://127.0.0.1:\(port)/drop", auth: \(auth.yaml)}
                mappings: [{segment: 4532, alias: a4532}]
            """
        let h = try await Harness(partitions: [0], partitionCount: 1, yaml: yaml, environment: Self.environment)
        let t0 = BatchEngineTests.t0
        await h.feed(0, (0..<10).map { (t0 + 1_000 + Int64($0), event("user\($0)", [.realized(4532)], pid: nil)) })
        h.clock.set(t0 + 11_500)
        await h.engine.tick()
        await h.settle()  // the completer writes the .info
        let root = "http_6004_0_up_full_\(t0 + 10_000)"
        let log = try String(contentsOf: inbox.appendingPathComponent("log.txt"), encoding: .utf8)
        #expect(log == "201 \(root)_000.sync.gz\n201 \(root).info\n")
        #expect(await gunzip(inbox.appendingPathComponent("\(root)_000.sync.gz"))
            == (0..<10).map { "user\($0) a4532\n" }.joined())

        // Wrong secrets are refused by the server: the check above is not vacuous.
        let wrong: HTTPUploadAuth = switch index {
        case 0: .bearer(.environment("T_WRONG"))
        case 1: .basic(user: "aam", password: .environment("T_WRONG"))
        default: .signing(SigningSettings(header: "X-Upload-Signature", key: .environment("T_WRONG")))
        }
        let refused = HTTPDelivery(base: URL(string: "http://127.0.0.1:\(port)/drop")!,
                                   credentials: try HTTPDelivery.Credentials(wrong, environment: ["T_WRONG": "nope"]),
                                   spool: received.url, client: .shared)
        let error = await #expect(throws: BatchError.self) { try await refused.deliver(bytes: [1, 2, 3], name: "x.sync") }
        #expect(error?.description == "PUT x.sync: HTTP 401")
        // What a log line or an error could show of the delivery never holds the secret.
        let configured = try #require(await h.engine.plans.first?.delivery as? HTTPDelivery)
        #expect(Self.environment.values.allSatisfy { !"\(configured)".contains($0) }, "\(configured)")
        #expect(!"\(refused)".contains("nope"))
    }

    /// The streamed digests equal the one-shot ones realtime destinations use, across chunk boundaries.
    @Test func streamedSignatureEqualsTheRealtimeOne() throws {
        let folder = try TemporaryFolder()
        let file = folder.url.appendingPathComponent("part")
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 >> 3) }
        try Data(bytes).write(to: file)
        for algorithm in SigningAlgorithm.allCases {
            let streamed = try FileDigest(of: file, signing: (algorithm, "k"), chunkSize: 4_096)
            #expect(streamed.signature == algorithm.signature(of: bytes, key: "k"))
            #expect(streamed.byteCount == 100_000)
            #expect(streamed == FileDigest(of: bytes, signing: (algorithm, "k")))
        }
    }
}
