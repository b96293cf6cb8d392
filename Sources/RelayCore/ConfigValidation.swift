import Foundation
import Yams

/// The state of one configuration load: the environment, whether secrets are checked, and every problem found,
/// each with the line it was found on so that the report follows the file.
final class ConfigValidation {
    let environment: [String: String]
    let checkSecrets: Bool
    private var found: [(position: FilePosition, order: Int, problem: ConfigProblem)] = []

    /// Survey mode (``RelayConfig/knownKeys``): absent mappings and lists read as empty ones, so that every key
    /// the loader would look up is looked up, and each is noted in `keysRead`.
    let surveying: Bool
    /// In survey mode, the path of every key looked up, list indices written `[]`.
    private(set) var keysRead: Set<String> = []

    init(environment: [String: String], checkSecrets: Bool, surveying: Bool = false) {
        self.environment = environment
        self.checkSecrets = checkSecrets
        self.surveying = surveying
    }

    func noteKey(_ path: String) {
        var normalized = ""
        var inIndex = false
        for character in path {
            if character == "[" {
                inIndex = true
                normalized.append("[")
            } else if character == "]" {
                inIndex = false
                normalized.append("]")
            } else if !inIndex {
                normalized.append(character)
            }
        }
        keysRead.insert(normalized)
    }

    func report(_ path: String, _ message: String, at position: FilePosition) {
        found.append((position, found.count, ConfigProblem(path: path, message: message)))
    }

    var problemCount: Int { found.count }

    var problems: [ConfigProblem] {
        found.sorted { ($0.position, $0.order) < ($1.position, $1.order) }.map(\.problem)
    }

    /// Checks that a secret can be read now, reporting under `path` without ever showing the value.
    func check(_ secret: Secret, path: String, at position: FilePosition, needFor: String = "") {
        do {
            _ = try secret.resolve(environment: environment)
        } catch {
            report(path, error.message + needFor, at: position)
        }
    }
}

/// Where something is in the file (1-based), to report problems in file order.
struct FilePosition: Comparable {
    var line: Int
    var column: Int

    static let start = FilePosition(line: 1, column: 1)

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    init(_ mark: Mark?, or fallback: FilePosition = .start) {
        self = mark.map { FilePosition(line: $0.line, column: $0.column) } ?? fallback
    }

    static func < (lhs: FilePosition, rhs: FilePosition) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}
