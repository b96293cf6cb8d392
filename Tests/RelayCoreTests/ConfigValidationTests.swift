import Foundation
import Testing

@testable import RelayCore


/// A realtime destination with `extra` flow-mapping entries added (or overriding).
private func realtime(_ extra: String = "", mappings: String = "[{segment: 1}]") -> String {
    config(destination: """
          - {id: 1, name: rt, kind: realtime, url: "https://p.example/x", client_id: c, \(extra)\(extra.isEmpty ? "" : ", ")mappings: \(mappings)}
        """)
}

@Suite("Configuration: validation")
struct ConfigValidationTests {
    @Test func brokersRequired() {
        #expect(problems("destinations: []") == ["kafka.brokers: required"])
        #expect(problems("") == ["kafka.brokers: required"])
        #expect(problems("kafka: {topics: {}}") == ["kafka.brokers: required"])
        #expect(problems("kafka: {brokers: 'a:1, ,b:2'}") == ["kafka.brokers: must be host:port entries separated by commas"])
        #expect(problems("kafka: {brokers: {a: 1}}") == ["kafka.brokers: must be host:port or a list of them"])
    }

    @Test func kafkaSections() {
        #expect(
            problems("kafka: {brokers: 'a:1', topics: {qualifications: 'bad topic', deadletter: x}}") == [
                "kafka.topics.qualifications: not a valid topic name (1-249 characters of [A-Za-z0-9._-])",
                "kafka.topics.deadletter: unknown key",
            ])
        #expect(problems("kafka: {brokers: 'a:1', properties: [x]}") == ["kafka.properties: must be a mapping"])
        #expect(
            problems("kafka: {brokers: 'a:1', properties: {sasl.mechanism: PLAIN, sasl.password: hunter2}}") == [
                "kafka.properties.sasl.password: secrets are never written in the file: use sasl.password_env or sasl.password_file"
            ])
    }

    @Test func kafkaSecretProperties() throws {
        let yaml = "kafka: {brokers: 'a:1', properties: {security.protocol: SASL_SSL, sasl.password_env: KAFKA_PW}}"
        #expect(problems(yaml) == ["kafka.properties.sasl.password_env: environment variable KAFKA_PW is not set"])
        let config = try RelayConfig.parse(yaml: yaml, environment: ["KAFKA_PW": "pw"])
        #expect(config.kafka.properties == ["security.protocol": "SASL_SSL"])
        #expect(config.kafka.secretProperties == ["sasl.password": .environment("KAFKA_PW")])
        #expect(
            try config.kafka.resolvedProperties(environment: ["KAFKA_PW": "pw"])
                == ["security.protocol": "SASL_SSL", "sasl.password": "pw"])
    }

    @Test func edgeAndPixelAudit() {
        let yaml = """
            kafka: {brokers: 'a:1'}
            edge:
              listen: localhost
              cors_origins: ["*", "https://ok.example", "https://bad.example/path", ftp://x]
              redirect_key: abc
              snapshot_dir: ""
              port: 1
            pixel_audit: {audit_window: 0s, grace: 10, state_dir: s, extra: 1}
            """
        #expect(
            problems(yaml) == [
                "edge.listen: must be host:port, e.g. 127.0.0.1:8080",
                "edge.cors_origins[2]: must be \"*\" or an origin such as https://www.example.com",
                "edge.cors_origins[3]: must be \"*\" or an origin such as https://www.example.com",
                "edge.redirect_key: secrets are never written in the file: use redirect_key_env or redirect_key_file",
                "edge.snapshot_dir: must not be empty",
                "edge.port: unknown key",
                "pixel_audit.audit_window: must be longer than 0",
                "pixel_audit.grace: \"10\" has no unit (ms, s, m, h, d)",
                "pixel_audit.state_dir: unknown key",  // the state is in Kafka now
                "pixel_audit.extra: unknown key",
            ])
    }

    @Test func listenForms() throws {
        let ipv6 = try RelayConfig.parse(yaml: "kafka: {brokers: 'a:1'}\nedge: {listen: '[::1]:9090'}", environment: [:])
        #expect(ipv6.edge.listen == HostPort(host: "::1", port: 9090))
        #expect(ipv6.edge.listen.description == "[::1]:9090")
        #expect(HostPort("0.0.0.0:0") == HostPort(host: "0.0.0.0", port: 0))
        #expect(HostPort("host:65536") == nil)
        #expect(HostPort(":80") == nil)
        #expect(HostPort("::1:80") == nil)
    }

    @Test func unknownTopLevelAndDestinationKeys() {
        #expect(problems("kafka: {brokers: 'a:1'}\ndestination: []") == ["destination: unknown key"])
        #expect(problems(realtime("urll: x")) == ["destinations[0].urll: unknown key"])
        // A key of another kind is unknown here too.
        #expect(problems(realtime("every: 24h")) == ["destinations[0].every: unknown key"])
    }

    @Test func commonDestinationFields() {
        #expect(
            problems(config(destination: "  - {kind: realtime, url: 'https://p.example', client_id: c}")) == [
                "destinations[0].id: required",
                "destinations[0].name: required",
                "destinations[0].mappings: required",
            ])
        #expect(
            problems(config(destination: "  - {id: 0, name: '', kind: url, url: 'https://p/%alias%', mappings: {}}")) == [
                "destinations[0].id: must be >= 1",
                "destinations[0].name: must not be empty",
                "destinations[0].mappings: must be a list",
            ])
        #expect(
            problems(config(destination: "  - {id: '5', name: n, kind: url, url: 'https://p/%alias%', mappings: []}"))
                == ["destinations[0].id: must be an integer"])
        #expect(problems(config(destination: "  - just text")) == ["destinations[0]: must be a mapping"])
        #expect(problems("kafka: {brokers: 'a:1'}\ndestinations: {a: 1}") == ["destinations: must be a list"])
    }

    @Test func unknownKind() {
        let yaml = config(destination: "  - {id: 1, name: n, kind: foo, whatever: 1, mappings: []}")
        // Keys cannot be judged without a kind: only the kind is reported.
        #expect(problems(yaml) == [#"destinations[0].kind: unknown kind "foo" (realtime, batch, url, cookie)"#])
        #expect(problems(config(destination: "  - {id: 1, name: n, mappings: []}")) == ["destinations[0].kind: required"])
    }

    @Test func duplicateIDsAndNames() {
        let yaml = config(destination: """
              - {id: 5001, name: a, kind: cookie, cookie_name: c, key: k, mappings: []}
              - {id: 5001, name: b, kind: cookie, cookie_name: c, key: k, mappings: []}
              - {id: 5002, name: a, kind: cookie, cookie_name: c, key: k, mappings: []}
              - {id: 5001, name: d, kind: cookie, cookie_name: c, key: k, mappings: []}
            """)
        #expect(
            problems(yaml) == [
                "destinations[1].id: duplicate id 5001 (also destinations[0])",
                "destinations[2].name: duplicate name \"a\" (also destinations[0])",
                "destinations[3].id: duplicate id 5001 (also destinations[0])",
            ])
    }

    @Test func duplicateYAMLKeys() {
        let yaml = """
            kafka:
              brokers: a:1
              brokers: b:1
            """
        #expect(problems(yaml) == ["kafka.brokers: duplicate key"])
    }

    @Test func realtimeRules() {
        func withURL(_ url: String) -> String {
            config(destination: "  - {id: 1, name: rt, kind: realtime, url: \(url), client_id: c, mappings: []}")
        }
        #expect(problems(withURL("ftp://p.example")) == ["destinations[0].url: not an http(s) URL"])
        #expect(problems(withURL("'not a url'")) == ["destinations[0].url: not an http(s) URL"])
        #expect(problems(withURL("'https://'")) == ["destinations[0].url: not an http(s) URL"])
        #expect(problems(withURL("[https://p.example]")) == ["destinations[0].url: must be a string"])
        #expect(
            problems(config(destination: "  - {id: 1, name: rt, kind: realtime, mappings: []}")) == [
                "destinations[0].url: required", "destinations[0].client_id: required",
            ])
        #expect(
            problems(realtime("retry: {max_attempts: 0, initial_backoff_ms: 500, max_backoff_ms: 100, jitter: 1}")) == [
                "destinations[0].retry.max_attempts: must be >= 1",
                "destinations[0].retry.max_backoff_ms: must be >= initial_backoff_ms (500)",
                "destinations[0].retry.jitter: unknown key",
            ])
        #expect(
            problems(
                realtime(
                    "user_dpid: -1, unsegment: yes, max_users_per_message: 0, flush_interval_ms: -1, timeout_ms: 0, max_in_flight: 0, rate_limit_per_second: 0, gzip: 1"
                )) == [
                    "destinations[0].user_dpid: must be >= 0",
                    "destinations[0].unsegment: must be true or false",
                    "destinations[0].max_users_per_message: must be >= 1",
                    "destinations[0].flush_interval_ms: must be >= 0",
                    "destinations[0].timeout_ms: must be >= 1",
                    "destinations[0].max_in_flight: must be >= 1",
                    "destinations[0].rate_limit_per_second: must be > 0 (leave it out for no limit)",
                    "destinations[0].gzip: must be true or false",
                ])
    }

    @Test func signingRules() {
        #expect(
            problems(realtime("signing: {algorithm: sha512, header: 'X Sig', key_env: K}"), environment: ["K": "v"]) == [
                #"destinations[0].signing.algorithm: unknown algorithm "sha512" (sha256, sha1, md5)"#,
                "destinations[0].signing.header: not a valid HTTP header name",
            ])
        #expect(problems(realtime("signing: {algorithm: md5}")) == ["destinations[0].signing.key_env: required (or key_file)"])
        #expect(
            problems(realtime("signing: {key_env: K, key_file: /k}"), checkSecrets: false)
                == ["destinations[0].signing.key_file: use key_env or key_file, not both"])
        #expect(
            problems(realtime("signing: {key_env: K}, oauth2: {token_url: 'https://t', client_id_env: I, client_secret_env: S}"), checkSecrets: false)
                == ["destinations[0].oauth2: use signing or oauth2, not both"])
        #expect(
            problems(realtime("oauth2: {token_url: nope, client_id: acme, client_secret_file: /s}"), checkSecrets: false) == [
                "destinations[0].oauth2.token_url: not an http(s) URL",
                "destinations[0].oauth2.client_id: secrets are never written in the file: use client_id_env or client_id_file",
            ])
    }

    @Test func batchRules() {
        let yaml = config(destination: """
              - id: 1
                name: files
                kind: batch
                every: 24
                at: "25:00"
                grace: 30x
                mode: delta
                master_dpid: -2
                pid_alias: "acme_files"
                max_file_bytes: 0
                output: {type: ftp}
                mappings: []
            """)
        #expect(
            problems(yaml) == [
                #"destinations[0].every: "24" has no unit (ms, s, m, h, d)"#,
                #"destinations[0].at: must be a UTC time written HH:MM, e.g. "14:00""#,
                #"destinations[0].grace: unknown unit "x" in "30x" (ms, s, m, h, d)"#,
                #"destinations[0].mode: unknown mode "delta" (iter, full)"#,
                "destinations[0].master_dpid: must be >= 0",
                "destinations[0].pid_alias: must be 1-64 characters of [0-9A-Za-z.-] (it is part of file names)",
                "destinations[0].max_file_bytes: must be >= 1",
                #"destinations[0].output.type: unknown type "ftp" (dir, s3, http, sftp)"#,
            ])
        #expect(
            problems(config(destination: "  - {id: 1, name: 'my files', kind: batch, output: {type: dir, path: o}, mappings: []}"))
                == [#"destinations[0].pid_alias: required: the name "my files" cannot be used in file names (1-64 characters of [0-9A-Za-z.-])"#])
        #expect(
            problems(config(destination: "  - {id: 1, name: f, kind: batch, mappings: []}")) == ["destinations[0].output: required"])
        #expect(
            problems(config(destination: "  - {id: 1, name: f, kind: batch, every: 0h, output: {type: dir}, mappings: []}")) == [
                "destinations[0].every: must be longer than 0",
                "destinations[0].output.path: required",
            ])
        #expect(
            problems(
                config(destination: "  - {id: 1, name: f, kind: batch, output: {type: s3, bucket: 'a b', endpoint: x, access_key: AKIA123, secret_key_env: SK, path: p}, mappings: []}"))
                == [
                    "destinations[0].output.bucket: not a valid bucket name (1-255 characters of [A-Za-z0-9._-])",
                    "destinations[0].output.endpoint: not an http(s) URL",
                    "destinations[0].output.access_key: secrets are never written in the file: use access_key_env or access_key_file",
                    "destinations[0].output.secret_key_env: environment variable SK is not set",
                    "destinations[0].output.path: unknown key",
                ])
        #expect(
            problems(config(destination: "  - {id: 1, name: f, kind: batch, output: {type: http, url: 'ftp://x'}, mappings: []}"))
                == ["destinations[0].output.url: not an http(s) URL"])
    }

    @Test func batchAliases() {
        #expect(
            problems(config(destination: "  - {id: 1, name: f, kind: batch, output: {type: dir, path: o}, mappings: [{segment: 1, alias: 'a,b'}, {segment: 2, alias: 'a b'}]}"))
                == [
                    "destinations[0].mappings[0].alias: must not contain ',' or spaces (they separate aliases in batch lines)",
                    "destinations[0].mappings[1].alias: must not contain ',' or spaces (they separate aliases in batch lines)",
                ])
        // Checked even while the rest of the batch settings are broken.
        #expect(
            problems(config(destination: "  - {id: 1, name: f, kind: batch, mappings: [{segment: 1, alias: 'a b'}]}")) == [
                "destinations[0].output: required",
                "destinations[0].mappings[0].alias: must not contain ',' or spaces (they separate aliases in batch lines)",
            ])
    }

    @Test func urlRules() {
        func url(_ fields: String) -> String {
            config(destination: "  - {id: 7, name: px, kind: url, \(fields), mappings: []}")
        }
        #expect(problems(url("url: 'https://px.example/?s=1'")) == ["destinations[0].url: %alias% macro required"])
        #expect(problems(url("url: 'px.example/?s=%alias%'")) == ["destinations[0].url: not an http(s) URL"])
        #expect(
            problems(url("url: 'https://px.example/?s=%alias%&u=%uuid%'"))
                == ["destinations[0].url: unknown macro %uuid% (alias, did, rnd, timestamp, region, http_proto, dpid_<DPID>)"])
        #expect(
            problems(url("url: 'https://px.example/?s=%alias%', secure_url: 'http://px.example/?s=%alias%'"))
                == ["destinations[0].secure_url: must be an https URL"])
        #expect(
            problems(url("url: 'https://px.example/?s=%alias%', secure_url: 'https://px.example/'"))
                == ["destinations[0].secure_url: %alias% macro required"])
        #expect(
            problems(url("url: 'https://px.example/?s=%alias%', audit: always, max_loss_rate: 1.5, serialize: {delimiter: '', sep: x}"))
                == [
                    #"destinations[0].audit: unknown audit "always" (redirect, none)"#,
                    "destinations[0].max_loss_rate: must be between 0 and 1",
                    "destinations[0].serialize.delimiter: must not be empty",
                    "destinations[0].serialize.sep: unknown key",
                ])
        #expect(problems(config(destination: "  - {id: 7, name: px, kind: url, mappings: []}")) == ["destinations[0].url: required"])
    }

    @Test func literalPercentSignsAreNotMacros() throws {
        let yaml = config(destination: "  - {id: 7, name: px, kind: url, url: 'https://px.example/a%20b?s=%alias%', mappings: []}")
        #expect(try RelayConfig.parse(yaml: yaml, environment: [:]).urlDestinations.first?.settings.url == "https://px.example/a%20b?s=%alias%")
    }

    @Test func redirectKeyNeededOnlyForRedirectAudit() throws {
        let none = config(destination: "  - {id: 7, name: px, kind: url, url: 'https://p/?s=%alias%', mappings: []}")
        #expect(throws: Never.self) { try RelayConfig.parse(yaml: none, environment: [:]) }
        let redirect = config(destination: "  - {id: 7, name: px, kind: url, url: 'https://p/?s=%alias%', audit: redirect, mappings: []}")
        #expect(
            problems(redirect)
                == ["edge.redirect_key_env: environment variable RELAY_REDIRECT_KEY is not set (needed by destinations with audit: redirect)"])
        let custom = "edge: {redirect_key_env: MY_KEY}\n" + redirect
        #expect(
            problems(custom)
                == ["edge.redirect_key_env: environment variable MY_KEY is not set (needed by destinations with audit: redirect)"])
        #expect(throws: Never.self) { try RelayConfig.parse(yaml: custom, environment: ["MY_KEY": "k"]) }
    }

    @Test func cookieRules() {
        func cookie(_ fields: String, mappings: String = "[]") -> String {
            config(destination: "  - {id: 8, name: ck, kind: cookie, \(fields), mappings: \(mappings)}")
        }
        #expect(problems(cookie("key: k")) == ["destinations[0].cookie_name: required"])
        #expect(problems(cookie("cookie_name: c")) == ["destinations[0].key: required for format single_key"])
        #expect(problems(cookie("cookie_name: c, format: serialized")) == ["destinations[0].key: required for format serialized"])
        #expect(
            problems(cookie("cookie_name: 'a b', key: k, format: json, max_bytes: 0, ttl_days: -1, domain: 'bad domain', set_cookie: 2"))
                == [
                    "destinations[0].cookie_name: not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)",
                    #"destinations[0].format: unknown format "json" (single_key, key_value, serialized)"#,
                    "destinations[0].max_bytes: must be >= 1",
                    "destinations[0].ttl_days: must be >= 0",
                    "destinations[0].domain: not a valid cookie domain, e.g. .publisher.example",
                    "destinations[0].set_cookie: must be true or false",
                ])
        #expect(
            problems(cookie("cookie_name: c, format: key_value", mappings: "[{segment: 1}, {segment: 2, alias: 'a=b'}, {segment: 3, alias: '=b'}]"))
                == [
                    "destinations[0].mappings[0].alias: required: must be written key=value for format key_value",
                    "destinations[0].mappings[2].alias: must be written key=value for format key_value",
                ])
        #expect(
            problems(cookie("cookie_name: c, key: k, format: serialized", mappings: "[{segment: 1, alias: 'a|b'}, {segment: 2, alias: 'a,b'}]"))
                == [
                    #"destinations[0].mappings[0].alias: must not contain the value separator "|""#,
                    #"destinations[0].mappings[1].alias: must not contain the pair separator ",""#,
                ])
    }

    @Test func mappingRules() {
        let yaml = realtime(
            mappings: """
                [{segment: 0}, {alias: x}, {segment: 5, start: 2026-13-01}, {segment: 6, start: 2026-06-02, end: 2026-06-01}, {segment: 7, alias: ''}, {segment: 8, until: 2026-01-01}, 42, {segment: 9, end: '2026-02-29'}, {segment: 10}, {segment: 10}]
                """)
        #expect(
            problems(yaml) == [
                "destinations[0].mappings[0].segment: must be >= 1",
                "destinations[0].mappings[1].segment: required",
                "destinations[0].mappings[2].start: must be a date written YYYY-MM-DD",
                "destinations[0].mappings[3].end: before start",
                "destinations[0].mappings[4].alias: must not be empty",
                "destinations[0].mappings[5].until: unknown key",
                "destinations[0].mappings[6]: must be a mapping",
                "destinations[0].mappings[7].end: must be a date written YYYY-MM-DD",
                "destinations[0].mappings[9]: same mapping as mappings[8]",
            ])
    }

    @Test func sameSegmentWithDifferentAliasesIsFine() throws {
        let yaml = realtime(mappings: "[{segment: 1, alias: a}, {segment: 1, alias: b}, {segment: 1, alias: a, start: 2030-01-01}]")
        #expect(try RelayConfig.parse(yaml: yaml, environment: [:]).destinations.first?.mappings.count == 3)
    }

    @Test func everyProblemIsReportedInFileOrder() {
        let yaml = """
            kafka:
              topics: {qualifications: 'a b'}
            pixel_audit: {grace: soon}
            destinations:
              - id: 5001
                name: a
                kind: realtime
                url: https://p.example/x
                client_id: c
                urll: x
                retry: {max_attempts: 0}
                mappings: [{segment: 1}]
              - id: 5001
                name: b
                kind: batch
                output: {type: dir, path: o}
                mappings: [{segment: 2, end: 2026-01-01, start: 2026-02-01}]
              - id: 3
                name: c
                kind: url
                url: 'ftp://px.example/%alias%'
                mappings: []
              - id: 4
                name: d
                kind: foo
                mappings: []
            """
        #expect(
            problems(yaml) == [
                "kafka.brokers: required",
                "kafka.topics.qualifications: not a valid topic name (1-249 characters of [A-Za-z0-9._-])",
                #"pixel_audit.grace: "soon" is not a duration such as 500ms, 30s, 10m or 24h"#,
                "destinations[0].urll: unknown key",
                "destinations[0].retry.max_attempts: must be >= 1",
                "destinations[1].id: duplicate id 5001 (also destinations[0])",
                "destinations[1].mappings[0].end: before start",
                "destinations[2].url: not an http(s) URL",
                #"destinations[3].kind: unknown kind "foo" (realtime, batch, url, cookie)"#,
            ])
    }

    @Test func errorDescriptionIsOneProblemPerLine() {
        let error = ConfigError(problems: [
            ConfigProblem(path: "destinations[2].url", message: "not an http(s) URL"),
            ConfigProblem(path: "kafka.brokers", message: "required"),
        ])
        #expect(error.description == "destinations[2].url: not an http(s) URL\nkafka.brokers: required")
        #expect(ConfigProblem(path: "", message: "invalid YAML").description == "invalid YAML")
    }
}

