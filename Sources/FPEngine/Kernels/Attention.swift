import FPFormats

/// Causal multi-head self-attention on packed projections (GPT-2 / nanoGPT `c_attn` output):
///
///     qkv (B,T,3C): for position (b,t) the row is [q | k | v], each C = NH * hs wide, head h in
///                   columns h*hs ..< (h+1)*hs of its part.
///     S = q k^T / sqrt(hs)  (T,T) per (b,h);  P = softmax(S) over t2 <= t (causal mask);  y = P v
///     att (B,NH,T,T): P, entries above the diagonal 0.     out (B,T,C): y with heads side by side.
///
/// Work is split over the B*NH (b,h) pairs, `threads` contiguous ranges run concurrently; every pair
/// writes its own slices and the per-pair arithmetic is the same whatever the split, so results do
/// not depend on the thread count. The fast kernels (head size a multiple of 16) compute each pair's
/// products as register-blocked block products (`MicroGEMM`) restricted to the causal triangle; the
/// reference kernels beside them are plain loops over the same formulas, for any head size.
public enum Attention {
  /// Floats of `scratch` the forward and backward need: per thread a transposed K or V (hs, Tp), a
  /// score block (T, Tp; the backward's dP and dS, of which the blocked forward uses eight rows), Tp = T
  /// rounded up to a multiple of 16, one row of T, and one packed B operand (T, hs; `pack`).
  public static func scratchCount(T: Int, C: Int, NH: Int, threads: Int) -> Int {
    max(1, threads) * scratchPerThread(T: T, hs: C / NH)
  }

  static func scratchPerThread(T: Int, hs: Int) -> Int {
    let tp = (T + 15) / 16 * 16
    return hs * tp + T * tp + T + T * hs
  }

  /// Forward pass; the blocked kernel when hs is a multiple of 16, else `forwardReference`.
  public static func forward(
    out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    scratch: UnsafeMutablePointer<Float>, B: Int, T: Int, C: Int, NH: Int, threads: Int = 1
  ) {
    precondition(C % NH == 0, "C must be a multiple of NH")
    let hs = C / NH
    guard hs % 16 == 0 else {
      return forwardReference(out: out, att: att, qkv: qkv, scratch: scratch, B: B, T: T, C: C, NH: NH, threads: threads)
    }
    let scale = 1 / Float(hs).squareRoot()
    let tp = (T + 15) / 16 * 16, perThread = scratchPerThread(T: T, hs: hs)
    nonisolated(unsafe) let out = out, att = att, qkv = qkv, scratch = scratch
    parallelPairs(B * NH, threads) { pairs, worker in
      let kt = scratch + worker * perThread  // K^T (hs, Tp), zero-padded columns
      let s = kt + hs * tp  // scores of eight rows (8, Tp)
      let vp = s + T * tp + T  // V packed (T, hs)
      for pair in pairs {
        let b = pair / NH, h = pair % NH
        let base = qkv + b * T * 3 * C
        let q = base + h * hs, k = base + C + h * hs, v = base + 2 * C + h * hs
        let p = att + pair * T * T  // (b, h) block of att, (T, T)
        transposeHead(k, ld: 3 * C, into: kt, T: T, hs: hs, tp: tp)
        pack(v, ld: 3 * C, into: vp, T: T, hs: hs)
        // Eight rows at a time, each block taken through all three steps, so that P V reads the block's
        // P rows right after the softmax wrote them (a head's P is 64 KB, twice L1). Each row's values
        // are those of the three steps over the whole head: the same operations on the same terms.
        for r0 in stride(from: 0, to: T, by: 8) {
          let R = min(8, T - r0), W = (r0 + R + 15) / 16 * 16
          // S = Q K^T on and below the diagonal: W columns, up to the block's last row rounded up to
          // 16 (the extra columns are ignored).
          MicroGEMM.rows8(
            out: s, ldo: tp, a: q + r0 * 3 * C, lda: 3 * C, aTransposed: false, b: kt, ldb: tp,
            R: R, K: hs, W: W)
          // P = softmax(S / sqrt(hs)) over t2 <= t, zeros above the diagonal. The exponentials run
          // over whole 16-wide vectors, up to n rounded up to 16 (<= W, so all of them scores; the
          // values past n are never read), in place in S: the last n % 16 no longer run one at a time.
          for t in r0..<r0 + R {
            let row = s + (t - r0) * tp, prow = p + t * T, n = t + 1
            let m = Reduce.max(row, n)
            for c in stride(from: 0, to: n, by: 16) {
              for j in 0..<16 { row[c + j] = FastMath.exp((row[c + j] - m) * scale) }
            }
            let inv = 1 / Reduce.sum(row, n)
            for t2 in 0..<n { prow[t2] = row[t2] * inv }
            for t2 in n..<T { prow[t2] = 0 }
          }
          // Y = P V for the block's rows, reading P only up to the block's last row (zeros beyond the
          // diagonal).
          MicroGEMM.rows8(
            out: out + (b * T + r0) * C + h * hs, ldo: C, a: p + r0 * T, lda: T, aTransposed: false, b: vp, ldb: hs,
            R: R, K: r0 + R, W: hs)
        }
      }
    }
  }

