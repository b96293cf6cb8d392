import Foundation
import Yams

/// A YAML mapping being read. Every read marks its key; keys never read are reported as unknown at the end, and
/// every type or range problem is reported with the key's path.
final class MappingReader {
    let path: String
    let position: FilePosition
    let validation: ConfigValidation
    private var entries: [(key: String, position: FilePosition, value: Node)] = []
    private var readKeys: Set<String> = []

    /// Reports `must be a mapping` and returns `nil` for any other node.
    init?(_ node: Node, path: String, validation: ConfigValidation) {
        self.path = path
        self.validation = validation
        position = FilePosition(node.mark)
        guard case .mapping(let mapping) = node else {
            validation.report(path, "must be a mapping", at: position)
            return nil
        }
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else {
                validation.report(path, "keys must be plain text", at: FilePosition(keyNode.mark, or: position))
                continue
            }
            let keyPosition = FilePosition(keyNode.mark, or: position)
            if entries.contains(where: { $0.key == key.string }) {
                validation.report(Self.join(path, key.string), "duplicate key", at: keyPosition)
                continue
            }
            entries.append((key.string, keyPosition, value))
        }
    }

    /// An empty mapping, for sections left out of the file.
    init(emptyAt path: String, position: FilePosition, validation: ConfigValidation) {
        self.path = path
        self.position = position
        self.validation = validation
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    func path(_ key: String) -> String { Self.join(path, key) }

    /// Where `key` is written, or where the mapping is when the key is absent.
    func position(of key: String) -> FilePosition {
        entries.first { $0.key == key }?.position ?? position
    }

    func report(_ key: String?, _ message: String) {
        if let key {
            validation.report(path(key), message, at: position(of: key))
        } else {
            validation.report(path, message, at: position)
        }
    }

    var keys: [String] { entries.map(\.key) }

    /// Whether `key` is written with a non-null value (in survey mode: always, so that every branch is taken).
    func has(_ key: String) -> Bool {
        validation.surveying || entries.contains { $0.key == key && !Self.isNull($0.value) }
    }

    /// The value of `key`, marking it read; `nil` when absent or null.
    func value(_ key: String) -> Node? {
        readKeys.insert(key)
        if validation.surveying { validation.noteKey(path(key)) }
        guard let entry = entries.first(where: { $0.key == key }), !Self.isNull(entry.value) else { return nil }
        return entry.value
    }

    /// Marks a key as known without reading it.
    func ignore(_ key: String) {
        readKeys.insert(key)
    }

    func reportUnknownKeys() {
        for entry in entries where !readKeys.contains(entry.key) {
            validation.report(path(entry.key), "unknown key", at: entry.position)
        }
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    // MARK: Typed values

    private func missing(_ key: String, required: Bool) {
        if required { report(key, "required") }
    }

    /// Any scalar as text (`alias: 99` is the text "99").
    func string(_ key: String, required: Bool = false, allowEmpty: Bool = false) -> String? {
        guard let node = value(key) else {
            missing(key, required: required)
            return nil
        }
        guard case .scalar(let scalar) = node else {
            report(key, "must be a string")
            return nil
        }
        if !allowEmpty && scalar.string.isEmpty {
            report(key, "must not be empty")
            return nil
        }
        return scalar.string
    }

    /// A plain (unquoted) scalar's text; `nil` (reported with `message`) for anything else.
    private func plainScalar(_ key: String, required: Bool, message: String) -> String? {
        guard let node = value(key) else {
            missing(key, required: required)
            return nil
        }
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else {
            report(key, message)
            return nil
        }
        return scalar.string
    }

    func int64(_ key: String, required: Bool = false, atLeast minimum: Int64? = nil) -> Int64? {
        guard let text = plainScalar(key, required: required, message: "must be an integer") else { return nil }
        guard let value = Self.parseInteger(text) else {
            report(key, "must be an integer")
            return nil
        }
        if let minimum, value < minimum {
            report(key, minimum == 1 ? "must be >= 1" : "must be >= \(minimum)")
            return nil
        }
        return value
    }

    func integer(_ key: String, required: Bool = false, atLeast minimum: Int? = nil) -> Int? {
        guard let value = int64(key, required: required, atLeast: minimum.map(Int64.init)) else { return nil }
        guard let int = Int(exactly: value) else {
            report(key, "must be an integer")
            return nil
        }
        return int
    }

    /// Digits with an optional sign; `_` between digits is allowed (`1_073_741_824`), as in YAML.
    static func parseInteger(_ text: String) -> Int64? {
        var digits = Substring(text)
        var negative = false
        if let first = digits.first, first == "-" || first == "+" {
            negative = first == "-"
            digits = digits.dropFirst()
        }
        guard let first = digits.first, first.isASCII, first.isNumber, let last = digits.last, last.isASCII,
            last.isNumber, digits.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" })
        else { return nil }
        let cleaned = digits.filter { $0 != "_" }
        return Int64(negative ? "-" + cleaned : cleaned)
    }

    func bool(_ key: String) -> Bool? {
        guard let text = plainScalar(key, required: false, message: "must be true or false") else { return nil }
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            report(key, "must be true or false")
            return nil
        }
    }

    func number(_ key: String) -> Double? {
        guard let text = plainScalar(key, required: false, message: "must be a number") else { return nil }
        guard let value = Double(text), value.isFinite else {
            report(key, "must be a number")
            return nil
        }
        return value
    }

    /// A duration string; `positive` refuses zero.
    func duration(_ key: String, positive: Bool) -> RelayDuration? {
        guard let node = value(key) else { return nil }
        guard case .scalar(let scalar) = node else {
            report(key, "must be a duration such as 500ms, 30s, 10m or 24h")
            return nil
        }
        do {
            let duration = try RelayDuration(parsing: scalar.string)
            if positive && duration.milliseconds == 0 {
                report(key, "must be longer than 0")
                return nil
            }
            return duration
        } catch {
            report(key, error.message)
            return nil
        }
    }

    /// One of `allowed` (raw values), reported as `unknown <noun> "x" (a, b, c)`.
    func choice<Choice: RawRepresentable & CaseIterable>(_ key: String, _ noun: String) -> Choice?
    where Choice.RawValue == String {
        guard let text = string(key, allowEmpty: true) else { return nil }
        guard let choice = Choice(rawValue: text) else {
            let names = Choice.allCases.map(\.rawValue).joined(separator: ", ")
            report(key, "unknown \(noun) \"\(text)\" (\(names))")
            return nil
        }
        return choice
    }

    func mapping(_ key: String, required: Bool = false) -> MappingReader? {
        guard let node = value(key) else {
            if validation.surveying { return MappingReader(emptyAt: path(key), position: position, validation: validation) }
            missing(key, required: required)
            return nil
        }
        return MappingReader(node, path: path(key), validation: validation)
    }

    func sequence(_ key: String, required: Bool = false) -> [Node]? {
        guard let node = value(key) else {
            // One empty entry, so that the keys of a list's entries are looked up too.
            if validation.surveying { return [.mapping(Node.Mapping([]))] }
            missing(key, required: required)
            return nil
        }
        guard case .sequence(let sequence) = node else {
            report(key, "must be a list")
            return nil
        }
        return Array(sequence)
    }

    /// A list of strings; a problem entry is reported as `key[i]`.
    func stringList(_ key: String) -> [String]? {
        guard let nodes = sequence(key) else { return nil }
        var result: [String] = []
        for (index, node) in nodes.enumerated() {
            guard case .scalar(let scalar) = node, !Self.isNull(node), !scalar.string.isEmpty else {
                validation.report("\(path(key))[\(index)]", "must be a non-empty string",
                    at: FilePosition(node.mark, or: position))
                continue
            }
            result.append(scalar.string)
        }
        return result
    }

    /// An http or https URL.
    func httpURL(_ key: String, required: Bool = false) -> URL? {
        guard let text = string(key, required: required) else { return nil }
        guard let url = Self.httpURL(text) else {
            report(key, "not an http(s) URL")
            return nil
        }
        return url
    }

    static func httpURL(_ text: String) -> URL? {
        guard !text.contains(where: { $0.isWhitespace }), let url = URL(string: text),
            let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else { return nil }
        return url
    }

    // MARK: Secrets

    /// A secret written `<name>_env` or `<name>_file`. A literal `<name>` is a problem, reported without its value.
    /// With `check` (and the load's `checkSecrets`), the secret must be readable now.
    func secret(_ name: String, required: Bool = true, check: Bool = true) -> Secret? {
        let envKey = "\(name)_env"
        let fileKey = "\(name)_file"
        let literal = has(name)
        if literal {
            ignore(name)
            report(name, "secrets are never written in the file: use \(envKey) or \(fileKey)")
        } else {
            ignore(name)
        }
        let env = string(envKey)
        let file = string(fileKey)
        switch (env, file) {
        case (nil, nil):
            if required && !literal && !has(envKey) && !has(fileKey) {
                validation.report(path(envKey), "required (or \(fileKey))", at: position)
            }
            return nil
        case (.some, .some):
            report(fileKey, "use \(envKey) or \(fileKey), not both")
            return nil
        case (let name?, nil):
            guard Self.isEnvironmentName(name) else {
                report(envKey, "not a valid environment variable name")
                return nil
            }
            let secret = Secret.environment(name)
            if check && validation.checkSecrets { validation.check(secret, path: path(envKey), at: position(of: envKey)) }
            return secret
        case (nil, let file?):
            let secret = Secret.file(file)
            if check && validation.checkSecrets { validation.check(secret, path: path(fileKey), at: position(of: fileKey)) }
            return secret
        }
    }

    static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic)
        else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0.isASCIIAlphanumeric }
    }
}

extension Unicode.Scalar {
    /// `[0-9A-Za-z]`: names in the file are ASCII, whatever Unicode calls a letter.
    var isASCIIAlphanumeric: Bool {
        ("0"..."9").contains(self) || ("a"..."z").contains(self) || ("A"..."Z").contains(self)
    }
}
