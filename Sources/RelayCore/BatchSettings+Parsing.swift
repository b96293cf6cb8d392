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
            let bucket = reader.string("bucket", required: true)
            if let bucket, !isBucketName(bucket) {
                reader.report("bucket", "not a valid bucket name (1-255 characters of [A-Za-z0-9._-])")
            }
            let prefix = reader.string("prefix", allowEmpty: true) ?? ""
            let endpoint = reader.httpURL("endpoint")
            let region = reader.string("region") ?? "us-east-1"
            let accessKey = reader.secret("access_key")
            let secretKey = reader.secret("secret_key")
            if let bucket, isBucketName(bucket), let accessKey, let secretKey,
                endpoint != nil || !reader.has("endpoint")
            {
                output = .s3(
                    S3Output(
                        bucket: bucket, prefix: prefix, endpoint: endpoint, region: region, accessKey: accessKey,
                        secretKey: secretKey))
            }
        case "http":
            if let url = reader.httpURL("url", required: true) { output = .http(url: url) }
        case let other?:
            reader.report("type", "unknown type \"\(other)\" (dir, s3, http)")
            return nil
        case nil:
            return nil
        }
        reader.reportUnknownKeys()
        return output
    }

    static func isBucketName(_ name: String) -> Bool {
        // Loose on purpose: S3-compatible stores differ (AWS wants 3-63 lower-case characters).
        (1...255).contains(name.utf8.count)
            && name.unicodeScalars.allSatisfy { $0.isASCIIAlphanumeric || $0 == "." || $0 == "_" || $0 == "-" }
    }
}