  /// Backward pass into dqkv (B,T,3C), overwritten: nothing needs zeroing first. The blocked kernel
  /// when hs is a multiple of 16, else `backwardReference`. Same formulas as `backwardReference`, as
  /// block products, each output row written once with its whole sum (the sums start from +0, so they
  /// are never -0, and 0 + sum, the old accumulation into zeros, had the same bits):
  ///
  ///     dP = dY V^T,  dS = P * (dP - rowsum(P * dP)) / sqrt(hs),  dV = P^T dY,  dQ = dS K,  dK = dS^T Q
  ///
  /// `afterBatch(b)` is called once for each batch element (sequence) b, once rows b T ..< (b + 1) T of
  /// dqkv are final. The blocked kernel then gives each thread whole sequences and calls it on that
  /// thread right after the sequence's last head, while its rows are in L2: each thread's sequences in
  /// increasing order, different threads' at the same time. (On one thread, b = 0 ..< B in turn.)
  public static func backward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    att: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, B: Int, T: Int, C: Int, NH: Int,
    threads: Int = 1, afterBatch: (@Sendable (Int) -> Void)? = nil
  ) {
    let hs = C / NH
    guard hs % 16 == 0 else {
      backwardReference(dqkv: dqkv, dout: dout, qkv: qkv, att: att, scratch: scratch, B: B, T: T, C: C, NH: NH, threads: threads)
      if let afterBatch { for b in 0..<B { afterBatch(b) } }
      return
    }
    let scale = 1 / Float(hs).squareRoot()
    let tp = (T + 15) / 16 * 16, perThread = scratchPerThread(T: T, hs: hs)
    nonisolated(unsafe) let dqkv = dqkv, dout = dout, qkv = qkv, att = att, scratch = scratch
    parallelPairs(B * NH, threads, wholeGroupsOf: afterBatch == nil ? 1 : NH) { pairs, worker in
      let vt = scratch + worker * perThread  // V^T (hs, Tp), zero-padded columns
      let ds = vt + hs * tp  // dP, then dS (T, Tp)
      let packed = ds + T * tp + T  // K, then dY, then Q, packed (T, hs)
      for pair in pairs {
        let b = pair / NH, h = pair % NH
        let base = qkv + b * T * 3 * C, dbase = dqkv + b * T * 3 * C
        let q = base + h * hs, k = base + C + h * hs, v = base + 2 * C + h * hs
        let dq = dbase + h * hs, dk = dbase + C + h * hs, dv = dbase + 2 * C + h * hs
        let dy = dout + b * T * C + h * hs
        let p = att + pair * T * T
        transposeHead(v, ld: 3 * C, into: vt, T: T, hs: hs, tp: tp)
        pack(k, ld: 3 * C, into: packed, T: T, hs: hs)
        // dP, dS and dQ eight rows at a time (dQ reads the block's dS rows right after they are
        // written); then dV over all row blocks, then dK. Every output is one chain over its own sum,
        // in the same order whatever the order of the loops, so that order changes no bit.
        for r0 in stride(from: 0, to: T, by: 8) {
          let R = min(8, T - r0)
          // dP = dY V^T on and below the diagonal (columns up to the block's last row, rounded up to 16).
          MicroGEMM.rows8(
            out: ds + r0 * tp, ldo: tp, a: dy + r0 * C, lda: C, aTransposed: false, b: vt, ldb: tp,
            R: R, K: hs, W: (r0 + R + 15) / 16 * 16)
          for t in r0..<r0 + R {
            let row = ds + t * tp, prow = p + t * T, n = t + 1
            let sum = Reduce.dot(prow, row, n)
            for t2 in 0..<n { row[t2] = prow[t2] * (row[t2] - sum) * scale }
            for t2 in n..<tp { row[t2] = 0 }
          }
          // dQ rows: sum over t2 <= t of dS[t][t2] K[t2].
          MicroGEMM.rows8(
            out: dq + r0 * 3 * C, ldo: 3 * C, a: ds + r0 * tp, lda: tp, aTransposed: false, b: packed, ldb: hs,
            R: R, K: r0 + R, W: hs)
        }
        // dV rows r0..<r0+R: sum over t >= r0 of P[t][t2] dY[t] (P is zero above the diagonal).
        pack(dy, ld: C, into: packed, T: T, hs: hs)
        for r0 in stride(from: 0, to: T, by: 8) {
          MicroGEMM.rows8(
            out: dv + r0 * 3 * C, ldo: 3 * C, a: p + r0 * T + r0, lda: T, aTransposed: true, b: packed + r0 * hs, ldb: hs,
            R: min(8, T - r0), K: T - r0, W: hs)
        }
        // dK rows: sum over t >= t2 of dS[t][t2] Q[t].
        pack(q, ld: 3 * C, into: packed, T: T, hs: hs)
        for r0 in stride(from: 0, to: T, by: 8) {
          MicroGEMM.rows8(
            out: dk + r0 * 3 * C, ldo: 3 * C, a: ds + r0 * tp + r0, lda: tp, aTransposed: true, b: packed + r0 * hs, ldb: hs,
            R: min(8, T - r0), K: T - r0, W: hs)
        }
        if h == NH - 1 { afterBatch?(b) }
      }
    }
  }

  /// The plain-loop forward (any head size): scores accumulated across t2 with K transposed.
  public static func forwardReference(
    out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>,
    scratch: UnsafeMutablePointer<Float>, B: Int, T: Int, C: Int, NH: Int, threads: Int = 1
  ) {
    precondition(C % NH == 0, "C must be a multiple of NH")
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    let perThread = scratchPerThread(T: T, hs: hs)
    nonisolated(unsafe) let out = out, att = att, qkv = qkv, scratch = scratch
    parallelPairs(B * NH, threads) { pairs, worker in
      let kt = scratch + worker * perThread  // K^T (hs,T) for this pair
      for pair in pairs {
        let b = pair / NH, h = pair % NH
        let base = qkv + b * T * 3 * C
        for t2 in 0..<T {
          let k = base + t2 * 3 * C + C + h * hs
          for i in 0..<hs { kt[i * T + t2] = k[i] }
        }
        for t in 0..<T {
          let q = base + t * 3 * C + h * hs
          let row = att + ((b * NH + h) * T + t) * T
          let n = t + 1
          // row[t2] = q . k_t2 for t2 <= t, accumulated over i in a fixed order.
          for t2 in 0..<n { row[t2] = 0 }
          for i in 0..<hs {
            let qi = q[i], k = kt + i * T
            for t2 in 0..<n { row[t2] += qi * k[t2] }
          }
          var m = -Float.infinity
          for t2 in 0..<n { m = max(m, row[t2]) }
          for t2 in 0..<n { row[t2] = FastMath.exp((row[t2] - m) * scale) }
          let inv = 1 / Reduce.sum(row, n)
          for t2 in 0..<n { row[t2] *= inv }
          for t2 in n..<T { row[t2] = 0 }
          let o = out + (b * T + t) * C + h * hs
          for i in 0..<hs { o[i] = 0 }
          for t2 in 0..<n {
            let p = row[t2], v = base + t2 * 3 * C + 2 * C + h * hs
            for i in 0..<hs { o[i] += p * v[i] }
          }
        }
      }
    }
  }

  /// dqkv (B,T,3C), overwritten, from dout (B,T,C), with P from the forward pass (each pair zeroes
  /// its slices of dqkv, then accumulates):
  ///
  ///     dv_t2 += sum_t P[t,t2] dy_t          dP[t,t2] = dy_t . v_t2
  ///     dS = P * (dP - sum_t2 P dP) / sqrt(hs)  (softmax backward, scale folded in)
  ///     dq_t += sum_t2 dS[t,t2] k_t2          dk_t2 += sum_t dS[t,t2] q_t
  public static func backwardReference(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    att: UnsafePointer<Float>, scratch: UnsafeMutablePointer<Float>, B: Int, T: Int, C: Int, NH: Int,
    threads: Int = 1
  ) {
    let hs = C / NH
    let scale = 1 / Float(hs).squareRoot()
    let perThread = scratchPerThread(T: T, hs: hs)
    nonisolated(unsafe) let dqkv = dqkv, dout = dout, qkv = qkv, att = att, scratch = scratch
    parallelPairs(B * NH, threads) { pairs, worker in
      let vt = scratch + worker * perThread  // V^T (hs,T)
      let drow = vt + hs * T  // dP then dS for one row (T)
      for pair in pairs {
        let b = pair / NH, h = pair % NH
        let base = qkv + b * T * 3 * C, dbase = dqkv + b * T * 3 * C
        zeroPairSlices(dbase, T: T, C: C, h: h, hs: hs)
        for t2 in 0..<T {
          let v = base + t2 * 3 * C + 2 * C + h * hs
          for i in 0..<hs { vt[i * T + t2] = v[i] }
        }
        for t in 0..<T {
          let row = att + ((b * NH + h) * T + t) * T
          let dy = dout + (b * T + t) * C + h * hs
          let n = t + 1
          for t2 in 0..<n { drow[t2] = 0 }
          for i in 0..<hs {
            let d = dy[i], v = vt + i * T
            for t2 in 0..<n { drow[t2] += d * v[t2] }
          }
          for t2 in 0..<n {
            let p = row[t2], dv = dbase + t2 * 3 * C + 2 * C + h * hs
            for i in 0..<hs { dv[i] += p * dy[i] }
          }
          let s = Reduce.dot(row, drow, n)
          for t2 in 0..<n { drow[t2] = row[t2] * (drow[t2] - s) * scale }
          let q = base + t * 3 * C + h * hs, dq = dbase + t * 3 * C + h * hs
          for t2 in 0..<n {
            let ds = drow[t2]
            let k = base + t2 * 3 * C + C + h * hs, dk = dbase + t2 * 3 * C + C + h * hs
            for i in 0..<hs {
              dq[i] += ds * k[i]
              dk[i] += ds * q[i]
            }
          }
        }
      }
    }
  }
}

