import Foundation

/// Runs a command-line tool (ssh-keygen, gzip, a Python script) to its end; returns its exit status and standard
/// output. The wait happens on a Dispatch thread, never in the calling task: the test process's task pool has one
/// thread per core (two here), and a tool blocking one of them holds up every test in the process, the partner
/// servers it runs included.
public func runTool(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
                let out = Pipe()
                process.standardOutput = out
                process.standardError = FileHandle.nullDevice
                try process.run()
                let data = out.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                return (process.terminationStatus, String(decoding: data, as: UTF8.self))
            })
        }
    }
}

/// `runTool`, throwing unless the tool exits 0.
@discardableResult
public func runToolChecked(_ executable: String, _ arguments: [String]) async throws -> String {
    let (status, output) = try await runTool(executable, arguments)
    guard status == 0 else { throw TestFailure("\(executable) exited \(status)") }
    return output
}
