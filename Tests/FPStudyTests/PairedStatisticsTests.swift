import FPStudy
import Foundation
import Testing

@Suite struct StudentTTests {
  /// Published two-sided critical values (quantiles), to the 9-10 digits the tables give.
  @Test(arguments: [
    (0.975, 1.0, 12.706204736), (0.975, 2.0, 4.302652730), (0.975, 3.0, 3.182446305), (0.975, 4.0, 2.776445105),
    (0.975, 5.0, 2.570581836), (0.975, 9.0, 2.262157163), (0.975, 10.0, 2.228138852), (0.975, 30.0, 2.042272456),
    (0.975, 100.0, 1.983971519), (0.95, 5.0, 2.015048373), (0.995, 10.0, 3.169272667), (0.9995, 3.0, 12.92397863),
  ])
  func quantileMatchesTableValues(p: Double, df: Double, expected: Double) {
    let t = StudentT.quantile(p, df: df)
    #expect(abs(t - expected) <= 2e-9 * expected, "t_{\(p), \(df)} = \(t), table \(expected)")
    #expect(abs(StudentT.quantile(1 - p, df: df) + expected) <= 2e-9 * expected, "symmetry")
  }

  /// Closed forms: df = 1 (Cauchy) t = tan(pi (p - 1/2)); df = 2: t = (2p - 1) / sqrt(2 p (1 - p)).
  @Test func quantileMatchesTheClosedFormsForOneAndTwoDegreesOfFreedom() {
    for i in 1..<200 {
      let p = Double(i) / 200
      let one = tan(Double.pi * (p - 0.5)), two = (2 * p - 1) / (2 * p * (1 - p)).squareRoot()
      #expect(abs(StudentT.quantile(p, df: 1) - one) <= 1e-10 * max(1, abs(one)), "df 1, p \(p)")
      #expect(abs(StudentT.quantile(p, df: 2) - two) <= 1e-10 * max(1, abs(two)), "df 2, p \(p)")
    }
    // Far tails too, where 1 - p loses digits if computed naively.
    for p in [0.999, 0.9999, 0.99999, 1e-5] {
      let one = tan(Double.pi * (p - 0.5))
      #expect(abs(StudentT.quantile(p, df: 1) - one) <= 1e-8 * abs(one), "df 1, p \(p)")
    }
  }

  /// Large df: the Cornish-Fisher expansion t = z + (z^3 + z) / (4 df) + (5z^5 + 16z^3 + 3z) / (96 df^2),
  /// z the normal quantile (1.959963984540054 for 0.975), error O(df^-3).
  @Test func quantileApproachesTheNormalExpansionForLargeDegreesOfFreedom() {
    let z = 1.959963984540054
    for df in [1e3, 1e4, 1e5] {
      let expected = z + (z * z * z + z) / (4 * df) + (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * df * df)
      #expect(abs(StudentT.quantile(0.975, df: df) - expected) <= 1e-8, "df \(df)")
    }
  }

  /// Against scipy.stats.t.ppf (an independent implementation) at many df and p.
  @Test func quantileMatchesScipy() throws {
    let dfs: [Double] = [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 19, 24, 29, 39, 59, 99, 199, 999, 0.5, 2.5]
    let ps: [Double] = [0.5005, 0.6, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9999, 0.025, 0.1]
    let text = try runPython("""
      from scipy.stats import t
      for df in \(dfs):
          print(' '.join(repr(float(t.ppf(p, df))) for p in \(ps)))
      """)
    let lines = text.split(separator: "\n")
    #expect(lines.count == dfs.count)
    for (df, line) in zip(dfs, lines) {
      for (p, s) in zip(ps, line.split(separator: " ")) {
        let expected = Double(s)!
        let t = StudentT.quantile(p, df: df)
        #expect(abs(t - expected) <= 1e-9 * max(1, abs(expected)), "df \(df) p \(p): \(t) vs scipy \(expected)")
      }
    }
  }

