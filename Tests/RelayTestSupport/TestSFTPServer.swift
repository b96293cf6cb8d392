import Foundation

/// Debian's OpenSSH server on a loopback port, for SFTP tests: a generated ed25519 host key, a generated user key
/// in its own `authorized_keys`, `internal-sftp`, and a `known_hosts` file that lists the host key. Everything
/// lives in one temporary folder; `inbox` is the remote directory the tests upload into.
public final class TestSFTPServer: @unchecked Sendable {
    // @unchecked: `process` is replaced only by start()/stop(), which the tests call from one task at a time.
    public let folder: URL
    public let port: Int
    public let user: String
    public let inbox: URL
    public let knownHosts: URL
    public let userKey: URL
    /// A second user key that `authorized_keys` does not list.
    public let strangerKey: URL
    /// A `known_hosts` listing another key for this host and port.
    public let wrongKnownHosts: URL
    private var process: Process?

    public init() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("sftp-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        port = freePort()
        user = String(cString: getpwuid(getuid()).pointee.pw_name)
        inbox = folder.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        knownHosts = folder.appendingPathComponent("known_hosts")
        wrongKnownHosts = folder.appendingPathComponent("known_hosts.wrong")
        userKey = folder.appendingPathComponent("user_key")
        strangerKey = folder.appendingPathComponent("stranger_key")
        for key in ["host_key", "other_host_key", "user_key", "stranger_key"] {
            try await runToolChecked("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f",
                                                           folder.appendingPathComponent(key).path])
        }
        func publicKey(_ name: String) throws -> String {
            let text = try String(contentsOf: folder.appendingPathComponent(name + ".pub"), encoding: .utf8)
            return text.split(separator: " ").prefix(2).joined(separator: " ")
        }
        try "[127.0.0.1]:\(port) \(try publicKey("host_key"))\n".write(to: knownHosts, atomically: true, encoding: .utf8)
        try "[127.0.0.1]:\(port) \(try publicKey("other_host_key"))\n".write(to: wrongKnownHosts, atomically: true,
                                                                             encoding: .utf8)
        try "\(try publicKey("user_key"))\n".write(to: folder.appendingPathComponent("authorized_keys"),
                                                     atomically: true, encoding: .utf8)
        let config = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(folder.path)/host_key
            AuthorizedKeysFile \(folder.path)/authorized_keys
            PidFile \(folder.path)/sshd.pid
            StrictModes no
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            LogLevel ERROR
            Subsystem sftp internal-sftp

            """
        try config.write(to: folder.appendingPathComponent("sshd_config"), atomically: true, encoding: .utf8)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Starts sshd and waits until it accepts connections.
    public func start() async throws {
        // sshd refuses to start without its privilege-separation directory.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        // sshd closes every inherited descriptor, which Foundation takes for the child's exit (it then blocks in
        // waitpid, and no other Process of the test run is reaped). A shell in between keeps them open.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "/usr/sbin/sshd -D -e -f \"$0\" & wait", folder.appendingPathComponent("sshd_config").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: touch(folder.appendingPathComponent("sshd.log")))
        try process.run()
        self.process = process
        let listening = await eventually(timeout: .seconds(10)) { [port] in isListening(port: port) }
        guard listening else { throw TestFailure("sshd did not listen on 127.0.0.1:\(port): \(log)") }
    }

    /// Kills sshd, every session process it started and the shell above it (SIGKILL: a crash, not a shutdown).
    public func stop() {
        guard let process else { return }
        let pid = process.processIdentifier
        for child in Self.descendants(of: pid) { kill(child, SIGKILL) }
        kill(pid, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Lets `strangerKey` log in too.
    public func authorizeStranger() throws {
        let text = try String(contentsOf: folder.appendingPathComponent("stranger_key.pub"), encoding: .utf8)
        let handle = try FileHandle(forWritingTo: folder.appendingPathComponent("authorized_keys"))
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data(text.split(separator: " ").prefix(2).joined(separator: " ").utf8 + [0x0A]))
    }

    public var log: String {
        (try? String(contentsOf: folder.appendingPathComponent("sshd.log"), encoding: .utf8)) ?? ""
    }

    private func touch(_ url: URL) -> URL {
        if !FileManager.default.fileExists(atPath: url.path) {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        }
        return url
    }

    /// The processes below `pid`, from /proc (sshd forks one or two per connection).
    static func descendants(of pid: Int32) -> [Int32] {
        var parents: [Int32: Int32] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after the command name: state, ppid, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { parents[child] = parent }
        }
        var found: [Int32] = []
        var frontier = [pid]
        while let next = frontier.popLast() {
            let children = parents.filter { $0.value == next }.map(\.key)
            found += children
            frontier += children
        }
        return found
    }
}
