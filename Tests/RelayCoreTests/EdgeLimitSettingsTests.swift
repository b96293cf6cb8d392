import Testing

@testable import RelayCore

@Suite("edge limits and the receipts credential in relay.yaml")
struct EdgeLimitSettingsTests {
    static let destination = """
        destinations:
          - {id: 7001, name: px, kind: url, url: "http://px.example/s?a=%alias%", receipts_token_env: PX_TOKEN,
             mappings: [{segment: 1}]}
        """

    @Test("defaults: 10,000 connections, 60 s idle time-out, no receipts credential")
    func defaults() throws {
        let config = try RelayConfig.parse(yaml: """
            kafka: {brokers: 'a:1'}
            destinations:
              - {id: 7001, name: px, kind: url, url: "http://px.example/s?a=%alias%", mappings: [{segment: 1}]}
            """, environment: [:])
        #expect(config.edge.maxConnections == 10_000)
        #expect(config.edge.idleTimeout == .seconds(60))
        #expect(config.destinations[0].url?.receiptsToken == nil)
    }

    @Test("set: max_connections, idle_timeout, receipts_token_env / _file")
    func set() throws {
        let config = try RelayConfig.parse(
            yaml: "kafka: {brokers: 'a:1'}\nedge: {max_connections: 500, idle_timeout: 15s}\n" + Self.destination,
            environment: ["PX_TOKEN": "t"])
        #expect(config.edge.maxConnections == 500)
        #expect(config.edge.idleTimeout == .seconds(15))
        #expect(config.destinations[0].url?.receiptsToken == .environment("PX_TOKEN"))
    }

    @Test("refused: zero or negative limits, a bare number, a literal token, an unset variable")
    func refused() {
        #expect(problems("kafka: {brokers: 'a:1'}\nedge: {max_connections: 0, idle_timeout: 0s}") == [
            "edge.max_connections: must be >= 1",
            "edge.idle_timeout: must be longer than 0",
        ])
        #expect(problems("kafka: {brokers: 'a:1'}\nedge: {idle_timeout: 60}").count == 1)
        #expect(problems("kafka: {brokers: 'a:1'}\n" + Self.destination, environment: [:]) == [
            "destinations[0].receipts_token_env: environment variable PX_TOKEN is not set",
        ])
        let literal = Self.destination.replacingOccurrences(of: "receipts_token_env: PX_TOKEN", with: "receipts_token: s3cret")
        let found = problems("kafka: {brokers: 'a:1'}\n" + literal)
        #expect(found == ["destinations[0].receipts_token: secrets are never written in the file: use receipts_token_env or receipts_token_file"])
        #expect(!found.joined().contains("s3cret"))
    }
}