/// Zeroes one (b, h) pair's dq, dk and dv slices (hs values each per position) of dqkv's batch row
/// `dbase` (T,3C).
@inline(__always)
func zeroPairSlices(_ dbase: UnsafeMutablePointer<Float>, T: Int, C: Int, h: Int, hs: Int) {
  for t in 0..<T {
    for part in 0..<3 { (dbase + t * 3 * C + part * C + h * hs).update(repeating: 0, count: hs) }
  }
}

/// A head's T rows of hs values, `ld` apart in `src`, into `dst` as T x hs. The block products read
/// their B operand (V, K, Q, dY) a row per step: in place, gpt-tiny's rows 3C = 384 floats (1536 bytes)
/// apart start in only 8 of a 48 KB L1's 64 sets, so a head's 128 rows of two lines each need 16 lines
/// of 12-way sets and evicted each other; packed, the head's 16 KB stay in L1. The values and sums are
/// unchanged. Rows are copied as 16-value vectors (hs is a multiple of 16 in the blocked kernels), not
/// by a `memmove` call per row.
@inline(__always)
func pack(_ src: UnsafePointer<Float>, ld: Int, into dst: UnsafeMutablePointer<Float>, T: Int, hs: Int) {
  for t in 0..<T {
    let from = UnsafeRawPointer(src + t * ld), to = UnsafeMutableRawPointer(dst + t * hs)
    for c in stride(from: 0, to: hs * 4, by: 64) {
      let v = from.loadUnaligned(fromByteOffset: c, as: SIMD16<Float>.self)
      to.storeBytes(of: v, toByteOffset: c, as: SIMD16<Float>.self)
    }
  }
}

