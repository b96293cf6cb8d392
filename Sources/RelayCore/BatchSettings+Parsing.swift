import Foundation

extension BatchSettings {
    static func read(_ reader: MappingReader, destinationName: String?) -> BatchSettings? {
        let every = reader.duration("every", positive: true) ?? .hours(24)
        var at: TimeOfDay?
        if let text = reader.string("at") {
            at = TimeOfDay(text)
            if at == nil { reader.report("at", "must be a UTC time written HH:MM, e.g. \"14:00\"") }
        }
        let grace = reader.duration("grace", positive: false) ?? .seconds(30)
        let mode: BatchMode = reader.choice("mode", "mode") ?? .iter
        let masterDPID = reader.integer("master_dpid", atLeast: 0) ?? 0
        let rule = "1-64 characters of [0-9A-Za-z.-]"
        var pidAlias = reader.string("pid_alias")
        if let alias = pidAlias, !isPIDAlias(alias) {
            reader.report("pid_alias", "must be \(rule) (it is part of file names)")
            pidAlias = nil
        } else if pidAlias == nil, !reader.has("pid_alias"), let name = destinationName {
            if isPIDAlias(name) {
                pidAlias = name
            } else {
                reader.report("pid_alias", "required: the name \"\(name)\" cannot be used in file names (\(rule))")
            }
        }
        let gzip = reader.bool("gzip") ?? true
        let maxFileBytes = reader.integer("max_file_bytes", atLeast: 1) ?? 1_073_741_824
        let output = BatchOutput.read(reader.mapping("output", required: true))
        guard let pidAlias, let output else { return nil }
        return BatchSettings(
            every: every, at: at, grace: grace, mode: mode, masterDPID: masterDPID, pidAlias: pidAlias, gzip: gzip,
            maxFileBytes: maxFileBytes, output: output)
    }

    static func isPIDAlias(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.unicodeScalars.allSatisfy { ($0.isASCIIAlphanumeric || $0 == "." || $0 == "-") }
    }
}

extension BatchOutput {
    static func read(_ reader: MappingReader?) -> BatchOutput? {
        guard let reader else { return nil }
        let type = reader.string("type", required: true)
        var output: BatchOutput?
        switch type {
        case "dir":
            if let path = reader.string("path", required: true) { output = .dir(path: path) }
        case "s3":
            output = readS3(reader).map(BatchOutput.s3)
        case "http":
            let url = reader.httpURL("url", required: true)
            var auth: HTTPUploadAuth?
            var authValid = true
            if let authReader = reader.mapping("auth") {
                auth = HTTPUploadAuth.read(authReader)
                // A broken auth block must never turn into uploads without credentials.
                authValid = auth != nil
            }
            if let url, authValid { output = .http(url: url, auth: auth) }
        case "sftp":
            output = readSFTP(reader).map(BatchOutput.sftp)
        case let other?:
            reader.report("type", "unknown type \"\(other)\" (dir, s3, http, sftp)")
            return nil
        case nil:
            return nil
        }
        reader.reportUnknownKeys()
        return output
    }

    private static func readS3(_ reader: MappingReader) -> S3Output? {
        let bucket = reader.string("bucket", required: true)
        if let bucket, !isBucketName(bucket) {
            reader.report("bucket", "not a valid bucket name (1-255 characters of [A-Za-z0-9._-])")
        }
        let prefix = reader.string("prefix", allowEmpty: true) ?? ""
        let endpoint = reader.httpURL("endpoint")
        let region = reader.string("region") ?? "us-east-1"
        // Both keys or neither: without them the standard AWS credential chain applies.
        let named = reader.has("access_key_env") || reader.has("access_key_file") || reader.has("access_key")
            || reader.has("secret_key_env") || reader.has("secret_key_file") || reader.has("secret_key")
        let accessKey = reader.secret("access_key", required: named)
        let secretKey = reader.secret("secret_key", required: named)
        let sessionToken = reader.secret("session_token", required: false, check: named)
        if sessionToken != nil, !named {
            reader.report("session_token_env", "only with access_key_env and secret_key_env (the AWS chain finds its own)")
        }
        var encryption: S3Encryption?
        var encryptionValid = true
        if let sse = reader.string("sse") {
            switch sse {
            case "AES256": encryption = .aes256
            case "aws:kms": encryption = .kms(keyID: nil)
            default:
                reader.report("sse", "unknown server-side encryption \"\(sse)\" (AES256, aws:kms)")
                encryptionValid = false
            }
        }
        if let keyID = reader.string("kms_key_id") {
            if case .kms = encryption {
                encryption = .kms(keyID: keyID)
            } else if encryptionValid {
                reader.report("kms_key_id", "only with sse: aws:kms")
            }
        }
        let storageClass = reader.string("storage_class")
        if let storageClass, !S3Output.storageClasses.contains(storageClass) {
            reader.report("storage_class",
                          "unknown storage class \"\(storageClass)\" (\(S3Output.storageClasses.joined(separator: ", ")))")
        }
        guard let bucket, isBucketName(bucket), endpoint != nil || !reader.has("endpoint"),
            !named || (accessKey != nil && secretKey != nil)
        else { return nil }
        return S3Output(
            bucket: bucket, prefix: prefix, endpoint: endpoint, region: region, accessKey: accessKey,
            secretKey: secretKey, sessionToken: named ? sessionToken : nil, encryption: encryption,
            storageClass: storageClass)
    }

