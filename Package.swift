// swift-tools-version:6.0
// AudienceRelay: delivers audience segment qualifications from Kafka to targeting partners.
//
// Module layout (each library is imported by the tests):
//   RelayEncoding bytes in and out, no dependencies: the strict JSON scanner and the JSON writer, ISO-8601, hex,
//                 base64url, percent-encoding, the binary record codec, atomic files, blocking work off the pool
//   CRdKafka      system library over librdkafka (module map + shim header)
//   CCurl         system library over libcurl, for SFTP uploads
//   RelayKafka    the only code that touches the C API: producer, consumer, admin
//   RelayCore     the domain: qualification events, configuration, destinations, mappings
//   RelayRuntime  what every worker shares: consume -> process -> commit loop, dead letters,
//                 metrics and health endpoints, logging, lifecycle
//   Relay<Worker> one library per integration; the executables are thin wrappers over them
import PackageDescription

let package = Package(
    name: "AudienceRelay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "relayctl", targets: ["relayctl"]),
        .executable(name: "relay-check", targets: ["relay-check"]),
        .executable(name: "relay-realtime", targets: ["relay-realtime"]),
        .executable(name: "relay-batch", targets: ["relay-batch"]),
        .executable(name: "relay-edge", targets: ["relay-edge"]),
        .executable(name: "relay-pixel-audit", targets: ["relay-pixel-audit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.24.0"),
        // Already in the graph through the packages above; named because the modules import them directly.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.70.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "RelayEncoding"),
        // libcurl for SFTP uploads (Debian's is built with libssh2, and checks host keys against known_hosts).
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .target(
            name: "RelayKafka",
            dependencies: [
                "CRdKafka",
                "RelayEncoding",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "RelayCore",
            dependencies: [
                "RelayEncoding",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "RelayRuntime",
            dependencies: [
                "RelayKafka",
                "RelayCore",
                "CZlib",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // One library per integration (tests import them), one thin executable each.
        .target(
            name: "RelayRealtime",
            dependencies: [
                "RelayRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "RelayBatch",
            dependencies: [
                "RelayRuntime",
                "CCurl",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "RelayEdge",
            dependencies: [
                "RelayRuntime",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .target(
            name: "RelayPixelAudit",
            dependencies: [
                "RelayRuntime",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(name: "relay-realtime", dependencies: ["RelayRealtime", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "relay-batch", dependencies: ["RelayBatch", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "relay-edge",
            dependencies: [
                "RelayEdge", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "relay-pixel-audit", dependencies: ["RelayPixelAudit", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "relayctl",
            dependencies: [
                "RelayRuntime",
                "RelayRealtime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "relay-check",
            dependencies: [
                "RelayRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "RelayEncodingTests", dependencies: ["RelayEncoding"]),
        .testTarget(
            name: "RelayCoreTests",
            dependencies: ["RelayCore", "RelayEncoding", .product(name: "Crypto", package: "swift-crypto")]),
        // Shared by the integration tests: the broker, worker processes, temporary configs.
        .target(
            name: "RelayTestSupport",
            dependencies: [
                "RelayRuntime", "RelayKafka", "RelayCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Tests/RelayTestSupport"
        ),
        .testTarget(name: "RelayRuntimeTests", dependencies: ["RelayRuntime", "RelayEncoding", "RelayTestSupport"]),
        .testTarget(name: "RelayRealtimeTests", dependencies: ["RelayRealtime", "RelayTestSupport"]),
        .testTarget(name: "RelayBatchTests", dependencies: ["RelayBatch", "RelayTestSupport"]),
        .testTarget(
            name: "RelayEdgeTests",
            dependencies: ["RelayEdge", "RelayTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "RelayPixelAuditTests", dependencies: ["RelayPixelAudit", "RelayTestSupport"]),
        .testTarget(name: "RelayKafkaTests", dependencies: ["RelayKafka", "RelayTestSupport"]),
    ]
)
