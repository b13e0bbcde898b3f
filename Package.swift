// swift-tools-version:6.0
import PackageDescription

// Release builds are tuned for the CPU that builds them (Swift's default target is baseline x86-64,
// SSE2; a quantization loop ran 4x faster with -target-cpu native). On AVX-512 CPUs LLVM's tuning prefers 256-bit vectors; turning the
// "prefer-256-bit" feature off lets the quantization loops use all 16 lanes. Debug builds stay portable.
//
// A native binary dies with an illegal instruction on an older CPU (a cluster's other nodes), so fpsim
// checks at start-up that the CPU has the features it was built for (CCPUFeatures) and refuses otherwise.
// For a binary that runs anywhere, two switches, read here when SwiftPM evaluates the manifest:
//   FPSIM_PORTABLE=1 swift build -c release          baseline x86-64 (SSE2), no -target-cpu
//   FPSIM_TARGET_CPU=haswell swift build -c release  a chosen LLVM CPU name (haswell: AVX2 + FMA, 2013 on)
// Give each its own --scratch-path (.build-portable), so that the native build in .build stays as it is.
// (SwiftPM evaluates the manifest again when the environment changes.)
let environment = Context.environment
let portable = environment["FPSIM_PORTABLE"].map { !$0.isEmpty && $0 != "0" } ?? false
let targetCPU: String? = portable ? nil : (environment["FPSIM_TARGET_CPU"].flatMap { $0.isEmpty ? nil : $0 } ?? "native")
let native: [SwiftSetting] = [
  .unsafeFlags(
    (targetCPU.map { ["-target-cpu", $0] } ?? []) + [
      "-enforce-exclusivity=unchecked",
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
    .target(name: "FPFormats", dependencies: ["CCPUFeatures", "CMaskCount"], swiftSettings: native),
    .target(name: "FPStore", dependencies: ["CHDF5", "CZstd"], swiftSettings: native),
    .target(
      name: "FPEngine",
      dependencies: ["FPFormats", "CBLAS", "CZlib", "CExponentCounts", "CBF16GEMM", "CSGEMM", "CCPUFeatures", "CVectorSqrt"],
      swiftSettings: native),
    .target(name: "FPStudy", dependencies: ["FPFormats", "FPEngine", "FPStore"], swiftSettings: native),
    // System libraries with shim headers (HDF5's type and property-list ids are macros that Swift cannot
    // import: the shims wrap them); hdf5_hl is linked by the module map.
    .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    // CBLAS: cblas.h from /usr/include/x86_64-linux-gnu, which has no pkg-config entry; links libblas.
    .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
    // The start-up CPU check: C compiled without -target-cpu, so it runs on the CPUs it refuses. Its
    // header also tells a Swift module which CPU features that module was compiled for (FPFormats'
    // `BuiltFor`: FPEngine's MicroGEMM takes its width from it, the block loops their form of counting).
    .target(name: "CCPUFeatures"),
    // The binade histograms' exponent counts: AVX2 byte compares chosen at run time, scalar tables
    // otherwise (C without -target-cpu, like CCPUFeatures).
    .target(name: "CExponentCounts"),
    // Lane counts of float comparisons for the block loops' telemetry (static inline: inlined into
    // FPFormats, with its target's features).
    .target(name: "CMaskCount"),
    // A 16-lane square root without errno, for the AdamW update (static inline: inlined into FPEngine).
    .target(name: "CVectorSqrt"),
    // The bfloat16 GEMM of `--gemm bf16` (AVX512-BF16, chosen at run time; C without -target-cpu).
    .target(name: "CBF16GEMM"),
    // fpsim's float32 GEMM kernel with OpenBLAS's AVX-512 sums, used in place of those calls (AVX-512,
    // chosen at run time; C without -target-cpu).
    .target(name: "CSGEMM"),

    // MARK: Command line (thin: parses, builds a library value, calls it)
    .executableTarget(
      name: "fpsim",
      dependencies: [
        "FPFormats",
        "FPStore",
        "FPStudy",
        "FPEngine",
        "CCPUFeatures",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: native),

    // The writer FPStore's crash test kills mid-unit (not part of fpsim, not installed).
    .executableTarget(
      name: "StoreCrashWriter",
      dependencies: ["FPStore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
      swiftSettings: native),

    // MARK: Tests
    .testTarget(
      name: "FPFormatsTests", dependencies: ["FPFormats"],
      resources: [.copy("Resources/vectors")], swiftSettings: native),
    .testTarget(name: "fpsimTests", dependencies: ["fpsim", "FPFormats", "CCPUFeatures"], swiftSettings: native),
    .testTarget(name: "FPStoreTests", dependencies: ["FPStore", "StoreCrashWriter"], swiftSettings: native),
    .testTarget(name: "FPEngineTests", dependencies: ["FPEngine", "CSGEMM"], swiftSettings: native),
    .testTarget(name: "FPStudyTests", dependencies: ["FPStudy", "FPStore", "FPFormats"], swiftSettings: native),
  ]
)
