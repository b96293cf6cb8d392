import Foundation
import RelayCore
import RelayKafka
import RelayRuntime
import RelayTestSupport
import Testing

/// What /metrics says about a worker, read from relay-check processes on the real broker.
@Suite("Worker metrics on the real broker", .serialized, .timeLimit(.minutes(3)))
struct RuntimeMetricsTests {
    /// `/metrics` lines of one metric.
    static func series(_ name: String, port: Int) async -> [String] {
        guard let (status, text) = try? await HTTPGet.fetch("http://127.0.0.1:\(port)/metrics"), status == 200 else {
            return []
        }
        return text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(name + "{") }
    }

    /// The partitions a worker reports lag for.
    static func lagPartitions(port: Int) async -> Set<Int> {
        Set(await series("relay_consumer_lag", port: port).compactMap { line in
            guard let range = line.range(of: "partition=\"") else { return nil }
            return Int(line[range.upperBound...].prefix { $0.isNumber })
        })
    }

    @Test("lag is reported per owned partition, with worker and group labels; a revoke removes it from the old owner")
    func lagFollowsTheAssignment() async throws {
        let setup = try await ConsumerWorkerTests.Setup(partitions: 4)
        try await ConsumerWorkerTests.produce(ConsumerWorkerTests.events(0..<200, prefix: "lag"),
                                              to: setup.topics.qualifications)
        let (a, portA) = try setup.start(output: "a.jsonl")
        defer { Task { await a.stop() } }
        try await a.waitForHTTP(port: portA)
        let alone = await eventually(timeout: .seconds(45)) { await Self.lagPartitions(port: portA) == [0, 1, 2, 3] }
        let reportedAlone = await Self.lagPartitions(port: portA)
        #expect(alone, "a single member reports every partition: \(reportedAlone)")
        let lagLine = try #require(await Self.series("relay_consumer_lag", port: portA).first)
        #expect(lagLine.contains("worker=\"relay-check\""), "\(lagLine)")
        #expect(lagLine.contains("group=\"\(setup.group)\""), "\(lagLine)")
        let buildInfo = await Self.series("relay_build_info", port: portA)
        #expect(buildInfo.count == 1)
        #expect(buildInfo.first?.contains("version=\"\(BuildInfo.version)\"") == true, "\(buildInfo)")
        #expect(buildInfo.first?.split(separator: " ").last.flatMap { Double($0) } == 1, "\(buildInfo)")

        // A second member joins: the partitions A gives up disappear from A's lag, B reports them.
        let (b, portB) = try setup.start(output: "b.jsonl")
        defer { Task { await b.stop() } }
        try await b.waitForHTTP(port: portB)
        let split = await eventually(timeout: .seconds(60)) {
            let (lagA, lagB) = (await Self.lagPartitions(port: portA), await Self.lagPartitions(port: portB))
            return !lagA.isEmpty && !lagB.isEmpty && lagA.isDisjoint(with: lagB) && lagA.union(lagB) == [0, 1, 2, 3]
        }
        let (lagA, lagB) = (await Self.lagPartitions(port: portA), await Self.lagPartitions(port: portB))
        #expect(split, "A: \(lagA.sorted()), B: \(lagB.sorted())")
        a.terminate()
        b.terminate()
        #expect(await a.waitForExit() == 0)
        #expect(await b.waitForExit() == 0)
    }

    @Test("every executable answers --version with the release and the revision from RELAY_REVISION")
    func versions() async throws {
        let dir = try TestDirectory("version")
        for executable in ["relayctl", "relay-check", "relay-realtime", "relay-batch", "relay-edge", "relay-pixel-audit"] {
            let process = try WorkerProcess(executable, arguments: ["--version"], workingDirectory: dir.url,
                                            environment: ["RELAY_REVISION": "1a2b3c4"])
            #expect(await process.waitForExit() == 0, "\(executable): \(process.log)")
            #expect(process.output.contains("\(BuildInfo.version) (revision 1a2b3c4)"), "\(executable): \(process.output)")
        }
    }
}
