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

    @Test func partsAreRetriedAndPutUnderTheURL() async throws {
        let received = try TemporaryFolder()
        let port = freePort()
        let script = received.url.appendingPathComponent("server.py")
        try Self.server.write(to: script, atomically: true, encoding: .utf8)
        let inbox = received.url.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script.path, String(port), inbox.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            // SIGKILL: the test process's ignored SIGTERM is inherited by its children.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let listening = await eventually(timeout: .seconds(10)) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }
        #expect(listening)
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
}