@Suite("Configuration: files and YAML")
struct ConfigFileTests {
    @Test func missingFile() {
        #expect(throws: ConfigError(problems: [ConfigProblem(path: "/nonexistent/relay.yaml", message: "no such file")])) {
            try RelayConfig.load(path: "/nonexistent/relay.yaml", environment: [:])
        }
    }

    @Test func directory() {
        let path = FileManager.default.temporaryDirectory.path
        #expect(throws: ConfigError(problems: [ConfigProblem(path: path, message: "is a directory, not a file")])) {
            try RelayConfig.load(path: path, environment: [:])
        }
    }

    @Test func invalidYAML() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID()).yaml").path
        try "kafka:\n  brokers: [a:1\nedge: {listen: x\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try RelayConfig.load(path: path, environment: [:])
            Issue.record("accepted")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems[0].path == path)
            #expect(error.problems[0].message.hasPrefix("invalid YAML at line "))
        }
    }

    @Test func invalidYAMLNeverQuotesTheText() {
        let text = "kafka: {brokers: a:1}\nedge:\n  redirect_key: \"hunter2-super-secret\n"
        let report = problems(text).joined(separator: "\n")
        #expect(report.hasPrefix("invalid YAML at line"))
        #expect(!report.contains("hunter2"))
    }

    @Test func rootMustBeAMapping() {
        #expect(problems("- a\n- b\n") == ["must be a YAML mapping (kafka, edge, pixel_audit, destinations)"])
    }

    @Test func validFileFromDisk() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID()).yaml").path
        try "kafka: {brokers: 'a:1'}\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try RelayConfig.load(path: path, environment: [:]).kafka.brokers == ["a:1"])
    }
}

@Suite("Configuration: Kafka secret properties")
struct KafkaSecretPropertyTests {
    @Test func eachProblemOnce() {
        let yaml = """
            kafka:
              brokers: a:1
              properties:
                sasl.password: inline
                sasl.password_env: PW
                sasl.password_file: /pw
                ssl.key.password_env: KEYPW
            """
        #expect(
            problems(yaml, checkSecrets: false) == [
                "kafka.properties.sasl.password: secrets are never written in the file: use sasl.password_env or sasl.password_file",
                "kafka.properties.sasl.password_file: use sasl.password_env or sasl.password_file, not both",
            ])
    }
}
