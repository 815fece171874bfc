// swift-tools-version:6.1
import PackageDescription

/// Our own modules stay unoptimized in a debug build whatever `-Xswiftc` says. The tests' build
/// (`scripts/test.sh`, `TEST_BUILD_FLAGS` in `scripts/lib.sh`) passes `-Xswiftc -O`, which
/// SwiftPM gives every module it compiles: so the dependencies (NIO, NIOSSL, HTTP/2, gRPC,
/// protobuf), where a test's node spends most of its CPU, run optimized, compiled once, while
/// ours, compiled on every change, compile fast. `-Xfrontend` options come last on the
/// compiler's command line, after the `-O` of `-Xswiftc`, and the last one counts.
let unoptimized: SwiftSetting = .unsafeFlags(["-Xfrontend", "-Onone"], .when(configuration: .debug))

/// Every Chorus target builds in Swift 6 language mode with strict concurrency.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    unoptimized,
]

/// Raft and its simulator in debug builds: the test-only switches (`CHORUS_TESTING`), and
/// optimized code (see the Raft target), after `unoptimized` in `strict`.
let simulated: [SwiftSetting] = [
    .define("CHORUS_TESTING", .when(configuration: .debug)),
    .unsafeFlags(["-O", "-Xfrontend", "-O"], .when(configuration: .debug)),
]

/// What both tool binaries (`chorus-tools`, `chorus-lab`) build on.
let toolDependencies: [Target.Dependency] = [
    "CLMDB", "ClusterPKI", "CrashPoints", "Launcher", "LMDB", "LogStore", "Node", "Projections", "Raft", "Replica", "Client", "NIOExecutor", "ToolSupport",
    .product(name: "ArgumentParser", package: "swift-argument-parser"),
    .product(name: "SwiftProtobuf", package: "swift-protobuf"),
    .product(name: "GRPCCore", package: "grpc-swift-2"),
    .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
    .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
]

