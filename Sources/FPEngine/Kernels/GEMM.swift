import CBLAS
import CSGEMM
import FPFormats
import Foundation

/// Matrix products, row-major, through CBLAS (OpenBLAS here), with a naive reference beside it.
///
///     C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C(M,N)
///
/// op(A) is A (stored M x K, leading dimension lda >= K) or A^T (A stored K x M, lda >= M); likewise B.
/// Accumulation is float32 (OpenBLAS's own blocking order: results are deterministic, whatever the
/// thread count, but not bit-equal to the naive loop).
public enum GEMM {
  /// C = alpha op(A) op(B) + beta C on `threads` threads: the rows of C are cut into panels, each
  /// computed by a single-threaded BLAS call on the calling thread or a `WorkerPool` worker.
  ///
  /// Where OpenBLAS runs its AVX-512 kernels (SkylakeX, Cooperlake), products of alpha 1 and beta 0 or
  /// 1 go to fpsim's own kernel (`CSGEMM`) instead, which has their sums bit for bit: it reads A and B
  /// in place, where OpenBLAS copies both into packed buffers (and zeroes C for beta 0) on every call,
  /// about 14% of a two-thread gpt-tiny step (`ownKernel`, docs/benchmarks.md).
  ///
  /// Why not OpenBLAS's own threads: they spin (`sched_yield`) between calls and take the cores from
  /// the pool that runs every other kernel of a training step. With one pool for everything, the BLAS
  /// runs single-threaded (`singleThreadedBLAS`).
  ///
  /// Determinism: every element of C is the same sum in the same order whatever the panel it falls
  /// in (the BLAS blocks K the same way for every panel; `threadedGEMMHasTheBitsOfOneCall` checks the
  /// bits; the own kernel sums each element alone), so results do not depend on `threads`.
  ///
  /// `bias` (N values), when given, is added to every row of C after the product: C(i, j) + bias(j),
  /// the same additions as a pass over C afterwards, made while each panel is still in cache (and by
  /// the own kernel as it stores C).
  @inline(__always)
  public static func sgemm(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>? = nil, threads: Int = 1
  ) {
    if M == 0 || N == 0 { return }
    _ = singleThreadedBLAS
    // Panels of at least one row step, and enough work per panel (about 2^20 multiply-adds) to pay
    // for waking a worker.
    let step = rowStep
    let t = max(1, min(threads, M / step, (M * N * K) >> 20))
    let blocking = ownKernelTakes(M: M, N: N, K: K, panels: t, step: step, alpha: alpha, beta: beta) ? ownKernel : nil
    // The own kernel reads op(B) as K rows of N: a transposed B (a weight, N x K) goes to a scratch first.
    var rowsOfB = B, ldbRows = ldb, scratch: UnsafeMutablePointer<Float>? = nil
    defer { scratch?.deallocate() }
    if blocking != nil && transB {
      // Columns k0 ..< k1 of B (N x K) become rows k0 ..< k1 of the scratch (K x N), on every thread.
      nonisolated(unsafe) let B = B, s = UnsafeMutablePointer<Float>.allocate(capacity: K * N)
      WorkerPool.perform(t) { i in
        let k0 = i * K / t, k1 = (i + 1) * K / t
        Transpose.apply(B + k0, into: s + k0 * N, rows: N, cols: k1 - k0, ldIn: ldb, ldOut: N)
      }
      (scratch, rowsOfB, ldbRows) = (s, UnsafePointer(s), N)
    }
    nonisolated(unsafe) let A = A, B = B, C = C, b = rowsOfB, bias = bias
    let ldbOfRows = ldbRows
    // Rows m0 ..< m1 of C.
    let panel: @Sendable (Int, Int) -> Void = { m0, m1 in
      if let blocking {
        fpsim_sgemm_rows(
          transA ? 1 : 0, m0, m1, N, K, A, lda, b, ldbOfRows, C, ldc, beta == 1 ? 1 : 0, bias, blocking.q,
          blocking.u)
        return
      }
      // Row m0 of op(A): A + m0 * lda when A is M x K, A + m0 (a column offset) when A is K x M.
      blas(transA, transB, m1 - m0, N, K, alpha, A + (transA ? m0 : m0 * lda), lda, B, ldb, beta, C + m0 * ldc, ldc)
      if let bias { addBias(bias, toRows: m0..<m1, of: C, ldc: ldc, N: N) }
    }
    if t == 1 {
      panel(0, M)
      return
    }
    WorkerPool.perform(t) { i in
      panel(panelStart(i, of: t, rows: M, step: step), panelStart(i + 1, of: t, rows: M, step: step))
    }
  }

  /// C(i, j) += bias(j) for the given rows of C and j < N.
  @inline(__always)
  static func addBias(
    _ bias: UnsafePointer<Float>, toRows rows: Range<Int>, of C: UnsafeMutablePointer<Float>, ldc: Int, N: Int
  ) {
    for i in rows {
      let row = C + i * ldc
      for j in 0..<N { row[j] += bias[j] }
    }
  }

  /// OpenBLAS's K blocking (GEMM_Q, GEMM_UNROLL_M) for the kernels whose sums `CSGEMM` reproduces bit
  /// for bit (its header gives the arithmetic), when this CPU runs AVX-512; nil otherwise, and with
  /// `FPSIM_SGEMM=openblas` in the environment (to compare the two in one binary).
  static let ownKernel: (q: Int, u: Int)? = {
    guard fpsim_sgemm_available() != 0, !KernelOverrides.sgemmIsOpenBLAS else {
      return nil
    }
    typealias Config = @convention(c) () -> UnsafeMutablePointer<CChar>?
    let config = openBLASFunction("openblas_get_config", as: Config.self)?().map { String(cString: $0) }
    return ownKernelBlocking(kernel: openBLASCoreName(), config: config)
  }()

