import Foundation
import RelayCore
import Testing

/// docs/configuration.md against the loader: every key the loader accepts is documented, and every documented key
/// is one the loader accepts.
@Suite("docs/configuration.md")
struct ConfigurationDocTests {
    /// The keys documented: the backticked names in the first cell of each table row, qualified by the section they
    /// are in (`### Every destination` → `destinations[].`, ``### `kind: realtime` `` → `destinations[kind=realtime].`).
    static func documentedKeys() throws -> Set<String> {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/", !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        let text = try String(contentsOf: url.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        var prefix = ""
        var keys: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") {
                if line.contains("Every destination") {
                    prefix = "destinations[]."
                } else if let kind = line.firstMatch(of: /`kind: ([a-z]+)`/) {
                    prefix = "destinations[kind=\(kind.1)]."
                } else {
                    prefix = ""
                }
                continue
            }
            guard line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst().prefix { $0 != "|" }
            for match in cell.matches(of: /`([^`]+)`/) { keys.insert(prefix + match.1) }
        }
        return keys
    }

    @Test("every key the loader reads is documented, and nothing else")
    func docMatchesLoader() throws {
        let documented = try Self.documentedKeys()
        let known = Set(RelayConfig.knownKeys)
        #expect(known.count > 50, "the survey found the loader's keys: \(known.sorted())")
        let undocumented = known.subtracting(documented).sorted()
        let unknown = documented.subtracting(known).sorted()
        #expect(undocumented.isEmpty, "read by the loader, missing from docs/configuration.md: \(undocumented)")
        #expect(unknown.isEmpty, "in docs/configuration.md, not read by the loader: \(unknown)")
    }

    @Test("the survey sees keys of every kind, nested mappings, lists and secrets")
    func surveyCoversTheLoader() {
        let known = Set(RelayConfig.knownKeys)
        for key in ["kafka.brokers", "kafka.topics.dead_letter", "edge.redirect_key_env", "destinations[].id",
                    "destinations[].mappings[].segment", "destinations[kind=realtime].retry.max_attempts",
                    "destinations[kind=realtime].signing.key_file", "destinations[kind=batch].output.bucket",
                    "destinations[kind=url].serialize.delimiter", "destinations[kind=cookie].cookie_name"] {
            #expect(known.contains(key), "\(key)")
        }
        // A literal secret is refused, never a known key.
        #expect(!known.contains("destinations[kind=realtime].signing.key"))
        #expect(!known.contains("destinations[kind=realtime].output.bucket"), "keys stay with their kind")
    }
}
