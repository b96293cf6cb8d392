import Crypto
import Foundation
import Testing

@testable import RelayCore

@Suite("Secrets")
struct SecretTests {
    @Test func resolvesFromTheEnvironment() throws {
        #expect(try Secret.environment("K").resolve(environment: ["K": "value"]) == "value")
        #expect(throws: SecretError(secret: .environment("K"), message: "environment variable K is not set")) {
            try Secret.environment("K").resolve(environment: [:])
        }
        #expect(throws: SecretError(secret: .environment("K"), message: "environment variable K is empty")) {
            try Secret.environment("K").resolve(environment: ["K": ""])
        }
    }

    @Test func resolvesFromAFileWithoutTheTrailingNewline() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "  s3cr3t with spaces \n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Secret.file(path).resolve(environment: [:]) == "  s3cr3t with spaces ")
        try "line1\nline2\r\n\r\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Secret.file(path).resolve(environment: [:]) == "line1\nline2")
        try "\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: SecretError(secret: .file(path), message: "\(path) is empty")) {
            try Secret.file(path).resolve(environment: [:])
        }
        #expect(throws: SecretError(secret: .file("/nonexistent/k"), message: "cannot read /nonexistent/k")) {
            try Secret.file("/nonexistent/k").resolve(environment: [:])
        }
    }

    @Test func descriptionsNameTheSourceNeverTheValue() {
        let env = Secret.environment("ACME_HMAC_KEY")
        #expect(env.description == "env:ACME_HMAC_KEY")
        #expect(env.debugDescription == "Secret(env:ACME_HMAC_KEY)")
        #expect(String(describing: env) == "env:ACME_HMAC_KEY")
        #expect(String(reflecting: env) == "Secret(env:ACME_HMAC_KEY)")
        #expect("\(Secret.file("/run/secrets/k"))" == "file:/run/secrets/k")
    }

    @Test func configurationOutputNeverShowsSecretValues() throws {
        let environment = specExampleEnvironment
        let config = try RelayConfig.parse(yaml: specExampleYAML, environment: environment)
        let dumps = [String(describing: config), String(reflecting: config), { var s = ""; dump(config, to: &s); return s }()]
        for text in dumps {
            for value in environment.values { #expect(!text.contains(value)) }
        }
    }

    @Test func inlineSecretsAreProblemsThatDoNotQuoteThem() {
        let yaml = config(destination: """
              - id: 1
                name: rt
                kind: realtime
                url: https://p.example/x
                client_id: c
                signing: {key: "hunter2-inline-secret"}
                mappings: []
              - id: 2
                name: files
                kind: batch
                output: {type: s3, bucket: b, access_key: AKIAINLINE, secret_key: "wJalrINLINE"}
                mappings: []
            """)
        do {
            _ = try RelayConfig.parse(yaml: yaml, environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(
                error.problems.map(\.description) == [
                    "destinations[0].signing.key: secrets are never written in the file: use key_env or key_file",
                    "destinations[1].output.access_key: secrets are never written in the file: use access_key_env or access_key_file",
                    "destinations[1].output.secret_key: secrets are never written in the file: use secret_key_env or secret_key_file",
                ])
            for value in ["hunter2", "AKIAINLINE", "wJalrINLINE"] { #expect(!error.description.contains(value)) }
        }
    }

    @Test func missingSecretsAreReportedWithTheirPath() {
        let yaml = config(destination: """
              - id: 1
                name: rt
                kind: realtime
                url: https://p.example/x
                client_id: c
                oauth2: {token_url: https://p.example/t, client_id_env: OAUTH_ID, client_secret_file: /nonexistent/secret}
                mappings: []
            """)
        do {
            _ = try RelayConfig.parse(yaml: yaml, environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(
                error.problems.map(\.description) == [
                    "destinations[0].oauth2.client_id_env: environment variable OAUTH_ID is not set",
                    "destinations[0].oauth2.client_secret_file: cannot read /nonexistent/secret",
                ])
        }
        #expect(throws: Never.self) { try RelayConfig.parse(yaml: yaml, environment: [:], checkSecrets: false) }
    }

    @Test func secretFilesAreCheckedByReadingThem() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("key-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "k3y\n".write(toFile: path, atomically: true, encoding: .utf8)
        let yaml = config(destination: """
              - {id: 1, name: rt, kind: realtime, url: "https://p.example/x", client_id: c, signing: {algorithm: sha1, key_file: "\(path)"}, mappings: []}
            """)
        let signing = try #require(try RelayConfig.parse(yaml: yaml, environment: [:]).destinations.first?.realtime?.signing)
        #expect(signing.algorithm == .sha1)
        #expect(try signing.key.resolve(environment: [:]) == "k3y")
    }

    @Test func badEnvironmentNamesAreNotEchoed() {
        let yaml = config(destination: """
              - {id: 1, name: rt, kind: realtime, url: "https://p.example/x", client_id: c, signing: {key_env: "actual secret!"}, mappings: []}
            """)
        do {
            _ = try RelayConfig.parse(yaml: yaml, environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(error.description == "destinations[0].signing.key_env: not a valid environment variable name")
        }
    }
}

@Suite("Signing")
struct SigningTests {
    /// RFC 4231 test case 2 / RFC 2202 test case 2 ("Jefe"), Base64.
    @Test(arguments: [
        (SigningAlgorithm.sha256, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="),
        (.sha1, "7/zfauXrL6LSdBbV8YTfnCWafHk="),
        (.md5, "dQx4PmqwtQPqqG4xCl23OA=="),
    ])
    func knownVectors(algorithm: SigningAlgorithm, expected: String) {
        #expect(algorithm.signature(of: Array("what do ya want for nothing?".utf8), key: "Jefe") == expected)
    }

    /// The prepared key gives Crypto's HMAC for keys shorter than, equal to and longer than a block (a longer key is
    /// hashed first), for messages of 0 to several blocks, in one piece or many.
    @Test(arguments: [0, 1, 20, 63, 64, 65, 131])
    func preparedKeysMatchCrypto(keyLength: Int) {
        let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let symmetric = SymmetricKey(data: key)
        for messageLength in [0, 1, 55, 56, 64, 200] {
            let message = (0..<messageLength).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
            #expect(Array(PreparedHMAC<SHA256>(key: key).code(of: message))
                == Array(HMAC<SHA256>.authenticationCode(for: message, using: symmetric)))
            #expect(Array(PreparedHMAC<Insecure.SHA1>(key: key).code(of: message))
                == Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: symmetric)))
            #expect(Array(PreparedHMAC<Insecure.MD5>(key: key).code(of: message))
                == Array(HMAC<Insecure.MD5>.authenticationCode(for: message, using: symmetric)))
            let pieces = PreparedHMAC<SHA256>(key: key).code { hasher in
                for start in stride(from: 0, to: message.count, by: 7) {
                    message[start..<min(start + 7, message.count)].withUnsafeBytes { hasher.update(bufferPointer: $0) }
                }
            }
            #expect(Array(pieces) == Array(HMAC<SHA256>.authenticationCode(for: message, using: symmetric)))
        }
    }

    @Test func validityIsExact() {
        let hmac = PreparedHMAC<SHA256>(key: Array("k".utf8))
        let message = Array("message".utf8)
        let code = Array(hmac.code(of: message))
        let feed: (inout SHA256) -> Void = { hasher in message.withUnsafeBytes { hasher.update(bufferPointer: $0) } }
        #expect(hmac.isValid(code, feed))
        #expect(!hmac.isValid(code.dropLast(), feed))
        var flipped = code
        flipped[31] ^= 1
        #expect(!hmac.isValid(flipped, feed))
        #expect(!hmac.isValid([UInt8](), feed))
    }
}