  /// Whether products of alpha 1 run on `CSGEMM`'s kernel in this process.
  public static var usesOwnKernel: Bool { ownKernel != nil }

  /// The blocking of OpenBLAS 0.3.21's AVX-512 kernels (`config` is `openblas_get_config()`, which
  /// starts with the version), measured against them; nil for every other kernel and version, whose
  /// sums have not been checked.
  static func ownKernelBlocking(kernel: String?, config: String?) -> (q: Int, u: Int)? {
    guard config?.hasPrefix("OpenBLAS 0.3.21 ") == true else { return nil }
    switch kernel {
    case "Cooperlake": return (320, 16)
    case "SkylakeX": return (448, 16)
    default: return nil
    }
  }

  /// Whether a product in `panels` row panels goes to `CSGEMM`'s kernel (where it has one): alpha 1,
  /// beta 0 or 1, and at least 28 x 512 x 512 multiply-adds in every panel. Below that OpenBLAS 0.3.21
  /// may take other paths (its "direct" and small-matrix kernels, which sum K in one chain), so those
  /// products stay with it.
  static func ownKernelTakes(M: Int, N: Int, K: Int, panels: Int, step: Int, alpha: Float, beta: Float) -> Bool {
    alpha == 1 && (beta == 0 || beta == 1) && (M / panels - step) * N * K >= 28 * 512 * 512
  }

  /// Where panel i starts: row i * M / t rounded to the nearest multiple of `step` (M for i = t), so
  /// each cut is within step / 2 rows of the even one. (With the panel size rounded up to 48 rows, as
  /// before, a 128-row product split 96 + 32 and one thread idled for two thirds of it.) Strictly
  /// increasing when t <= M / step, as consecutive i * M / (step t) differ by at least 1.
  static func panelStart(_ i: Int, of t: Int, rows M: Int, step: Int) -> Int {
    i == t ? M : (2 * i * M + step * t) / (2 * step * t) * step
  }

  /// The rows that panel cuts keep to: a row's bits depend on where it falls in the BLAS kernel's
  /// tile of rows (C's rows are the column-major kernel's N), so panels start on multiples of that
  /// tile. OpenBLAS 0.3.21's Zen kernel (AMD Zen 2) tiles by 12: a panel starting on row 1024 changed
  /// rows 1020-2047 of a 2048-row product, while panels on multiples of 12 keep every bit. Its AVX-512
  /// kernels SkylakeX and Cooperlake tile by 16 (the panel step on those machines before Zen 2 came).
  /// Any other kernel, or another BLAS: 48, a multiple of both. Finer steps cut more evenly: on two
  /// threads gpt-tiny's 128-row weight gradients split 60 + 68 on Zen, 48 + 80 with 48.
  static let rowStep = rowStep(kernel: openBLASCoreName())

  static func rowStep(kernel: String?) -> Int {
    switch kernel {
    case "Zen": 12
    case "SkylakeX", "Cooperlake": 16
    default: 48
    }
  }

  /// OpenBLAS's `openblas_get_corename()` (the kernel it chose when it loaded), or nil when the BLAS
  /// in use is not OpenBLAS.
  public static func openBLASCoreName() -> String? {
    typealias CoreName = @convention(c) () -> UnsafeMutablePointer<CChar>?
    guard let p = openBLASFunction("openblas_get_corename", as: CoreName.self)?() else { return nil }
    return String(cString: p).trimmingCharacters(in: .whitespaces)
  }

  /// An OpenBLAS function looked up at run time, or nil when the BLAS in use is not OpenBLAS: its
  /// extensions live in libopenblas.so.0, which `-lblas` loads but does not put on the link line, and
  /// other BLAS alternatives lack them.
  public static func openBLASFunction<F>(_ name: String, as type: F.Type) -> F? {
    // A nil handle is RTLD_DEFAULT on glibc: the global scope, dependencies of dependencies included.
    guard let p = dlsym(nil, name) else { return nil }
    return unsafeBitCast(p, to: type)
  }

  /// OpenBLAS runs on one thread (its default is every core); set once, before the first product.
  /// A BLAS without `openblas_set_num_threads` is left as it is.
  static let singleThreadedBLAS: Bool = {
    guard let f = openBLASFunction("openblas_set_num_threads", as: (@convention(c) (Int32) -> Void).self) else {
      return false
    }
    f(1)
    return true
  }()

  @inline(__always)
  static func blas(
    _ transA: Bool, _ transB: Bool, _ M: Int, _ N: Int, _ K: Int, _ alpha: Float,
    _ A: UnsafePointer<Float>, _ lda: Int, _ B: UnsafePointer<Float>, _ ldb: Int,
    _ beta: Float, _ C: UnsafeMutablePointer<Float>, _ ldc: Int
  ) {
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
  }

  /// The definition, one dot product per output in float32 (beta == 0 overwrites C, NaN included,
  /// as BLAS does).
  public static func sgemmNaive(
    transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float = 1,
    A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
    beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    for i in 0..<M {
      for j in 0..<N {
        var s: Float = 0
        for k in 0..<K {
          let a = transA ? A[k * lda + i] : A[i * lda + k]
          let b = transB ? B[j * ldb + k] : B[k * ldb + j]
          s += a * b
        }
        let c = C + i * ldc + j
        c.pointee = beta == 0 ? alpha * s : alpha * s + beta * c.pointee
      }
    }
  }
}
