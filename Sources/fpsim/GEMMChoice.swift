import ArgumentParser

/// `--gemm`: the kernel of the linear layers' GEMMs (`TrainingConfig.bf16GEMMs`).
enum GEMMChoice: String, ExpressibleByArgument, CaseIterable {
  case sgemm, bf16
}
