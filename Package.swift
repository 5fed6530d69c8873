// swift-tools-version:6.1
// M2MRSP — GSMA SGP.02 M2M eSIM Remote SIM Provisioning platform.
// Module shape and dependency rules: docs/architecture.md (from ARCHITECTURE.md).
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "M2MRSP",
    products: [
        .executable(name: "m2mrsp", targets: ["m2mrsp"]),
        .library(name: "M2MCore", targets: ["M2MCore"]),
        .library(name: "M2MXML", targets: ["M2MXML"]),
        .library(name: "M2MSOAP", targets: ["M2MSOAP"]),
        .library(name: "M2MTestKit", targets: ["M2MTestKit"]),
        .library(name: "M2MPolicy", targets: ["M2MPolicy"]),
        .library(name: "M2MCrypto", targets: ["M2MCrypto"]),
        .library(name: "M2MWire", targets: ["M2MWire"]),
        .library(name: "M2MRoles", targets: ["M2MRoles"]),
        .library(name: "M2MEmulator", targets: ["M2MEmulator"]),
        .library(name: "M2MTransport", targets: ["M2MTransport"]),
        .library(name: "M2MStorage", targets: ["M2MStorage"]),
        .library(name: "M2MTrace", targets: ["M2MTrace"]),
        .library(name: "M2MServer", targets: ["M2MServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // System libraries (Debian: liblua5.4-dev, libssl-dev, libsqlite3-dev; scripts/bootstrap.sh).
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .target(name: "CLuaShims", dependencies: ["CLua"]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // Domain and wire formats.
        .target(name: "M2MCore", swiftSettings: strict),
        .target(name: "M2MXML", swiftSettings: strict),
        .target(name: "M2MWire", dependencies: ["M2MCore"], swiftSettings: strict),
        .target(name: "M2MSOAP", dependencies: ["M2MCore", "M2MXML"], swiftSettings: strict),

        // Crypto on the system OpenSSL 3 (P-256 and brainpoolP256r1, AES, CMAC, X9.63, secure channels).
        .target(name: "M2MCrypto", dependencies: ["M2MCore", "M2MWire", "COpenSSL"], swiftSettings: strict),

        // SQLite store behind repository protocols (SM-SR state, outbox, decisions, idempotency).
        .target(name: "M2MStorage", dependencies: ["M2MCore", "CSQLite"], swiftSettings: strict),

        // Lua 5.4 policy engine: sandboxed operator plugins and policy bundles.
        .target(name: "M2MPolicy", dependencies: ["M2MCore", "CLuaShims"], swiftSettings: strict),

        // ES5 transport vocabulary shared by the SM-SR and the emulator: EUICCTransport, ScriptTarget,
        // SCP80Peer, the loopback UDP framing, TCP sockets, the SCP81 admin server's end.
        .target(name: "M2MTransport", dependencies: ["M2MCore", "M2MWire", "M2MCrypto"], swiftSettings: strict),

        // The eUICC emulator: meets the platform only through bytes (never imports Roles, Storage, Server).
        .target(name: "M2MEmulator", dependencies: ["M2MCore", "M2MWire", "M2MCrypto", "M2MTransport"], swiftSettings: strict),

        // `m2mrsp trace`: captured ES5/ES8 traffic decoded and verified with the user's keys (docs/trace.md).
        .target(name: "M2MTrace", dependencies: ["M2MCore", "M2MWire", "M2MCrypto"], swiftSettings: strict),

        // Role logic (SM-SR, SM-DP, EUM, MNO): the EIS signature, the SM-SR.
        .target(
            name: "M2MRoles",
            dependencies: ["M2MCore", "M2MWire", "M2MXML", "M2MSOAP", "M2MCrypto", "M2MStorage", "M2MPolicy", "M2MTransport"],
            swiftSettings: strict),

        // The off-card interfaces on the network: SOAP 1.2 over HTTPS with mutual TLS (SwiftNIO + NIOSSL), the
        // outgoing client (AsyncHTTPClient), the roles' services, callbacks and notification delivery.
        .target(
            name: "M2MServer",
            dependencies: [
                "M2MCore", "M2MXML", "M2MSOAP", "M2MCrypto", "M2MStorage", "M2MRoles",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict),

        // Fixtures and sample values shipped for tests, benchmarks and integrators' own tests.
        .target(
            name: "M2MTestKit", dependencies: ["M2MCore", "M2MWire", "M2MSOAP", "M2MCrypto", "M2MRoles"], swiftSettings: strict),

        // The command-line program.
        .executableTarget(
            name: "m2mrsp",
            dependencies: [
                "M2MCore", "M2MXML", "M2MSOAP", "M2MTestKit", "M2MPolicy", "M2MCrypto", "M2MWire", "M2MRoles", "M2MEmulator", "M2MTransport", "M2MStorage", "M2MTrace", "M2MServer", "COpenSSL", "CSQLite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "SystemLibraryTests", dependencies: ["CLuaShims", "COpenSSL", "CSQLite"]),
        .testTarget(name: "M2MCoreTests", dependencies: ["M2MCore"], exclude: ["Tables"], swiftSettings: strict),
        .testTarget(name: "M2MXMLTests", dependencies: ["M2MXML"], swiftSettings: strict),
        .testTarget(name: "M2MCryptoTests", dependencies: ["M2MCrypto", "M2MWire", "M2MCore"], exclude: ["Vectors"], swiftSettings: strict),
        .testTarget(name: "M2MWireTests", dependencies: ["M2MWire", "M2MCore"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(
            name: "M2MEmulatorTests",
            dependencies: ["M2MEmulator", "M2MTransport", "M2MCrypto", "M2MWire", "M2MCore", "M2MTestKit"], swiftSettings: strict),
        .testTarget(
            name: "M2MRolesTests",
            dependencies: [
                "M2MRoles", "M2MCrypto", "M2MSOAP", "M2MCore", "M2MWire", "M2MTestKit", "M2MStorage", "M2MPolicy", "M2MTransport", "M2MEmulator", "M2MXML",
                "M2MTrace", "M2MServer", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ], swiftSettings: strict),
        .testTarget(
            name: "M2MTraceTests",
            dependencies: ["M2MTrace", "M2MEmulator", "M2MTransport", "M2MCrypto", "M2MWire", "M2MCore", "M2MTestKit"],
            exclude: ["Captures"], swiftSettings: strict),
        .testTarget(name: "M2MStorageTests", dependencies: ["M2MStorage", "M2MCore", "M2MTestKit"], swiftSettings: strict),
        .testTarget(name: "M2MPolicyTests", dependencies: ["M2MPolicy", "M2MCore", "CLuaShims"], swiftSettings: strict),
        .testTarget(
            name: "M2MSOAPTests",
            dependencies: ["M2MSOAP", "M2MCore", "M2MXML", "M2MTestKit"],
            exclude: ["Golden"],
            swiftSettings: strict
        ),
    ]
)
