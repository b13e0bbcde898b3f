// swift-tools-version:6.0
import PackageDescription

// Release builds are tuned for the CPU that builds them (Swift's default target is baseline x86-64,
// SSE2; a quantization loop ran 4x faster with -target-cpu native). On AVX-512 CPUs LLVM's tuning prefers 256-bit vectors; turning the
// "prefer-256-bit" feature off lets the quantization loops use all 16 lanes. Debug builds stay portable.
let native: [SwiftSetting] = [
  .unsafeFlags(
    [
      "-target-cpu", "native", "-enforce-exclusivity=unchecked",
      "-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", "-prefer-256-bit",
    ], .when(configuration: .release))
]

let package = Package(
  name: "fpsim",
  products: [
    // Public modules, bottom layer first; each imports only those above it in this list.
    .library(name: "FPFormats", targets: ["FPFormats"]),
    .library(name: "FPStore", targets: ["FPStore"]),
    .library(name: "FPEngine", targets: ["FPEngine"]),
    .library(name: "FPStudy", targets: ["FPStudy"]),
    .executable(name: "fpsim", targets: ["fpsim"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
  ],
  targets: [
    // MARK: Library layers
    .target(name: "FPFormats", swiftSettings: native),
    .target(name: "FPStore", dependencies: ["CHDF5", "CZstd"], swiftSettings: native),
    .target(name: "FPEngine", dependencies: ["FPFormats", "CBLAS"], swiftSettings: native),
    .target(name: "FPStudy", dependencies: ["FPFormats", "FPEngine", "FPStore"], swiftSettings: native),
    // System libraries with shim headers (HDF5's type and property-list ids are macros that Swift cannot
    // import: the shims wrap them); hdf5_hl is linked by the module map.
    .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
    // CBLAS: cblas.h from /usr/include/x86_64-linux-gnu, which has no pkg-config entry; links libblas.
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),

    // MARK: Command line (thin: parses, builds a library value, calls it)
    .executableTarget(
      name: "fpsim",
      dependencies: [
        "FPFormats",
        "FPStore",
        "FPStudy",
        "FPEngine",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: native),

    // MARK: Tests
    .testTarget(
      name: "FPFormatsTests", dependencies: ["FPFormats"],
      resources: [.copy("Resources/vectors")], swiftSettings: native),
    .testTarget(name: "fpsimTests", dependencies: ["fpsim", "FPFormats"], swiftSettings: native),
    .testTarget(name: "FPStoreTests", dependencies: ["FPStore"], swiftSettings: native),
    .testTarget(name: "FPEngineTests", dependencies: ["FPEngine"], swiftSettings: native),
    .testTarget(name: "FPStudyTests", dependencies: ["FPStudy", "FPStore", "FPFormats"], swiftSettings: native),
  ]
)
