import Testing

@testable import RelayCore

/// The problems of a configuration that must fail, one `path: message` string each.
func problems(
    _ yaml: String, environment: [String: String] = [:], checkSecrets: Bool = true,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [String] {
    do {
        let config = try RelayConfig.parse(yaml: yaml, environment: environment, checkSecrets: checkSecrets)
        Issue.record("accepted: \(config)", sourceLocation: sourceLocation)
        return []
    } catch {
        return error.problems.map(\.description)
    }
}