  @Test func cdfInvertsTheQuantile() {
    for df in [1.0, 3, 7, 30] {
      for p in [0.01, 0.2, 0.5, 0.8, 0.975] {
        #expect(abs(StudentT.cdf(StudentT.quantile(p, df: df), df: df) - p) <= 1e-12)
      }
    }
    #expect(StudentT.cdf(0, df: 4) == 0.5)
  }
}

@Suite struct PairedStatisticsTests {
  @Test func meanIntervalOfHandMadeNumbers() throws {
    // 1..5: mean 3, s = sqrt(2.5), s / sqrt(5) = sqrt(0.5), half width t_{0.975,4} sqrt(0.5).
    let m = try #require(MeanInterval([1, 2, 3, 4, 5]))
    let half = 2.776445105 * 0.5.squareRoot()
    #expect(m.n == 5 && abs(m.mean - 3) < 1e-15)
    #expect(abs(m.standardDeviation! - 2.5.squareRoot()) < 1e-14)
    #expect(abs(m.low! - (3 - half)) < 1e-8 && abs(m.high! - (3 + half)) < 1e-8)
    // Two values 0.1, 0.3: mean 0.2, s / sqrt(2) = 0.1, half width t_{0.975,1} 0.1 = 1.2706204736.
    let two = try #require(MeanInterval([0.1, 0.3]))
    #expect(abs(two.low! - (0.2 - 1.2706204736)) < 1e-9 && abs(two.high! - (0.2 + 1.2706204736)) < 1e-9)
    #expect(two.containsZero == true)
    // One value: a mean, no interval.
    let one = try #require(MeanInterval([0.7]))
    #expect(one.mean == 0.7 && one.low == nil && one.high == nil && one.containsZero == nil)
    #expect(MeanInterval([]) == nil)
    // Equal values: zero width.
    let flat = try #require(MeanInterval([0.5, 0.5, 0.5]))
    #expect(flat.low == 0.5 && flat.high == 0.5 && flat.containsZero == false)
  }

  /// Three labels, one lr, three seeds (seed fastest): base 2.0, 2.1, 2.2; "noisy" differences
  /// 0.1, 0.2, 0.3 (mean 0.2, s 0.1: half width t_{0.975,2} 0.1 / sqrt 3 = 0.2484138); "worse" +0.5 each.
  static let grid = GridValues(
    labelKind: "recipe", labels: ["base", "noisy", "worse"], lrs: [0.01], seeds: [0, 1, 2],
    finalEval: [2.0, 2.1, 2.2, 2.1, 2.3, 2.5, 2.5, 2.6, 2.7], diverged: Array(repeating: false, count: 9))

  @Test func pairedDifferencesOfHandMadeNumbers() throws {
    let rows = try PairedComparison.compute(Self.grid)
    #expect(rows.map(\.label) == ["base", "noisy", "worse"])
    #expect(rows[0].verdict == "baseline" && rows[0].difference == nil && abs(rows[0].meanLoss! - 2.1) < 1e-12)
    let noisy = try #require(rows[1].difference)
    let half = 4.302652730 * 0.1 / 3.0.squareRoot()
    #expect(rows[1].pairs == 3 && abs(noisy.mean - 0.2) < 1e-12)
    #expect(abs(noisy.low! - (0.2 - half)) < 1e-8 && abs(noisy.high! - (0.2 + half)) < 1e-8)
    #expect(rows[1].verdict == "within seed noise")
    #expect(rows[2].verdict == "higher loss than baseline" && abs(rows[2].difference!.mean - 0.5) < 1e-12)
    // Another baseline flips the sign.
    let other = try PairedComparison.compute(Self.grid, baseline: "worse")
    #expect(other[0].verdict == "lower loss than baseline" && abs(other[0].difference!.mean + 0.5) < 1e-12)
    #expect(throws: StudyInputError.self) { try PairedComparison.compute(Self.grid, baseline: "nope") }
    #expect(PairedComparison.table(rows, kind: "recipe").contains("within seed noise"))
  }

