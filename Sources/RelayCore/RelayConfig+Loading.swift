import Foundation
import Yams

extension RelayConfig {
    /// Reads and validates `relay.yaml`.
    ///
    /// - Parameters:
    ///   - environment: supplies `RELAY_BROKERS` and the `_env` secrets.
    ///   - checkSecrets: whether every referenced secret must be readable now (unset variables and unreadable
    ///     files are problems). Off for tools that only inspect the file.
    /// - Throws: ``ConfigError`` with every problem, a missing or unreadable file and invalid YAML included.
    public static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        checkSecrets: Bool = true
    ) throws(ConfigError) -> RelayConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError(problems: [ConfigProblem(path: path, message: "no such file")])
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(problems: [ConfigProblem(path: path, message: "is a directory, not a file")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(problems: [ConfigProblem(path: path, message: "cannot read the file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(problems: [ConfigProblem(path: path, message: "not UTF-8 text")])
        }
        return try parse(yaml: text, source: path, environment: environment, checkSecrets: checkSecrets)
    }

    /// Validates configuration text; see ``load(path:environment:checkSecrets:)``.
    public static func parse(
        yaml: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        checkSecrets: Bool = true
    ) throws(ConfigError) -> RelayConfig {
        try parse(yaml: yaml, source: "", environment: environment, checkSecrets: checkSecrets)
    }

    private static func parse(
        yaml: String, source: String, environment: [String: String], checkSecrets: Bool
    ) throws(ConfigError) -> RelayConfig {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(problems: [ConfigProblem(path: source, message: yamlMessage(error))])
        }
        let validation = ConfigValidation(environment: environment, checkSecrets: checkSecrets)
        let config: RelayConfig
        if let root {
            guard let reader = MappingReader(root, path: "", validation: validation) else {
                throw ConfigError(problems: [
                    ConfigProblem(path: source, message: "must be a YAML mapping (kafka, edge, pixel_audit, destinations)")
                ])
            }
            config = read(reader)
        } else {
            // An empty file: every default, and the problems of what is required.
            config = read(MappingReader(emptyAt: "", position: .start, validation: validation))
        }
        let problems = validation.problems
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return config
    }

    /// Reads `yaml` in survey mode (see ``ConfigValidation/surveying``): the keys looked up and the problems found.
    static func survey(yaml: String) -> (keys: Set<String>, problems: [ConfigProblem]) {
        let validation = ConfigValidation(environment: [:], checkSecrets: false, surveying: true)
        if let node = try? Yams.compose(yaml: yaml), let root = MappingReader(node, path: "", validation: validation) {
            _ = read(root)
        }
        return (validation.keysRead, validation.problems)
    }

    /// Describes a YAML error by position, never quoting the text (which could hold a mistakenly inlined secret).
    private static func yamlMessage(_ error: any Error) -> String {
        guard let error = error as? YamlError else { return "invalid YAML" }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { " (\($0.text))" } ?? ""
            return "invalid YAML at line \(mark.line), column \(mark.column): \(problem)\(detail)"
        case .reader(let problem, let offset, _, _):
            return "invalid YAML\(offset.map { " at byte \($0)" } ?? ""): \(problem)"
        default:
            return "invalid YAML"
        }
    }

    private static func read(_ root: MappingReader) -> RelayConfig {
        let validation = root.validation
        func section(_ key: String) -> MappingReader {
            root.mapping(key) ?? MappingReader(emptyAt: key, position: root.position, validation: validation)
        }
        let kafka = readKafka(section("kafka"))
        let edgeReader = section("edge")
        let edge = readEdge(edgeReader)
        let pixelAudit = readPixelAudit(section("pixel_audit"))
        let input = readInput(section("input"))
        let destinations = readDestinations(root)
        root.reportUnknownKeys()

        // The redirect key matters only when some URL destination is audited by redirect.
        if validation.checkSecrets, destinations.contains(where: { $0.url?.audit == .redirect }) {
            let key = edge.redirectKey
            let suffix = if case .file = key.source { "_file" } else { "_env" }
            validation.check(
                key, path: "edge.redirect_key\(suffix)", at: edgeReader.position(of: "redirect_key\(suffix)"),
                needFor: " (needed by destinations with audit: redirect)")
        }
        return RelayConfig(kafka: kafka, edge: edge, pixelAudit: pixelAudit, input: input, destinations: destinations)
    }

    // MARK: kafka

    private static func readKafka(_ reader: MappingReader) -> KafkaSettings {
        var brokers: [String] = []
        var brokersReported = false
        if let node = reader.value("brokers") {
            switch node {
            case .scalar(let scalar):
                brokers = scalar.string.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            case .sequence(let sequence):
                for (index, item) in sequence.enumerated() {
                    guard case .scalar(let scalar) = item else {
                        brokersReported = true
                        reader.validation.report(
                            "\(reader.path("brokers"))[\(index)]", "must be host:port",
                            at: FilePosition(item.mark, or: reader.position))
                        continue
                    }
                    brokers.append(scalar.string.trimmingCharacters(in: .whitespaces))
                }
            case .mapping:
                brokersReported = true
                reader.report("brokers", "must be host:port or a list of them")
            }
            if brokers.contains(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) }) {
                brokersReported = true
                reader.report("brokers", "must be host:port entries separated by commas")
            }
        }
        if let override = reader.validation.environment["RELAY_BROKERS"], !override.isEmpty {
            brokers = override.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            }
        }
        if brokers.isEmpty && !brokersReported {
            reader.report("brokers", "required")
        }

        var topics = KafkaSettings.Topics()
        if let topicsReader = reader.mapping("topics") {
            func topic(_ key: String, _ assign: (String) -> Void) {
                guard let name = topicsReader.string(key) else { return }
                if isTopicName(name) {
                    assign(name)
                } else {
                    topicsReader.report(key, "not a valid topic name (1-249 characters of [A-Za-z0-9._-])")
                }
            }
            topic("qualifications") { topics.qualifications = $0 }
            topic("pixel_events") { topics.pixelEvents = $0 }
            topic("pixel_audit") { topics.pixelAudit = $0 }
            topic("dead_letter") { topics.deadLetter = $0 }
            topicsReader.reportUnknownKeys()
        }

        var properties: [String: String] = [:]
        var secretProperties: [String: Secret] = [:]
        if let propertiesReader = reader.mapping("properties") {
            // `<property>_env` / `<property>_file` first, once per property, so that each problem is reported once.
            var secretNames: [String] = []
            for key in propertiesReader.keys where key.hasSuffix("_env") || key.hasSuffix("_file") {
                let name = String(key[..<key.lastIndex(of: "_")!])
                if !secretNames.contains(name) { secretNames.append(name) }
            }
            for name in secretNames {
                if let secret = propertiesReader.secret(name, required: false) { secretProperties[name] = secret }
            }
            for key in propertiesReader.keys where !key.hasSuffix("_env") && !key.hasSuffix("_file") {
                if secretNames.contains(key) {
                    continue  // a literal beside its _env/_file: reported by `secret`
                } else if looksSecret(key) {
                    propertiesReader.ignore(key)
                    propertiesReader.report(
                        key, "secrets are never written in the file: use \(key)_env or \(key)_file")
                } else if let value = propertiesReader.string(key, allowEmpty: true) {
                    properties[key] = value
                }
            }
        }
        reader.reportUnknownKeys()
        return KafkaSettings(
            brokers: brokers, topics: topics, properties: properties, secretProperties: secretProperties)
    }

    private static func isTopicName(_ name: String) -> Bool {
        (1...249).contains(name.utf8.count) && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy {
                ($0.isASCIIAlphanumeric || $0 == "." || $0 == "_" || $0 == "-")
            }
    }

    /// librdkafka properties that hold credentials.
    private static func looksSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        return lower.contains("password") || lower.contains("secret") || lower == "ssl.key.pem"
    }

    // MARK: edge, pixel_audit

    private static func readEdge(_ reader: MappingReader) -> EdgeSettings {
        var edge = EdgeSettings()
        if let text = reader.string("listen") {
            if let listen = HostPort(text) {
                edge.listen = listen
            } else {
                reader.report("listen", "must be host:port, e.g. 127.0.0.1:8080")
            }
        }
        if let origins = reader.stringList("cors_origins") {
            for (index, origin) in origins.enumerated() where origin != "*" && !isOrigin(origin) {
                reader.validation.report(
                    "\(reader.path("cors_origins"))[\(index)]",
                    "must be \"*\" or an origin such as https://www.example.com",
                    at: reader.position(of: "cors_origins"))
            }
            edge.corsOrigins = origins
        }
        // Checked only once destinations are known: see `read(_:)`.
        if let key = reader.secret("redirect_key", required: false, check: false) { edge.redirectKey = key }
        if let dir = reader.string("snapshot_dir") { edge.snapshotDir = dir }
        if let limit = reader.integer("max_connections", atLeast: 1) { edge.maxConnections = limit }
        if let timeout = reader.duration("idle_timeout", positive: true) { edge.idleTimeout = timeout }
        reader.reportUnknownKeys()
        return edge
    }

    /// `scheme://host[:port]` with nothing after it.
    private static func isOrigin(_ text: String) -> Bool {
        guard let url = MappingReader.httpURL(text) else { return false }
        return url.path.isEmpty && url.query == nil && url.fragment == nil && !text.hasSuffix("/")
    }

    private static func readInput(_ reader: MappingReader) -> EventTimeWindow {
        var window = EventTimeWindow()
        if let age = reader.duration("max_event_age", positive: true) { window.maxEventAge = age }
        if let skew = reader.duration("max_clock_skew", positive: true) { window.maxClockSkew = skew }
        reader.reportUnknownKeys()
        return window
    }

    private static func readPixelAudit(_ reader: MappingReader) -> PixelAuditSettings {
        var settings = PixelAuditSettings()
        if let window = reader.duration("audit_window", positive: true) { settings.auditWindow = window }
        if let grace = reader.duration("grace", positive: false) { settings.grace = grace }
        reader.reportUnknownKeys()
        return settings
    }

    // MARK: destinations

    private static func readDestinations(_ root: MappingReader) -> [Destination] {
        guard let nodes = root.sequence("destinations") else { return [] }
        var destinations: [Destination] = []
        var firstByID: [Int: Int] = [:]
        var firstByName: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            let path = "destinations[\(index)]"
            guard let reader = MappingReader(node, path: path, validation: root.validation) else { continue }
            let before = root.validation.problemCount
            let destination = Destination.read(reader)
            if destination.complete == nil && root.validation.problemCount == before {
                reader.report(nil, "invalid")  // a safety net: every incomplete entry should have said why
            }
            // Duplicates are checked on the raw fields, so that they are found even in an otherwise broken entry.
            if let id = destination.id {
                if let first = firstByID[id] {
                    reader.report("id", "duplicate id \(id) (also destinations[\(first)])")
                } else {
                    firstByID[id] = index
                }
            }
            if let name = destination.name {
                if let first = firstByName[name] {
                    reader.report("name", "duplicate name \"\(name)\" (also destinations[\(first)])")
                } else {
                    firstByName[name] = index
                }
            }
            if let complete = destination.complete { destinations.append(complete) }
        }
        return destinations
    }
}
