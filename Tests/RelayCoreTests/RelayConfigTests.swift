import Foundation
import Testing

@testable import RelayCore


@Suite("Configuration: the example of SPEC §3")
struct RelayConfigExampleTests {
    let config: RelayConfig

    init() throws {
        config = try RelayConfig.parse(yaml: specExampleYAML, environment: specExampleEnvironment)
    }

    @Test func kafkaEdgeAndPixelAudit() {
        #expect(config.kafka.brokers == ["127.0.0.1:9092"])
        #expect(config.kafka.bootstrapServers == "127.0.0.1:9092")
        #expect(config.kafka.topics == KafkaSettings.Topics())
        #expect(config.kafka.topics.all == ["aam.qualifications", "aam.pixel-events", "aam.pixel-audit", "aam.dead-letter"])
        #expect(config.kafka.properties.isEmpty)
        #expect(config.edge.listen == HostPort(host: "127.0.0.1", port: 8080))
        #expect(config.edge.corsOrigins.isEmpty)
        #expect(config.edge.redirectKey == .environment("RELAY_REDIRECT_KEY"))
        #expect(config.edge.snapshotDir == "./state/edge")
        #expect(config.pixelAudit.auditWindow == .minutes(10))
        #expect(config.pixelAudit.grace == .minutes(1))
        #expect(config.destinations.map(\.id) == [5001, 6001, 7001, 8001])
        #expect(config.destinations.map(\.kind.name) == ["realtime", "batch", "url", "cookie"])
    }

    @Test func realtime() throws {
        let (destination, settings) = try #require(config.realtimeDestinations.first)
        #expect(config.realtimeDestinations.count == 1)
        #expect(destination.id == 5001)
        #expect(destination.name == "acme-dsp")
        #expect(settings.url == URL(string: "https://partner.example/aam"))
        #expect(settings.clientID == "acme")
        #expect(settings.userDPID == 20915)
        #expect(settings.unsegment)
        #expect(settings.maxUsersPerMessage == 10)
        #expect(settings.flushIntervalMs == 1000)
        #expect(settings.flushInterval == .seconds(1))
        #expect(settings.timeoutMs == 3000)
        #expect(settings.maxInFlight == 4)
        #expect(settings.rateLimitPerSecond == 200)
        #expect(settings.retry == RetryPolicy(maxAttempts: 8, initialBackoffMs: 200, maxBackoffMs: 60_000))
        #expect(!settings.gzip)
        #expect(settings.signing == SigningSettings(algorithm: .sha256, header: "X-Signature", key: .environment("ACME_HMAC_KEY")))
        #expect(settings.oauth2 == nil)
        #expect(try settings.signing?.key.resolve(environment: specExampleEnvironment) == "s3cr3t-hmac")
        #expect(
            destination.mappings == [
                SegmentMapping(segment: 4532, alias: "acme-4532"),
                SegmentMapping(
                    segment: 99, alias: "acme-99", start: CalendarDate(year: 2026, month: 1, day: 1),
                    end: CalendarDate(year: 2027, month: 1, day: 1)),
            ])
    }

    @Test func batch() throws {
        let (destination, settings) = try #require(config.batchDestinations.first)
        #expect(destination.id == 6001)
        #expect(destination.name == "acme-files")
        #expect(settings.every == .hours(24))
        #expect(settings.at == TimeOfDay(hour: 14, minute: 0))
        #expect(settings.cutOffset == .hours(14))
        #expect(settings.grace == .seconds(30))
        #expect(settings.mode == .iter)
        #expect(settings.masterDPID == 20914)
        #expect(settings.pidAlias == "acme")
        #expect(settings.gzip)
        #expect(settings.maxFileBytes == 1_073_741_824)
        #expect(settings.output == .dir(path: "./outbound"))
        #expect(settings.output.syncType == "dir")
        #expect(destination.mappings == [SegmentMapping(segment: 4532), SegmentMapping(segment: 99, alias: "99")])
        #expect(destination.mappings[0].alias == "4532")
    }

    @Test func url() throws {
        let (destination, settings) = try #require(config.urlDestinations.first)
        #expect(destination.id == 7001)
        #expect(settings.url == "http://px.partner.example/sync?seg=%alias%&uid=%did%&r=%rnd%")
        #expect(settings.secureURL == "https://px.partner.example/sync?seg=%alias%&uid=%did%&r=%rnd%")
        #expect(settings.serialize == SerializeSettings(delimiter: ","))
        #expect(settings.audit == .redirect)
        #expect(settings.maxLossRate == 0.20)
        #expect(destination.mappings == [SegmentMapping(segment: 4532, alias: "p4532")])
    }

    @Test func cookie() throws {
        let (destination, settings) = try #require(config.cookieDestinations.first)
        #expect(destination.id == 8001)
        #expect(destination.name == "ad-server")
        #expect(
            settings
                == CookieSettings(
                    cookieName: "aam_seg", key: "segID", format: .singleKey, keySeparator: "=", pairSeparator: ",",
                    valueSeparator: "|", maxBytes: 2048, ttlDays: 10, domain: ".publisher.example", setCookie: false))
        #expect(destination.mappings.map(\.alias) == ["4532", "99"])
    }

    @Test func lookups() {
        #expect(config.destination(id: 7001)?.name == "px-partner")
        #expect(config.destination(id: 1) == nil)
        #expect(config.destination(id: 5001)?.realtime != nil)
        #expect(config.destination(id: 5001)?.batch == nil)
    }

    @Test func brokersFromTheEnvironment() throws {
        var environment = specExampleEnvironment
        environment["RELAY_BROKERS"] = "kafka-1:9092, kafka-2:9092"
        let config = try RelayConfig.parse(yaml: specExampleYAML, environment: environment)
        #expect(config.kafka.brokers == ["kafka-1:9092", "kafka-2:9092"])
        // And it stands in for a file without brokers.
        let bare = try RelayConfig.parse(yaml: "destinations: []\n", environment: ["RELAY_BROKERS": "k:9092"])
        #expect(bare.kafka.bootstrapServers == "k:9092")
    }

    @Test func secretsAreNeededOnlyWhenChecked() {
        #expect(
            problems(specExampleYAML) == [
                "edge.redirect_key_env: environment variable RELAY_REDIRECT_KEY is not set (needed by destinations with audit: redirect)",
                "destinations[0].signing.key_env: environment variable ACME_HMAC_KEY is not set",
            ])
        #expect(throws: Never.self) {
            try RelayConfig.parse(yaml: specExampleYAML, environment: [:], checkSecrets: false)
        }
    }

    @Test func loadsFromAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID()).yaml").path
        try specExampleYAML.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loaded = try RelayConfig.load(path: path, environment: specExampleEnvironment)
        #expect(loaded == config)
    }
}