let package = Package(
    name: "Chorus",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "chorus-node", targets: ["ChorusNode"]),
        .executable(name: "chorus", targets: ["ChorusCLI"]),
        .executable(name: "chorus-tools", targets: ["ChorusTools"]),
        .executable(name: "chorus-lab", targets: ["ChorusLab"]),
        .executable(name: "chorus-fuzz", targets: ["ChorusFuzz"]),
        .executable(name: "chorus-web", targets: ["ChorusWeb"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "LogStore", targets: ["LogStore"]),
        .library(name: "Projections", targets: ["Projections"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // The web gateway. Hummingbird's default traits (swift-configuration, full Foundation)
        // are not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        // Metrics: the API, and the Prometheus registry behind it.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // MARK: Storage
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        /// LMDB in Swift (environment, transactions, cursors, errors, a growing map) and the
        /// durable-file helpers every store shares: directory lock, fsynced writes and renames,
        /// checksums, big-endian keys, crash points for tests.
        .target(
            name: "LMDB",
            dependencies: ["CLMDB"],
            swiftSettings: strict
        ),
        /// Named places where a test build can kill the process (`CHORUS_CRASH_AT`).
        .target(name: "CrashPoints", swiftSettings: strict),
        /// The Raft log, hard state and snapshot record, fsynced, in one LMDB environment.
        .target(
            name: "LogStore",
            dependencies: ["LMDB"],
            swiftSettings: strict
        ),

        /// The replica loop: Raft's core driven with a log, a state machine, a transport and a
        /// clock that it is handed, and the callers waiting on it. Knows no chat and no LMDB.
        .target(
            name: "Replica",
            dependencies: [
                "CrashPoints", "Mailbox", "Raft",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),

        // MARK: State machine
        .target(
            name: "Projections",
            dependencies: [
                "CrashPoints", "LMDB", "Replica",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        // MARK: Consensus (pure: standard library only)
        /// Raft's planted bugs (`PlantedBug`) exist only where `CHORUS_TESTING` is defined: in
        /// debug builds, which the tests use, and never in a release binary.
        ///
        /// The core and its simulator are compiled optimized in debug builds too: the
        /// simulations run hundreds of thousands of simulated seconds per test run, and run them
        /// several times faster so. Nothing in either depends on `assert` (which -O drops), and
        /// the test-only switches stay (they follow `CHORUS_TESTING`, not the optimization).
        .target(name: "Raft", swiftSettings: strict + simulated),

        // MARK: Network
        /// Generated messages and stubs of the client and peer APIs (see Protos/).
        .target(
            name: "API",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6), unoptimized]
        ),
        /// Swift tasks on a NIO event loop: the node and the load generator run their gRPC
        /// traffic and the tasks that handle it on one thread.
        .target(
            name: "NIOExecutor",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        /// A gRPC server transport that serves each HTTP/2 stream in its connection's pipeline,
        /// for the client API: GRPCServer's services on it, without a child channel per call.
        .target(
            name: "InlineGRPC",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strict
        ),
        /// Token buckets per source address, bounded in the sources they remember.
        .target(name: "RateLimit", swiftSettings: strict),
        /// The one bounded hand-off between threads: batches, a policy at the bound, wake-ups
        /// only for a consumer that waits (a task or a thread).
        .target(name: "Mailbox", swiftSettings: strict),
        .target(
            name: "Node",
            dependencies: [
                "API", "ClusterPKI", "CrashPoints", "InlineGRPC", "LMDB", "LogStore", "Mailbox", "Projections", "Raft", "RateLimit", "Replica",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                "NIOExecutor",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict
        ),
        /// Starting `chorus-node` processes: command lines, processes and their logs, and the
        /// quick-start `local-cluster`; for the node's executable, the tools and the tests.
        .target(
            // What `chorus-node run` parses and what its exit status says: shared by the
            // binary and by tests that run nodes in their own process.
            name: "NodeCommandLine",
            dependencies: [
                "ClusterPKI", "LogStore", "Node", "Projections", "Replica",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Launcher",
            dependencies: [
                "API", "ClusterPKI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Client",
            dependencies: [
                "API", "ClusterPKI", "Mailbox",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            swiftSettings: strict
        ),

        /// The browser's way in: a JSON + WebSocket API over the client library, and the page.
        .target(
            name: "WebGateway",
            dependencies: [
                "Client", "ClusterPKI", "RateLimit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            resources: [.copy("Public")],
            swiftSettings: strict
        ),

        /// The cluster's certificates: who a certificate speaks for, and issuing them.
        .target(
            name: "ClusterPKI",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
            ],
            swiftSettings: strict
        ),

        // MARK: Executables
        .executableTarget(
            name: "ChorusNode",
            dependencies: [
                "Launcher", "NodeCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ChorusCLI",
            dependencies: [
                "Client", "ClusterPKI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ChorusWeb",
            dependencies: [
                "Client", "ClusterPKI", "WebGateway",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        /// What both tool binaries share: how they start, running commands, the binaries built
        /// beside them, a progress bar, the error a tool exits with.
        .target(
            name: "ToolSupport",
            dependencies: [
                "Launcher",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "tools/ToolSupport",
            swiftSettings: strict
        ),
        /// `chorus-tools`: the operator's tools (status, certs, dump, replay, compact, verify,
        /// snapshot, member, transfer-leader, backup, restore, recover).
        .executableTarget(
            name: "ChorusTools",
            dependencies: toolDependencies + [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "tools/ChorusTools",
            swiftSettings: strict
        ),
        /// `chorus-lab`: benchmarks (bench, compare, failover-probe, bench-catchup, bench-log),
        /// the fault-injection suite (chaos) and test helpers (synth-log, log-writer).
        .executableTarget(
            name: "ChorusLab",
            dependencies: toolDependencies + [
                "API", "InlineGRPC",
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "tools/ChorusLab",
            swiftSettings: strict
        ),

        /// The fuzz targets (`scripts/fuzz.sh` builds them for libFuzzer).
        .executableTarget(
            name: "ChorusFuzz",
            dependencies: [
                "API", "LMDB", "Node", "Projections", "Raft",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "tools/ChorusFuzz",
            swiftSettings: strict
        ),

        // MARK: Tests
        .testTarget(name: "LMDBTests", dependencies: ["LMDB"], swiftSettings: strict),
        .testTarget(name: "LogStoreTests", dependencies: ["LogStore", "LMDB"], swiftSettings: strict),
        .testTarget(name: "ProjectionsTests", dependencies: ["Projections", "LMDB", "Raft", "Replica"], swiftSettings: strict),
        .testTarget(name: "RaftTests", dependencies: ["Raft"], swiftSettings: strict + simulated),
        .testTarget(name: "MailboxTests", dependencies: ["Mailbox"], swiftSettings: strict),
        .testTarget(
            name: "InlineGRPCTests",
            dependencies: [
                "InlineGRPC",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ToolsTests", dependencies: ["ChorusTools", "LMDB", "LogStore", "Projections"], swiftSettings: strict),
        .testTarget(name: "LabTests", dependencies: ["ChorusLab"], swiftSettings: strict),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "API", "Client", "ClusterPKI", "Launcher", "LMDB", "LogStore", "Node", "NodeCommandLine", "NIOExecutor", "Projections", "Raft", "RateLimit", "Replica", "WebGateway",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
