import Foundation
import RelayCore
import Testing

/// The new `output:` blocks in relay.yaml: what they parse to, and every problem reported with its path (what
/// `relayctl validate` prints).
@Suite("Batch output configuration")
struct BatchOutputConfigTests {
    static func yaml(_ output: String) -> String {
        """
        kafka: {brokers: 127.0.0.1:9092}
        destinations:
          - {id: 1, name: f, kind: batch, output: \(output), mappings: []}
        """
    }

    static func output(_ output: String, environment: [String: String] = [:]) throws -> BatchOutput? {
        try RelayConfig.parse(yaml: yaml(output), environment: environment, checkSecrets: true)
            .destinations.first?.batch?.output
    }

    static func problems(_ output: String, environment: [String: String] = [:]) -> Set<String> {
        do {
            _ = try RelayConfig.parse(yaml: yaml(output), environment: environment, checkSecrets: true)
            Issue.record("accepted: \(output)")
            return []
        } catch {
            return Set(error.problems.map(\.description))
        }
    }

    @Test func sftpParses() throws {
        let keys = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: keys) }
        try Data("k".utf8).write(to: keys.appendingPathComponent("key"))
        try Data("h".utf8).write(to: keys.appendingPathComponent("known"))
        let parsed = try Self.output("""
            {type: sftp, host: sftp.partner.example, user: aam, path: /incoming,
             private_key_file: \(keys.path)/key, known_hosts_file: \(keys.path)/known}
            """)
        #expect(parsed == .sftp(SFTPOutput(host: "sftp.partner.example", port: 22, user: "aam", path: "/incoming",
                                           privateKeyFile: "\(keys.path)/key",
                                           knownHostsFile: "\(keys.path)/known")))
        #expect(parsed?.syncType == "sftp")
        let withPassword = try Self.output("""
            {type: sftp, host: 10.0.0.7, port: 2222, user: aam, path: in, password_env: SFTP_PW,
             known_hosts_file: \(keys.path)/known}
            """, environment: ["SFTP_PW": "secret"])
        #expect(withPassword == .sftp(SFTPOutput(host: "10.0.0.7", port: 2222, user: "aam", path: "in",
                                                 password: .environment("SFTP_PW"),
                                                 knownHostsFile: "\(keys.path)/known")))
    }

    @Test func sftpProblems() {
        #expect(Self.problems("{type: sftp}") == [
            "destinations[0].output.host: required",
            "destinations[0].output.user: required",
            "destinations[0].output.path: required",
            "destinations[0].output.private_key_file: required (or password_env)",
            "destinations[0].output.known_hosts_file: required",
        ])
        #expect(Self.problems("""
            {type: sftp, host: "a b", port: 70000, user: "a@b", path: /in, password: hunter2,
             private_key_file: /nonexistent/key, known_hosts_file: /nonexistent/known, accept_any: true}
            """) == [
            "destinations[0].output.host: not a host name or address",
            "destinations[0].output.port: must be at most 65535",
            "destinations[0].output.user: must not contain ':', '@' or spaces",
            "destinations[0].output.password: secrets are never written in the file: use password_env or password_file",
            "destinations[0].output.private_key_file: cannot read /nonexistent/key",
            "destinations[0].output.known_hosts_file: cannot read /nonexistent/known",
            "destinations[0].output.accept_any: unknown key",
        ])
    }

    @Test func httpAuthParses() throws {
        #expect(try Self.output("{type: http, url: 'https://p.example/up', auth: {bearer_env: TOKEN}}",
                                environment: ["TOKEN": "t"])
            == .http(url: URL(string: "https://p.example/up")!, auth: .bearer(.environment("TOKEN"))))
        #expect(try Self.output("{type: http, url: 'https://p.example/up', auth: {basic: {user: u, password_file: /etc/hostname}}}")
            == .http(url: URL(string: "https://p.example/up")!, auth: .basic(user: "u", password: .file("/etc/hostname"))))
        #expect(try Self.output("{type: http, url: 'https://p.example/up', auth: {signing: {algorithm: sha1, header: X-Sig, key_env: K}}}",
                                environment: ["K": "k"])
            == .http(url: URL(string: "https://p.example/up")!,
                     auth: .signing(SigningSettings(algorithm: .sha1, header: "X-Sig", key: .environment("K")))))
    }

    @Test func httpAuthProblems() {
        #expect(Self.problems("{type: http, url: 'https://p.example/up', auth: {}}")
            == ["destinations[0].output.auth: needs bearer_env, basic or signing"])
        #expect(Self.problems("{type: http, url: 'https://p.example/up', auth: {bearer: abc}}")
            == ["destinations[0].output.auth.bearer: secrets are never written in the file: use bearer_env or bearer_file"])
        #expect(Self.problems("{type: http, url: 'https://p.example/up', auth: {bearer_env: T, basic: {user: u, password_env: P}}}",
                              environment: ["T": "t", "P": "p"])
            == ["destinations[0].output.auth: use one of bearer_env, basic and signing, not several"])
        #expect(Self.problems("{type: http, url: 'https://p.example/up', auth: {basic: {password_env: P, realm: x}}}")
            == [
                "destinations[0].output.auth.basic.user: required",
                "destinations[0].output.auth.basic.password_env: environment variable P is not set",
                "destinations[0].output.auth.basic.realm: unknown key",
            ])
        #expect(Self.problems("{type: http, url: 'https://p.example/up', auth: {signing: {algorithm: sha512, header: 'a b'}}}")
            == [
                #"destinations[0].output.auth.signing.algorithm: unknown algorithm "sha512" (sha256, sha1, md5)"#,
                "destinations[0].output.auth.signing.header: not a valid HTTP header name",
                "destinations[0].output.auth.signing.key_env: required (or key_file)",
            ])
    }

    @Test func s3CredentialChainAndEncryptionParse() throws {
        #expect(try Self.output("{type: s3, bucket: b, sse: 'aws:kms', kms_key_id: alias/relay, storage_class: STANDARD_IA}")
            == .s3(S3Output(bucket: "b", encryption: .kms(keyID: "alias/relay"), storageClass: "STANDARD_IA")))
        #expect(try Self.output("{type: s3, bucket: b, access_key_env: A, secret_key_env: S, session_token_env: T, sse: AES256}",
                                environment: ["A": "a", "S": "s", "T": "t"])
            == .s3(S3Output(bucket: "b", accessKey: .environment("A"), secretKey: .environment("S"),
                            sessionToken: .environment("T"), encryption: .aes256)))
    }

    @Test func s3Problems() {
        #expect(Self.problems("{type: s3, bucket: b, access_key_env: A}", environment: ["A": "a"])
            == ["destinations[0].output.secret_key_env: required (or secret_key_file)"])
        #expect(Self.problems("{type: s3, bucket: b, session_token_env: T, sse: DES, storage_class: COLD}",
                              environment: ["T": "t"])
            == [
                "destinations[0].output.session_token_env: only with access_key_env and secret_key_env (the AWS chain finds its own)",
                #"destinations[0].output.sse: unknown server-side encryption "DES" (AES256, aws:kms)"#,
                #"destinations[0].output.storage_class: unknown storage class "COLD" (STANDARD, REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER, GLACIER_IR, DEEP_ARCHIVE, EXPRESS_ONEZONE)"#,
            ])
        #expect(Self.problems("{type: s3, bucket: b, sse: AES256, kms_key_id: k}")
            == ["destinations[0].output.kms_key_id: only with sse: aws:kms"])
    }
}
