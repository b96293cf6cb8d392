import Foundation
import Metrics

/// What is running: the release version (a constant, bumped with each release) and the source revision.
///
/// The revision comes from `RELAY_REVISION` in the environment (the image build or the deployment sets it to the
/// commit), not from the build: the same sources then always produce the same binaries, in the one debug and one
/// release configuration there are.
public enum BuildInfo {
    public static let version = "0.9.0"

    public static var revision: String {
        let value = ProcessInfo.processInfo.environment["RELAY_REVISION"] ?? ""
        return value.isEmpty ? "unknown" : value
    }

    /// What `--version` prints: `0.9.0 (revision 1a2b3c4)`.
    public static var versionLine: String { "\(version) (revision \(revision))" }

    /// `relay_build_info{version, revision} 1`, so that dashboards can tell which build each process runs.
    static func recordMetric() {
        Gauge(label: "relay_build_info", dimensions: [("version", version), ("revision", revision)]).record(1)
    }
}
