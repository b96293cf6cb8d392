import Foundation

/// Writes a file so that a reader sees the old content or the whole new one, never a part: a temporary name in the
/// same directory, write (retried on EINTR), fsync, rename, fsync of the directory.
public enum AtomicFile {
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public static func write(_ bytes: [UInt8], to url: URL) throws(Failure) {
        let directory = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw Failure(description: "cannot create \(directory.path): \(error.localizedDescription)")
        }
        let temp = temporaryURL(for: url)
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temp.path): \(lastError())") }
        var failed: String?
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failed = lastError()
                    return
                }
                offset += written
            }
        }
        if failed == nil, fsync(fd) != 0 { failed = lastError() }
        close(fd)
        if let failed {
            unlink(temp.path)
            throw Failure(description: "cannot write \(url.path): \(failed)")
        }
        try publish(temp, as: url)
    }

    /// A name beside `url` that no other process picks: pods sharing a volume all run as PID 1, so the name carries
    /// random bits too.
    public static func temporaryURL(for url: URL) -> URL {
        let tag = Hex.lower((0..<8).map { _ in UInt8.random(in: 0...255) })
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(tag).tmp")
    }

    /// Renames a complete, synced file into place and syncs the directory so the rename survives a crash.
    public static func publish(_ temp: URL, as url: URL) throws(Failure) {
        guard rename(temp.path, url.path) == 0 else {
            let reason = lastError()
            unlink(temp.path)
            throw Failure(description: "cannot rename into \(url.path): \(reason)")
        }
        let directory = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
