/// `fpsim train --lr VALUE`: one learning rate per run. A list (`1e-3,3e-3`) is what `fpsim grid --lrs`
/// sweeps, so the message points there instead of ArgumentParser's bare "invalid value".
enum LearningRateArgument {
  struct Invalid: Error, CustomStringConvertible {
    let description: String
  }

  static func parse<T: LosslessStringConvertible>(_ text: String) throws -> T {
    if text.contains(",") || text.contains(";") {
      throw Invalid(description: "one learning rate per run; to sweep several, use fpsim grid --lrs \(text)")
    }
    guard let value = T(text) else { throw Invalid(description: "write one number, as 1e-3") }
    return value
  }
}
