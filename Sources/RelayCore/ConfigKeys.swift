import Foundation

extension RelayConfig {
    /// Every key of relay.yaml that the loader accepts, found by running the loader itself in survey mode (so the
    /// list cannot drift from what it reads and what it rejects as unknown): `kafka.brokers`,
    /// `destinations[].id` for keys of every destination, `destinations[kind=realtime].retry.max_attempts` for keys
    /// of one kind. Lists are written `[]`. docs/configuration.md is checked against it.
    public static let knownKeys: [String] = ConfigKeySurvey.knownKeys()
}

/// Surveys the loader: one pass for the keys outside destinations and those every destination has, then one pass
/// per destination kind and, for batch destinations, per output type.
enum ConfigKeySurvey {
    /// Keys whose value chooses which other keys exist: the kind of a destination, the type of a batch output.
    private static let kindKey = "kind"
    private static let outputTypeKey = "output.type"

    static func knownKeys() -> [String] {
        let common = RelayConfig.survey(yaml: "{}").keys
        let destinationPrefix = "destinations[]."
        var keys = common
        for kind in choices(probe: "{destinations: [{kind: \"?\"}]}", at: "destinations[0].\(kindKey)") {
            var probes = ["{destinations: [{kind: \(kind)}]}"]
            let outputTypes = choices(probe: "{destinations: [{kind: \(kind), output: {type: \"?\"}}]}",
                                      at: "destinations[0].\(outputTypeKey)")
            probes += outputTypes.map { "{destinations: [{kind: \(kind), output: {type: \($0)}}]}" }
            for probe in probes {
                for key in RelayConfig.survey(yaml: probe).keys
                where key.hasPrefix(destinationPrefix) && !common.contains(key) {
                    keys.insert("destinations[kind=\(kind)]." + key.dropFirst(destinationPrefix.count))
                }
            }
        }
        return keys.sorted()
    }

    /// The values a discriminator accepts, as the loader lists them when refusing an unknown one:
    /// `unknown kind "?" (realtime, batch, url, cookie)`. Empty when the key is not a discriminator in this probe.
    static func choices(probe: String, at path: String) -> [String] {
        guard let problem = RelayConfig.survey(yaml: probe).problems.first(where: {
            $0.path == path && $0.message.hasPrefix("unknown ")
        }), let open = problem.message.lastIndex(of: "("), let close = problem.message.lastIndex(of: ")"), open < close
        else { return [] }
        return problem.message[problem.message.index(after: open)..<close]
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
