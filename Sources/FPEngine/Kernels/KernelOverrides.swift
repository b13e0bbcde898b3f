import Foundation

/// The environment variables that pick a GEMM kernel, for benchmarks that compare two kernels in one
/// binary: `FPSIM_SGEMM=openblas` (OpenBLAS for every float32 product instead of fpsim's own kernel,
/// `GEMM.ownKernel`) and `FPSIM_BF16_KERNEL=dpbf16|fma` (the bf16 GEMM mode's kernel,
/// `BF16GEMM.preferredKernel`). The kernels read them here; each pair gives the same bits, so a misspelt
/// value would go unnoticed and a benchmark would time the kernel it did not mean to: the command line
/// refuses it instead (`problem(in:)`).
public enum KernelOverrides {
  static let sgemm = (name: "FPSIM_SGEMM", openBLAS: "openblas")
  static let bf16Kernel = "FPSIM_BF16_KERNEL"

  /// Each variable and the values it takes (unset or empty: the default kernel).
  public static let variables: [(name: String, values: [String])] = [
    (sgemm.name, [sgemm.openBLAS]),
    (bf16Kernel, BF16GEMM.Kernel.allCases.map(\.rawValue)),
  ]

  /// Whether `FPSIM_SGEMM=openblas` asks for OpenBLAS on every float32 product.
  static var sgemmIsOpenBLAS: Bool { ProcessInfo.processInfo.environment[sgemm.name] == sgemm.openBLAS }

  /// The bf16 kernel that `FPSIM_BF16_KERNEL` names, if it names one.
  static var bf16KernelChoice: BF16GEMM.Kernel? {
    ProcessInfo.processInfo.environment[bf16Kernel].flatMap(BF16GEMM.Kernel.init(rawValue:))
  }

  /// One line naming the first variable set to a value it does not take, and the values it does; nil
  /// when there is none.
  public static func problem(in environment: [String: String]) -> String? {
    for (name, values) in variables {
      if let value = environment[name], !value.isEmpty, !values.contains(value) {
        return "\(name)=\(value) names no kernel: set it to \(values.joined(separator: " or ")), or unset it"
      }
    }
    return nil
  }
}
