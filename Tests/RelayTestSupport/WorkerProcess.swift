import Foundation
import Synchronization
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Every process the tests started and that may still run: killed when the test process exits, so that a test's
/// `defer { Task { await worker.stop() } }` that never got to run leaves nothing behind to load later tests (or
/// the machine).
private let startedProcesses = Mutex<Set<Int32>>([])
private let killStartedProcessesAtExit: Void = {
    atexit {
        for pid in startedProcesses.withLock({ $0 }) { kill(pid, SIGKILL) }
    }
}()

/// One of the project's executables, started the way a user starts it, with its stderr (JSON logs) kept in a file.
public final class WorkerProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before `run()` and only read afterwards; Process itself is thread-safe
    // for terminate/interrupt/isRunning.
    public let process = Process()
    public let executable: String
    public let logFile: URL
    public let stdoutFile: URL

    /// The directory of the built executables: RELAY_BIN_DIR (set by scripts/test.sh) or `.build/debug`.
    public static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["RELAY_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/", !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url.appendingPathComponent(".build/debug")
    }

    public init(_ executable: String, arguments: [String], workingDirectory: URL,
                environment: [String: String] = [:]) throws
    {
        self.executable = executable
        process.executableURL = Self.binDirectory.appendingPathComponent(executable)
        process.arguments = arguments
        process.currentDirectoryURL = workingDirectory
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        logFile = workingDirectory.appendingPathComponent("\(executable)-\(UUID().uuidString.prefix(8)).log")
        stdoutFile = workingDirectory.appendingPathComponent("\(executable)-\(UUID().uuidString.prefix(8)).out")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: logFile)
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        _ = killStartedProcessesAtExit
        process.terminationHandler = { p in startedProcesses.withLock { _ = $0.remove(p.processIdentifier) } }
        try process.run()
        let pid = process.processIdentifier
        if process.isRunning { startedProcesses.withLock { _ = $0.insert(pid) } }
    }

    deinit {
        if process.isRunning { kill() }
    }

    public var isRunning: Bool { process.isRunning }
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }
    public var output: String { (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? "" }

    public func terminate() { process.terminate() }  // SIGTERM
    public func kill() { Foundation.kill(process.processIdentifier, SIGKILL) }

    /// Waits for the process to exit; returns its status, or nil if it is still running after `timeout`.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    /// Sends SIGKILL if still running (cleanup in tests).
    public func stop() async {
        if process.isRunning { kill() }
        await waitForExit(timeout: .seconds(5))
    }

    /// Waits until `GET http://127.0.0.1:<port><path>` answers 200.
    public func waitForHTTP(port: Int, path: String = "/health/ready", timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw TestFailure("\(executable) exited (\(process.terminationStatus)) before \(path) was up:\n\(log)")
            }
            if let (status, _) = try? await HTTPGet.fetch("http://127.0.0.1:\(port)\(path)"), status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("\(executable): \(path) not ready after \(timeout):\n\(log)")
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Minimal HTTP GET over loopback for readiness checks and small assertions.
public enum HTTPGet {
    public static func fetch(_ url: String) async throws -> (Int, String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }
}

/// A fresh working directory per test, with a relay.yaml written into it.
public struct TestDirectory: Sendable {
    public let url: URL

    public init(_ name: String = "relay-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    @discardableResult
    public func write(_ name: String, _ contents: String) throws -> URL {
        let file = url.appendingPathComponent(name)
        try contents.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// A free TCP port on loopback (bound then released; good enough for tests on one machine).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(100),
                       _ condition: () async throws -> Bool) async rethrows -> Bool
{
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}