@Suite("Configuration: defaults")
struct RelayConfigDefaultTests {
    @Test func minimalFile() throws {
        let config = try RelayConfig.parse(yaml: "kafka:\n  brokers: 127.0.0.1:9092\n", environment: [:])
        #expect(config.kafka.topics.qualifications == "aam.qualifications")
        #expect(config.kafka.topics.pixelEvents == "aam.pixel-events")
        #expect(config.kafka.topics.pixelAudit == "aam.pixel-audit")
        #expect(config.kafka.topics.deadLetter == "aam.dead-letter")
        #expect(config.edge == EdgeSettings())
        #expect(config.edge.listen.description == "127.0.0.1:8080")
        #expect(config.edge.redirectKey.description == "env:RELAY_REDIRECT_KEY")
        #expect(config.pixelAudit == PixelAuditSettings())
        #expect(config.pixelAudit.auditWindow == .minutes(10) && config.pixelAudit.grace == .minutes(1))
        #expect(config.destinations.isEmpty)
    }

    @Test func brokerLists() throws {
        let list = try RelayConfig.parse(yaml: "kafka: {brokers: [a:9092, b:9092]}", environment: [:])
        #expect(list.kafka.brokers == ["a:9092", "b:9092"])
        let commas = try RelayConfig.parse(yaml: "kafka: {brokers: 'a:9092,b:9092'}", environment: [:])
        #expect(commas.kafka.brokers == ["a:9092", "b:9092"])
    }

