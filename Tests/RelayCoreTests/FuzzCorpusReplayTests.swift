import Foundation
import RelayCore
import Testing

/// The seed corpora of `bench/fuzz.sh` (Fuzz/Corpus), replayed in every test run through the properties the fuzz
/// targets check: every input that once crashed a target stays here as a regression, without a fuzzing build.
@Suite("Fuzz corpora replayed")
struct FuzzCorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    static func inputs(_ target: String) throws -> [(String, [UInt8])] {
        let directory = corpus.appendingPathComponent(target)
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map {
            ($0, Array(try Data(contentsOf: directory.appendingPathComponent($0))))
        }
    }

    @Test func qualificationDecodesOrRefusesAndRoundTrips() throws {
        let inputs = try Self.inputs("qualification")
        #expect(inputs.count >= 3)
        for (name, bytes) in inputs {
            guard let event = try? bytes.withUnsafeBytes({ try QualificationDecoder.decode($0) }) else { continue }
            let again = event.jsonBytes()
            #expect(try again.withUnsafeBytes { try QualificationDecoder.decode($0) } == event, "\(name)")
        }
    }

    @Test func pixelDecodersAgreeAndRoundTrip() throws {
        let inputs = try Self.inputs("pixel")
        #expect(inputs.contains { $0.0 == "fired-without-url" })
        for (name, bytes) in inputs {
            let event = try? PixelEvent.decode(bytes)
            let sighting = try? PixelSighting.decode(bytes)
            #expect((event == nil) == (sighting == nil), "\(name)")
            if let event {
                #expect(PixelSighting(event) == sighting, "\(name)")
                #expect(try PixelEvent.decode(event.jsonBytes()) == event, "\(name)")
            }
            if let report = try? AuditReport.decode(bytes) {
                #expect(try AuditReport.decode(report.jsonBytes()).fired == report.fired, "\(name)")
                #expect(AuditReport.merged([report, report], maxLossRate: 0.1) != nil, "\(name)")
            }
        }
    }

    @Test func configLoadsOrNamesAProblemWithoutSecrets() throws {
        let inputs = try Self.inputs("config")
        #expect(inputs.count >= 2)
        for (name, bytes) in inputs {
            do {
                _ = try RelayConfig.parse(yaml: String(decoding: bytes, as: UTF8.self),
                                          environment: ["FUZZ_SECRET": "fuzz-secret-value-7f3a"], checkSecrets: true)
            } catch {
                #expect(!error.problems.isEmpty, "\(name)")
                #expect(!"\(error)".contains("fuzz-secret-value-7f3a"), "\(name)")
            }
        }
    }
}
