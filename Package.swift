// swift-tools-version:6.0
// AudienceRelay: delivers audience segment qualifications from Kafka to targeting partners.
//
// Module layout (each library is imported by the tests):
//   CRdKafka      system library over librdkafka (module map + shim header)
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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.24.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "RelayKafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "RelayCore",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "RelayRuntime",
            dependencies: [
                "RelayKafka",
                "RelayCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "relayctl",
            dependencies: [
                "RelayRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "RelayCoreTests", dependencies: ["RelayCore"]),
        .testTarget(name: "RelayKafkaTests", dependencies: ["RelayKafka", "RelayRuntime"]),
    ]
)
