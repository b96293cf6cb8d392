import CCurl
import Foundation
import RelayEncoding
import RelayCore

/// `{type: sftp, ...}`: each file is uploaded as `.<name>.partial` in the remote directory, then renamed to its
/// name in the same session, so a partner polling the folder never sees a partial file under a final name. A name
/// already there (a retry after the rename, a replayed cut) is replaced: it held the same bytes. The server's host
/// key must be in `known_hosts_file`; libcurl refuses unknown and changed keys when no key callback is set.
struct SFTPDelivery: BatchDelivery, CustomStringConvertible {
    let output: SFTPOutput
    /// `password_env`, read at start-up; `nil` for key-only authentication.
    let password: String?
    let spool: URL
    var spoolPrefix: String { "" }
    /// A connection that moves no byte for this long is given up (and retried by the engine).
    var stallSeconds = 60

    /// Never the password.
    var description: String {
        "SFTPDelivery(\(output.user)@\(output.host):\(output.port)\(directory.hasPrefix("/") ? "" : "/~/")\(directory))"
    }

    func deliver(file: URL, name: String) async throws {
        try await BlockingIO.run { [self] in
            guard let stream = fopen(file.path, "rb") else {
                throw BatchError("cannot open \(file.path): errno \(errno)")
            }
            defer { fclose(stream) }
            let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
            try upload(stream, size: size, name: name)
        }
    }

    func deliver(bytes: [UInt8], name: String) async throws {
        try await BlockingIO.run { [self] in
            var copy = bytes
            try copy.withUnsafeMutableBytes { raw in
                guard let stream = fmemopen(raw.baseAddress, raw.count, "rb") else {
                    throw BatchError("cannot buffer \(name): errno \(errno)")
                }
                defer { fclose(stream) }
                try upload(stream, size: raw.count, name: name)
            }
        }
    }

    /// The remote directory as libcurl's quote commands want it (relative paths are from the login directory).
    var directory: String {
        var path = output.path
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// `sftp://host:port/<directory>/<name>`; `/~/` makes a relative directory start at the login directory.
    func url(_ name: String) -> String {
        let host = output.host.contains(":") ? "[\(output.host)]" : output.host
        let path = directory.hasPrefix("/") ? directory : "/~/" + directory
        let encoded = path.split(separator: "/", omittingEmptySubsequences: true)
            .map { $0 == "~" ? "~" : S3Client.encode(String($0), keepSlash: false) }.joined(separator: "/")
        return "sftp://\(host):\(output.port)/\(encoded)/\(S3Client.encode(name, keepSlash: false))"
    }

    private func remote(_ name: String) -> String {
        directory == "/" ? "/\(name)" : "\(directory)/\(name)"
    }

    /// One session: upload to the temporary name, then (server-side, after the upload) replace the final name.
    private func upload(_ stream: UnsafeMutablePointer<FILE>, size: Int, name: String) throws {
        guard Curl.ready, let curl = curl_easy_init() else { throw BatchError("sftp: libcurl did not initialise") }
        defer { curl_easy_cleanup(curl) }
        let temporary = ".\(name).partial"
        var commands: UnsafeMutablePointer<curl_slist>?
        // `*`: a missing final name is not an error. SFTP v3 renames refuse to replace, hence the removal.
        commands = curl_slist_append(commands, "*rm \"\(remote(name))\"")
        commands = curl_slist_append(commands, "rename \"\(remote(temporary))\" \"\(remote(name))\"")
        defer { curl_slist_free_all(commands) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errorBuffer.withUnsafeMutableBufferPointer { errors in
            var authTypes = 0
            if output.privateKeyFile != nil { authTypes |= Int(CURLSSH_AUTH_PUBLICKEY) }
            if password != nil { authTypes |= Int(CURLSSH_AUTH_PASSWORD) }
            let settings: [CURLcode] = [
                relay_curl_set_string(curl, CURLOPT_URL, url(temporary)),
                relay_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "sftp"),
                relay_curl_set_string(curl, CURLOPT_USERNAME, output.user),
                relay_curl_set_long(curl, CURLOPT_SSH_AUTH_TYPES, authTypes),
                relay_curl_set_string(curl, CURLOPT_SSH_KNOWNHOSTS, output.knownHostsFile),
                relay_curl_set_long(curl, CURLOPT_UPLOAD, 1),
                relay_curl_set_pointer(curl, CURLOPT_READDATA, UnsafeMutableRawPointer(stream)),
                relay_curl_set_offset(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(size)),
                relay_curl_set_long(curl, CURLOPT_FTP_CREATE_MISSING_DIRS, Int(CURLFTP_CREATE_DIR.rawValue)),
                relay_curl_set_list(curl, CURLOPT_POSTQUOTE, commands),
                relay_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 30),
                relay_curl_set_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1),
                relay_curl_set_long(curl, CURLOPT_LOW_SPEED_TIME, stallSeconds),
                relay_curl_set_long(curl, CURLOPT_NOSIGNAL, 1),
                relay_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errors.baseAddress!)),
            ]
            if let failed = settings.first(where: { $0 != CURLE_OK }) { return failed }
            if let key = output.privateKeyFile {
                // An empty public key file: libssh2 derives the public key from the private one.
                let a = relay_curl_set_string(curl, CURLOPT_SSH_PRIVATE_KEYFILE, key)
                let b = relay_curl_set_string(curl, CURLOPT_SSH_PUBLIC_KEYFILE, "")
                if a != CURLE_OK { return a }
                if b != CURLE_OK { return b }
            }
            if let password {
                let set = relay_curl_set_string(curl, CURLOPT_PASSWORD, password)
                if set != CURLE_OK { return set }
            }
            return curl_easy_perform(curl)
        }
        guard code != CURLE_OK else { return }
        let detail = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let target = "\(output.user)@\(output.host):\(output.port)"
        switch code {
        case CURLE_PEER_FAILED_VERIFICATION:
            throw BatchError("sftp \(target): host key refused: not listed (or changed) in \(output.knownHostsFile)")
        case CURLE_LOGIN_DENIED:
            throw BatchError("sftp \(target): authentication refused (\(detail.isEmpty ? "key or password" : detail))")
        default:
            let reason = String(cString: curl_easy_strerror(code))
            throw BatchError("sftp \(target): upload of \(name) failed: \(reason)\(detail.isEmpty ? "" : " (\(detail))")")
        }
    }
}

/// libcurl's process-wide set-up, done once before the first handle (curl_global_init is not thread-safe).
enum Curl {
    static let ready: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
}