    private static func readSFTP(_ reader: MappingReader) -> SFTPOutput? {
        let host = reader.string("host", required: true)
        if let host, !isHostName(host) { reader.report("host", "not a host name or address") }
        let port = reader.integer("port", atLeast: 1) ?? 22
        if port > 65_535 { reader.report("port", "must be at most 65535") }
        let user = reader.string("user", required: true)
        if let user, user.contains(where: { $0 == ":" || $0 == "@" || $0.isWhitespace }) {
            reader.report("user", "must not contain ':', '@' or spaces")
        }
        var path = reader.string("path", required: true)
        if let remote = path, remote.contains(where: { $0 == "\"" || $0.isNewline }) {
            // The path goes into quoted SFTP rename commands.
            reader.report("path", "must not contain quotes or line breaks")
            path = nil
        }
        let privateKeyFile = readableFile(reader, "private_key_file")
        let password = reader.secret("password", required: false)
        // A literal `password:` is reported above as a secret written in the file, not as a missing one.
        if !reader.has("private_key_file"), !reader.has("password_env"), !reader.has("password_file"),
            !reader.has("password")
        {
            reader.report("private_key_file", "required (or password_env)")
        }
        let knownHostsFile = readableFile(reader, "known_hosts_file", required: true)
        guard let host, isHostName(host), port <= 65_535, let user, let path, let knownHostsFile,
            privateKeyFile != nil || password != nil
        else { return nil }
        return SFTPOutput(host: host, port: port, user: user, path: path, privateKeyFile: privateKeyFile,
                          password: password, knownHostsFile: knownHostsFile)
    }

    /// A file the worker reads when it connects (a key, known hosts); checked now unless secrets are not checked.
    private static func readableFile(_ reader: MappingReader, _ key: String, required: Bool = false) -> String? {
        guard let path = reader.string(key, required: required) else { return nil }
        if reader.validation.checkSecrets, !FileManager.default.isReadableFile(atPath: path) {
            reader.report(key, "cannot read \(path)")
        }
        return path
    }

    static func isBucketName(_ name: String) -> Bool {
        // Loose on purpose: S3-compatible stores differ (AWS wants 3-63 lower-case characters).
        (1...255).contains(name.utf8.count)
            && name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "_" || $0 == "-" }
    }

    /// A DNS name, an IPv4 address or an IPv6 address (without brackets).
    static func isHostName(_ name: String) -> Bool {
        (1...253).contains(name.utf8.count)
            && name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "-" || $0 == ":" }
    }
}

extension HTTPUploadAuth {
    /// Exactly one of `bearer_env | bearer_file`, `basic` and `signing`; `nil` after reporting a problem.
    static func read(_ reader: MappingReader) -> HTTPUploadAuth? {
        let written = ["bearer", "bearer_env", "bearer_file", "basic", "signing"].filter { reader.has($0) }
        let ways = Set(written.map { $0.hasPrefix("bearer") ? "bearer" : $0 })
        var auth: HTTPUploadAuth?
        if ways.contains("bearer") {
            auth = reader.secret("bearer").map(HTTPUploadAuth.bearer)
        } else {
            reader.ignore("bearer")
        }
        if let basic = reader.mapping("basic") {
            let user = basic.string("user", required: true)
            if let user, user.contains(":") { basic.report("user", "must not contain ':'") }
            let password = basic.secret("password")
            basic.reportUnknownKeys()
            if let user, !user.contains(":"), let password { auth = .basic(user: user, password: password) }
        }
        if let signing = reader.mapping("signing") {
            auth = SigningSettings.read(signing).map(HTTPUploadAuth.signing)
        }
        reader.reportUnknownKeys()
        if ways.count > 1 {
            reader.report(nil, "use one of bearer_env, basic and signing, not several")
            return nil
        }
        if ways.isEmpty { reader.report(nil, "needs bearer_env, basic or signing") }
        return auth
    }
}
