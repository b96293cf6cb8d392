import Foundation
import RelayCore
import RelayTestSupport
import Synchronization
import Testing

@testable import RelayBatch

/// `output: {type: sftp}` against Debian's OpenSSH server, started here on a loopback port (``TestSFTPServer``).
@Suite("Batch SFTP output", .serialized, .timeLimit(.minutes(4)))
struct BatchSFTPTests {
    static func yaml(_ server: TestSFTPServer, key: URL? = nil, knownHosts: URL? = nil, maxFileBytes: Int = 60) -> String {
        """
        kafka: {brokers: \(TestBroker.brokers)}
        destinations:
          - id: 6021
            name: sftp-files
            kind: batch
            every: 10s
            grace: 1s
            mode: full
            pid_alias: drop
            gzip: false
            max_file_bytes: \(maxFileBytes)
            output: {type: sftp, host: 127.0.0.1, port: \(server.port), user: \(server.user), path: "\(server.inbox.path)",
                     private_key_file: "\((key ?? server.userKey).path)",
                     known_hosts_file: "\((knownHosts ?? server.knownHosts).path)"}
            mappings: [{segment: 4532, alias: a4532}]
        """
    }

    static func delivery(_ server: TestSFTPServer, key: URL? = nil, knownHosts: URL? = nil) throws -> SFTPDelivery {
        let folder = FileManager.default.temporaryDirectory
        return SFTPDelivery(output: SFTPOutput(host: "127.0.0.1", port: server.port, user: server.user,
                                               path: server.inbox.path, privateKeyFile: (key ?? server.userKey).path,
                                               knownHostsFile: (knownHosts ?? server.knownHosts).path),
                            password: nil, spool: folder)
    }

