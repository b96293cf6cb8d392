import ArgumentParser
import NIOCore
import NIOPosix

extension Bootstrap {
    /// Where a process runs its Swift tasks.
    public enum TaskThreads: Sendable {
        /// Swift's own cooperative pool (the default).
        case pool
        /// NIO's event loops, those of the process's HTTP server: a request, its handler and its answer stay on one
        /// thread instead of changing threads twice. For relay-edge, whose work is answering requests
        /// (`bench/edge.sh`: 14.3 k → 15.5 k requests/s). relay-realtime measured slower with it (31 k → 23 k
        /// events/s, the same CPU per request): its tasks then compete with its HTTP client's I/O for two threads.
        case eventLoops
    }

    /// The entry point of every long-running executable (`main.swift` calls only this): parses the arguments, runs
    /// the command, and exits with ArgumentParser's status and message on an error. `.eventLoops` must be set
    /// before any task starts, from the main thread: at the top of `main.swift`, which is where this is called.
    /// Nothing of this project blocks a task: Kafka polls have their own threads, blocking calls go to `BlockingIO`.
    public static func main<Command: AsyncParsableCommand>(_: Command.Type, tasks: TaskThreads = .pool) async {
        if tasks == .eventLoops { NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() }
        do {
            var command = try Command.parse()
            try await command.run()
        } catch {
            Command.exit(withError: error)
        }
    }
}