  @Test func divergedRunsLeaveTheirPairsOut() throws {
    var g = Self.grid
    g.diverged[4] = true  // noisy, seed 1
    g.finalEval[7] = .nan  // worse, seed 1: no final loss
    let rows = try PairedComparison.compute(g)
    #expect(rows[1].pairs == 2 && rows[1].labelDiverged == 1)
    // Pairs (seed 0, seed 2): 0.1 and 0.3.
    #expect(abs(rows[1].difference!.mean - 0.2) < 1e-12)
    #expect(abs(rows[1].difference!.high! - (0.2 + 1.2706204736)) < 1e-8)
    g.diverged[0] = true
    g.diverged[2] = true  // the baseline keeps only seed 1, where "noisy" diverged and "worse" has no loss
    let fewer = try PairedComparison.compute(g)
    #expect(fewer[2].pairs == 0 && fewer[2].verdict == "no finished pair")
    #expect(fewer[1].pairs == 0)
    g.diverged[4] = false
    let single = try PairedComparison.compute(g)
    #expect(single[1].pairs == 1 && single[1].verdict == "one pair: no interval" && single[1].difference?.low == nil)
  }

  /// e8m7 (16 bits) baseline; e8m5 (14) +0.01 at both lrs and seeds (zero width: passes confidently);
  /// e8m4 (13) +0.00 and +0.06 at lr 0.1 (mean 0.03 passes, interval too wide for confidence);
  /// e8m3 (12) +0.1 at lr 0.1 (fails).
  @Test func fewestBitsWithinTolerance() throws {
    let base: [Double] = [2.0, 2.2, 3.0, 3.4]  // [lr 0.01: s0, s1; lr 0.1: s0, s1]
    let add: [[Double]] = [[0, 0, 0, 0], [0.01, 0.01, 0.01, 0.01], [0.0, 0.0, 0.0, 0.06], [0.0, 0.0, 0.1, 0.1]]
    let g = GridValues(
      labelKind: "format", labels: ["e8m7", "e8m5", "e8m4", "e8m3"], lrs: [0.01, 0.1], seeds: [0, 1],
      finalEval: add.flatMap { a in zip(base, a).map { $0 + $1 } }, diverged: Array(repeating: false, count: 16))
    #expect(g.totalBits == [16, 14, 13, 12])
    let a = try #require(try BitReduction.compute(g, tolerance: 0.05))
    #expect(a.baselineBits == 16)
    #expect(a.formats.map(\.bitsRemoved) == [0, 2, 3, 4])
    #expect(a.formats.map(\.passes) == [true, true, true, false])
    #expect(a.formats.map(\.passesConfidently) == [true, true, false, false])
    #expect(a.fewestBits?.label == "e8m4" && a.fewestBitsConfident?.label == "e8m5")
    let w = try #require(a.fewestBits?.worst)
    // Worst lr 0.1: differences 0.00, 0.06: mean 0.03, s/sqrt 2 = 0.03, half width 12.7062047 * 0.03.
    #expect(a.fewestBits?.worstLR == 0.1 && abs(w.mean - 0.03) < 1e-12)
    #expect(abs(w.high! - (0.03 + 12.706204736 * 0.03)) < 1e-8)
    #expect(a.sentence.contains("e8m4 (13 bits, 3 removed)"))
    // A divergence anywhere fails a format.
    var d = g
    d.diverged[g.index(1, 0, 1)] = true
    let b = try #require(try BitReduction.compute(d, tolerance: 0.05))
    #expect(b.formats[1].passes == false && b.formats[1].unfinishedLRs == [0.01])
    // Recipe grids have no bit answer.
    #expect(try BitReduction.compute(PairedStatisticsTests.grid, tolerance: 0.05) == nil)
  }
}

/// Runs python3 with a script; fails (never skips) with the install command when it cannot.
func runPython(_ script: String) throws -> String {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = ["python3", "-c", script]
  let out = Pipe(), err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  let errData = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  struct PythonError: Error, CustomStringConvertible { var description: String }
  guard p.terminationStatus == 0 else {
    throw PythonError(description: "python failed (bash scripts/install-deps.sh installs scipy, h5py, numpy): \(String(decoding: errData, as: UTF8.self))")
  }
  return String(decoding: data, as: UTF8.self)
}