    static func listing(_ folder: URL) -> [String: Int] {
        var sizes: [String: Int] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            let size = (try? FileManager.default.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.size]
                as? Int) ?? -1
            sizes[name] = size
        }
        return sizes
    }

    /// Watches a folder as a partner polling it would, every millisecond: every (name, size) seen, in order.
    final class Watcher: Sendable {
        let seen = Mutex<[(String, Int)]>([])
        let stop = Atomic<Bool>(false)

        func watch(_ folder: URL) -> Task<Void, Never> {
            Task.detached { [self] in
                while !stop.load(ordering: .relaxed) {
                    let now = BatchSFTPTests.listing(folder)
                    seen.withLock { list in
                        for (name, size) in now.sorted(by: { $0.key < $1.key })
                        where list.last(where: { $0.0 == name })?.1 != size {
                            list.append((name, size))
                        }
                    }
                    try? await Task.sleep(for: .milliseconds(1))
                }
            }
        }
    }

    @Test func partsThenInfoArriveCompleteUnderTheirFinalNames() async throws {
        let server = try await TestSFTPServer()
        try await server.start()
        let h = try await Harness(partitions: [0], partitionCount: 1, yaml: Self.yaml(server))
        let watcher = Watcher()
        let watching = watcher.watch(server.inbox)
        let t0 = BatchEngineTests.t0
        await h.feed(0, (0..<10).map { (t0 + 1_000 + Int64($0), event("user\($0)", [.realized(4532)], pid: nil)) })
        h.clock.set(t0 + 11_500)
        await h.engine.tick()
        await h.settle()  // the completer writes the .info
        watcher.stop.store(true, ordering: .relaxed)
        await watching.value

        let cut = t0 + 10_000
        let root = "sftp_6021_0_drop_full_\(cut)"
        let final = Self.listing(server.inbox)
        #expect(Set(final.keys) == ["\(root)_000.sync", "\(root)_001.sync", "\(root).info"])
        var lines: [String] = []
        for part in ["\(root)_000.sync", "\(root)_001.sync"] {
            lines += try String(contentsOf: server.inbox.appendingPathComponent(part), encoding: .utf8)
                .split(separator: "\n").map(String.init)
        }
        #expect(lines == (0..<10).map { "user\($0) a4532" })
        let info = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: server.inbox.appendingPathComponent("\(root).info"))) as? [String: Any])
        let files = try #require(info["Files"] as? [[String: Any]])
        for file in files {
            let name = try #require(file["FileName"] as? String)
            #expect(await md5sum(server.inbox.appendingPathComponent(name)) == file["MD5"] as? String)
            #expect(file["FileByteSize"] as? Int == final[name])
        }
        // What a polling partner saw: a final name only ever with its complete size, and the .info last.
        let seen = watcher.seen.withLock { $0 }
        for (name, size) in seen where !name.hasSuffix(".partial") {
            #expect(size == final[name], "\(name) seen with \(size) bytes")
        }
        let firstSight = seen.filter { !$0.0.hasSuffix(".partial") }.map(\.0)
        #expect(firstSight.last == "\(root).info")
    }

    @Test func anUnknownHostKeyIsRefused() async throws {
        let server = try await TestSFTPServer()
        try await server.start()
        let file = server.folder.appendingPathComponent("local.sync")
        try Data("user0 a4532\n".utf8).write(to: file)
        let error = await #expect(throws: BatchError.self) {
            try await Self.delivery(server, knownHosts: server.wrongKnownHosts).deliver(file: file, name: "x.sync")
        }
        #expect(error?.description.contains("host key refused") == true)
        let empty = server.folder.appendingPathComponent("known_hosts.empty")
        try Data().write(to: empty)
        await #expect(throws: BatchError.self) {
            try await Self.delivery(server, knownHosts: empty).deliver(file: file, name: "x.sync")
        }
        #expect(Self.listing(server.inbox).isEmpty)
        // The same upload with the right known_hosts goes through, so the refusals were the host key's doing.
        try await Self.delivery(server).deliver(file: file, name: "x.sync")
        #expect(Self.listing(server.inbox) == ["x.sync": 12])
    }

    @Test func badCredentialsAreAClearErrorAndRetriedUntilFixed() async throws {
        let server = try await TestSFTPServer()
        try await server.start()
        let file = server.folder.appendingPathComponent("local.sync")
        try Data("user0 a4532\n".utf8).write(to: file)
        let error = await #expect(throws: BatchError.self) {
            try await Self.delivery(server, key: server.strangerKey).deliver(file: file, name: "x.sync")
        }
        #expect(error?.description.contains("authentication refused") == true)

        let h = try await Harness(partitions: [0], partitionCount: 1,
                                  yaml: Self.yaml(server, key: server.strangerKey, maxFileBytes: 1 << 20))
        let t0 = BatchEngineTests.t0
        await h.feed(0, (0..<3).map { (t0 + 1_000 + Int64($0), event("user\($0)", [.realized(4532)], pid: nil)) })
        h.clock.set(t0 + 11_500)
        let tick = Task { await h.engine.tick() }
        try await Task.sleep(for: .seconds(2))
        #expect(Self.listing(server.inbox).isEmpty)  // refused, and still retrying
        try server.authorizeStranger()
        await tick.value
        await h.settle()  // the completer writes the .info
        let root = "sftp_6021_0_drop_full_\(t0 + 10_000)"
        #expect(Set(Self.listing(server.inbox).keys) == ["\(root)_000.sync", "\(root).info"])
        #expect(try String(contentsOf: server.inbox.appendingPathComponent("\(root)_000.sync"), encoding: .utf8)
            == "user0 a4532\nuser1 a4532\nuser2 a4532\n")
    }

    /// sshd and its sessions killed while a ~9 MB part is going up, restarted a second later: the engine's retry
    /// uploads the part again from the start and the cut completes, every user exactly once.
    @Test func serverKilledMidUploadThenRestarted() async throws {
        let server = try await TestSFTPServer()
        try await server.start()
        let h = try await Harness(partitions: [0], partitionCount: 1,
                                  yaml: Self.yaml(server, maxFileBytes: 1 << 30))
        let t0 = BatchEngineTests.t0
        // About 24 MB, so that the upload lasts long enough to be caught mid-way on a loaded machine.
        let users = 400_000
        let padding = String(repeating: "x", count: 40)
        func uuid(_ i: Int) -> String { "user-\(100_000 + i)-\(padding)" }
        for start in stride(from: 0, to: users, by: 10_000) {
            await h.feed(0, (start..<min(start + 10_000, users)).map {
                (t0 + 1_000, event(uuid($0), [.realized(4532)], pid: nil))
            })
        }
        h.clock.set(t0 + 11_500)
        let tick = Task { await h.engine.tick() }
        let partial = await eventually(timeout: .seconds(60), every: .milliseconds(1)) {
            Self.listing(server.inbox).keys.contains { $0.hasSuffix(".partial") }
        }
        #expect(partial)
        let atKill = Self.listing(server.inbox)
        server.stop()
        try await Task.sleep(for: .seconds(1))
        try await server.start()
        await tick.value
        await h.settle()  // the completer writes the .info

        let root = "sftp_6021_0_drop_full_\(t0 + 10_000)"
        let final = Self.listing(server.inbox)
        #expect(Set(final.keys) == ["\(root)_000.sync", "\(root).info"], "at kill: \(atKill)")
        let lines = try String(contentsOf: server.inbox.appendingPathComponent("\(root)_000.sync"), encoding: .utf8)
            .split(separator: "\n")
        #expect(lines.count == users)
        #expect(Set(lines).count == users)
        let info = try String(contentsOf: server.inbox.appendingPathComponent("\(root).info"), encoding: .utf8)
        let md5 = await md5sum(server.inbox.appendingPathComponent("\(root)_000.sync"))
        #expect(info.contains("\"MD5\": \"\(md5)\""))
        #expect(info.contains("\"TotalNumberLines\": \(users)"))
    }
}