    @Test func realtime() throws {
        let yaml = config(destination: """
              - {id: 1, name: rt, kind: realtime, url: "http://p.example/x", client_id: c, mappings: []}
            """)
        let settings = try #require(try RelayConfig.parse(yaml: yaml, environment: [:]).realtimeDestinations.first?.settings)
        #expect(settings == RealtimeSettings(url: URL(string: "http://p.example/x")!, clientID: "c"))
        #expect(settings.userDPID == 0 && !settings.unsegment && settings.maxUsersPerMessage == 10)
        #expect(settings.flushIntervalMs == 1000 && settings.timeoutMs == 3000 && settings.maxInFlight == 4)
        #expect(settings.rateLimitPerSecond == nil && !settings.gzip && settings.signing == nil && settings.oauth2 == nil)
        #expect(settings.retry == RetryPolicy(maxAttempts: 8, initialBackoffMs: 200, maxBackoffMs: 60_000))
    }

    @Test func signingAndOAuth2Defaults() throws {
        let signing = config(destination: """
              - id: 1
                name: rt
                kind: realtime
                url: https://p.example/x
                client_id: c
                signing: {key_file: /run/secrets/k}
                mappings: []
            """)
        let settings = try #require(
            try RelayConfig.parse(yaml: signing, environment: [:], checkSecrets: false).destinations.first?.realtime)
        #expect(settings.signing == SigningSettings(algorithm: .sha256, header: "X-Signature", key: .file("/run/secrets/k")))
        let oauth = config(destination: """
              - id: 1
                name: rt
                kind: realtime
                url: https://p.example/x
                client_id: c
                oauth2: {token_url: https://p.example/token, client_id_env: CID, client_secret_file: ./secret}
                mappings: []
            """)
        let oauthSettings = try #require(
            try RelayConfig.parse(yaml: oauth, environment: [:], checkSecrets: false).destinations.first?.realtime)
        #expect(
            oauthSettings.oauth2
                == OAuth2Settings(
                    tokenURL: URL(string: "https://p.example/token")!, clientID: .environment("CID"),
                    clientSecret: .file("./secret")))
    }

    @Test func batch() throws {
        let yaml = config(destination: """
              - {id: 2, name: files, kind: batch, output: {type: dir, path: /tmp/out}, mappings: [{segment: 1}]}
            """)
        let settings = try #require(try RelayConfig.parse(yaml: yaml, environment: [:]).batchDestinations.first?.settings)
        #expect(settings.every == .hours(24))
        #expect(settings.at == nil && settings.cutOffset == .zero)
        #expect(settings.grace == .seconds(30))
        #expect(settings.mode == .iter)
        #expect(settings.masterDPID == 0)
        #expect(settings.pidAlias == "files", "defaults to the name")
        #expect(settings.gzip)
        #expect(settings.maxFileBytes == 1_073_741_824)
    }

    @Test func batchOutputs() throws {
        let s3 = config(destination: """
              - id: 2
                name: files
                kind: batch
                mode: full
                every: 6h
                at: "14:30"
                output: {type: s3, bucket: b, access_key_env: AK, secret_key_file: /run/sk}
                mappings: []
            """)
        let settings = try #require(
            try RelayConfig.parse(yaml: s3, environment: [:], checkSecrets: false).batchDestinations.first?.settings)
        #expect(settings.mode == .full)
        #expect(settings.cutOffset == .minutes(150), "14:30 modulo 6h")
        let expected = S3Output(bucket: "b", accessKey: .environment("AK"), secretKey: .file("/run/sk"))
        #expect(settings.output == .s3(expected))
        #expect(expected.prefix == "" && expected.region == "us-east-1" && expected.endpoint == nil)
        #expect(expected.effectiveEndpoint.absoluteString == "https://s3.us-east-1.amazonaws.com")
        #expect(settings.output.syncType == "s3")

        let full = config(destination: """
              - id: 2
                name: files
                kind: batch
                output: {type: s3, bucket: b, prefix: aam/, endpoint: http://127.0.0.1:5000, region: eu-west-1,
                         access_key_env: AK, secret_key_env: SK}
                mappings: []
            """)
        let fullSettings = try #require(
            try RelayConfig.parse(yaml: full, environment: ["AK": "a", "SK": "s"]).batchDestinations.first?.settings)
        #expect(
            fullSettings.output
                == .s3(
                    S3Output(
                        bucket: "b", prefix: "aam/", endpoint: URL(string: "http://127.0.0.1:5000"), region: "eu-west-1",
                        accessKey: .environment("AK"), secretKey: .environment("SK"))))

        let http = config(destination: """
              - {id: 2, name: files, kind: batch, output: {type: http, url: "https://p.example/upload"}, mappings: []}
            """)
        let httpSettings = try #require(try RelayConfig.parse(yaml: http, environment: [:]).batchDestinations.first?.settings)
        #expect(httpSettings.output == .http(url: URL(string: "https://p.example/upload")!))
        #expect(httpSettings.output.syncType == "http")
    }

    @Test func url() throws {
        let yaml = config(destination: """
              - {id: 3, name: px, kind: url, url: "https://px.example/?s=%alias%", mappings: [{segment: 5}]}
            """)
        let settings = try #require(try RelayConfig.parse(yaml: yaml, environment: [:]).urlDestinations.first?.settings)
        #expect(settings.secureURL == settings.url)
        #expect(settings.serialize == nil)
        #expect(settings.audit == .none)
        #expect(settings.maxLossRate == 0.20)
        let serialized = config(destination: """
              - {id: 3, name: px, kind: url, url: "https://px.example/?s=%alias%&d=%dpid_20915%&p=%http_proto%&t=%timestamp%&g=%region%", serialize: {}, mappings: []}
            """)
        let serializedSettings = try #require(
            try RelayConfig.parse(yaml: serialized, environment: [:]).urlDestinations.first?.settings)
        #expect(serializedSettings.serialize == SerializeSettings(delimiter: ","))
    }

    @Test func cookie() throws {
        let yaml = config(destination: """
              - {id: 4, name: ck, kind: cookie, cookie_name: seg, key: k, mappings: [{segment: 1}]}
            """)
        let settings = try #require(try RelayConfig.parse(yaml: yaml, environment: [:]).cookieDestinations.first?.settings)
        #expect(settings == CookieSettings(cookieName: "seg", key: "k"))
        #expect(settings.format == .singleKey && settings.keySeparator == "=" && settings.pairSeparator == ",")
        #expect(settings.valueSeparator == "|" && settings.maxBytes == 2048 && settings.ttlDays == 30)
        #expect(settings.domain == nil && !settings.setCookie)
        let keyValue = config(destination: """
              - {id: 4, name: ck, kind: cookie, cookie_name: seg, format: key_value, mappings: [{segment: 1, alias: "age=30"}]}
            """)
        let keyValueSettings = try #require(
            try RelayConfig.parse(yaml: keyValue, environment: [:]).cookieDestinations.first?.settings)
        #expect(keyValueSettings.key == nil && keyValueSettings.format == .keyValue)
    }

    @Test func yamlSpellings() throws {
        // Unquoted times and numbers with separators are read as written; quoted aliases stay text.
        let yaml = config(destination: """
              - id: 2
                name: files
                kind: batch
                at: 14:00
                max_file_bytes: 1_000_000
                gzip: False
                output: {type: dir, path: out}
                mappings:
                  - segment: 7
                    alias: '007'
                    start: "2026-02-28"
            """)
        let destination = try #require(try RelayConfig.parse(yaml: yaml, environment: [:]).destinations.first)
        #expect(destination.batch?.at == TimeOfDay(hour: 14, minute: 0))
        #expect(destination.batch?.maxFileBytes == 1_000_000)
        #expect(destination.batch?.gzip == false)
        #expect(destination.mappings == [SegmentMapping(segment: 7, alias: "007", start: CalendarDate("2026-02-28"))])
    }

    @Test func nullMeansLeftOut() throws {
        let yaml = config(destination: """
              - id: 1
                name: rt
                kind: realtime
                url: https://p.example/x
                client_id: c
                rate_limit_per_second: ~
                signing:
                mappings: []
            """)
        let settings = try #require(try RelayConfig.parse(yaml: yaml, environment: [:]).destinations.first?.realtime)
        #expect(settings.rateLimitPerSecond == nil && settings.signing == nil)
    }
}