/// A head's T rows of hs values, `ld` apart in `src`, transposed into `dst` (hs, tp), its columns T ..<
/// tp zero. (Gathered a column at a time, as before, each of the hs passes read all T rows again,
/// rows that share a few L1 sets as `pack` says.)
@inline(__always)
func transposeHead(
  _ src: UnsafePointer<Float>, ld: Int, into dst: UnsafeMutablePointer<Float>, T: Int, hs: Int, tp: Int
) {
  Transpose.apply(src, into: dst, rows: T, cols: hs, ldIn: ld, ldOut: tp)
  for i in 0..<hs { (dst + i * tp + T).update(repeating: 0, count: tp - T) }
}

/// Runs `body` over 0..<count split into `threads` contiguous ranges of whole groups of `group` items
/// (count a multiple of it; a sequence's heads, to keep each sequence on one thread); `body` gets its
/// range and a worker index in 0..<threads (for per-worker scratch).
@inline(__always)
func parallelPairs(_ count: Int, _ threads: Int, wholeGroupsOf group: Int = 1, _ body: @Sendable (Range<Int>, Int) -> Void) {
  WorkSplit(count: count / group, threads: threads, grain: 1).forEach { r, worker in
    body(r.lowerBound * group..<r.upperBound * group, worker)
  }
}
