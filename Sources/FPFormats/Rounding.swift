/// How a value between two neighbours of a format is rounded.
///
/// With neighbours `lo < x < hi` (one spacing apart, chosen with the format's spacing at `x`):
/// - `rne`: the nearer; a tie goes to the neighbour whose code is even (IEEE 754 default).
/// - `rna`: the nearer; a tie goes away from zero.
/// - `rtz`: toward zero, i.e. the dropped mantissa bits are cleared ("To FP8 and Back" bit masking).
/// - `up`: toward +Inf. `down`: toward -Inf.
/// - `odd`: toward zero, then, when inexact, to the neighbour with an odd code (round-to-odd).
/// - `stochastic(bits: R)`: away from zero with probability `floor(f * 2^R) / 2^R`, where `f` in [0, 1) is
///   the dropped fraction of a spacing; implemented as "round away when the top R bits of the dropped
///   fraction plus a uniform R-bit random integer reach 2^R". With R = 24 (the default) the mean error
///   is below 2^-24 of a spacing: unbiased to float32's own precision. R may be 1 to 32.
public enum RoundingMode: Hashable, Codable, Sendable, CustomStringConvertible {
  case rne, rna, rtz, up, down, odd
  case stochastic(bits: Int)

  public static let defaultStochasticBits = 24
  public static let stochastic = RoundingMode.stochastic(bits: defaultStochasticBits)

  public var description: String {
    switch self {
    case .rne: return "rne"
    case .rna: return "rna"
    case .rtz: return "rtz"
    case .up: return "up"
    case .down: return "down"
    case .odd: return "odd"
    case .stochastic(let b):
      return b == Self.defaultStochasticBits ? "stochastic" : "stochastic:\(b)"
    }
  }

  public var isStochastic: Bool { if case .stochastic = self { return true } else { return false } }

  /// Every spelling `init(parsing:)` accepts for a mode, case-insensitively: the names, and the
  /// synonyms `nearest` (rne), `truncate` (rtz) and `sr` (stochastic, also `sr:BITS`). The README's
  /// "Rounding and overflow" lists each one (a test reads it).
  public static let spellings: [(spelling: String, mode: RoundingMode)] = [
    ("rne", .rne), ("nearest", .rne), ("rna", .rna), ("rtz", .rtz), ("truncate", .rtz), ("up", .up),
    ("down", .down), ("odd", .odd), ("stochastic", .stochastic), ("sr", .stochastic),
  ]

  /// Parses `rne`, `rna`, `rtz`, `up`, `down`, `odd`, `stochastic` or `stochastic:BITS` (1...32), or a
  /// synonym (``spellings``).
  public init(parsing text: String) throws {
    let t = text.lowercased()
    if let match = Self.spellings.first(where: { $0.spelling == t }) {
      self = match.mode
    } else {
      let parts = t.split(separator: ":", omittingEmptySubsequences: false)
      if parts.count == 2, parts[0] == "stochastic" || parts[0] == "sr" {
        guard let b = Int(parts[1]), (1...32).contains(b) else {
          throw FormatError.invalid("stochastic rounding takes 1 to 32 random bits, not '\(parts[1])'")
        }
        self = .stochastic(bits: b)
        return
      }
      throw FormatError.invalid(
        "unknown rounding '\(text)': use rne, rna, rtz, up, down, odd, stochastic or stochastic:BITS")
    }
  }
}

/// What happens to a finite value beyond the largest finite value after rounding.
/// - `saturate`: it becomes +-max (MX and training recipes). Infinities clamp to +-max too.
/// - `ieee`: it becomes Inf where the format has Inf, else NaN where it has NaN, else +-max; as in
///   IEEE 754, a rounding that never goes away from zero (`rtz`, `odd`, `up` for negatives, `down` for
///   positives) gives +-max instead. ml_dtypes casts are `rne` with `ieee`.
public enum Overflow: String, Hashable, Codable, Sendable, CaseIterable {
  case saturate, ieee
}
