import FPEngine
import Foundation

/// Where the training data sets are, so that fpsim works from any folder.
///
/// Order: the folder given (`--data`, or a spec's `data` key resolved against the spec's folder), else
/// the environment variable `FPSIM_DATA`, else the data that ships with the binary: `PREFIX/share/fpsim/data`
/// for an installed `PREFIX/bin/fpsim` (scripts/install.sh), or the checkout's `data/` for a binary in
/// the checkout's build folder (`.build/<triple>/release/fpsim`, up to five folders up, where
/// `Package.swift` sits beside `data/`).
public enum DataLocation {
  /// The data folder to use, as an absolute path. Throws when the chosen folder lacks a file `model` needs.
  public static func resolve(
    _ explicit: String?, relativeTo base: String? = nil, model: ModelSpec, executable: String,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> String {
    let (folder, source) = try locate(explicit, relativeTo: base, executable: executable, environment: environment)
    for file in model.dataFiles where !FileManager.default.fileExists(atPath: folder + "/" + file) {
      throw DataLocationError(
        "\(model) needs \(file), which is not in \(folder) (\(source)): pass --data DIR (the folder holding fpsim's data/ files) or set FPSIM_DATA")
    }
    return folder
  }

  static func locate(_ explicit: String?, relativeTo base: String?, executable: String, environment: [String: String]) throws
    -> (String, String)
  {
    if let explicit, !explicit.isEmpty {
      return (absolute(explicit, base: base ?? FileManager.default.currentDirectoryPath), "the data folder given")
    }
    if let env = environment["FPSIM_DATA"], !env.isEmpty {
      return (absolute(env, base: FileManager.default.currentDirectoryPath), "FPSIM_DATA")
    }
    if let shipped = shipped(executable: executable) { return (shipped, "the data shipped with fpsim") }
    throw DataLocationError(
      "cannot find fpsim's data sets beside \(executable): pass --data DIR (the folder holding shakespeare.txt, digits.csv.gz, ...) or set FPSIM_DATA")
  }

  /// The data beside an installed or a built binary, or nil.
  public static func shipped(executable: String) -> String? {
    let exe = URL(fileURLWithPath: executable).resolvingSymlinksInPath()
    let bin = exe.deletingLastPathComponent()
    let installed = bin.deletingLastPathComponent().appendingPathComponent("share/fpsim/data")
    if FileManager.default.fileExists(atPath: installed.appendingPathComponent("shakespeare.txt").path) {
      return installed.standardizedFileURL.path
    }
    var dir = bin
    for _ in 0..<5 {
      dir = dir.deletingLastPathComponent()
      let data = dir.appendingPathComponent("data")
      if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path),
        FileManager.default.fileExists(atPath: data.appendingPathComponent("shakespeare.txt").path)
      {
        return data.standardizedFileURL.path
      }
    }
    return nil
  }

  /// `path` made absolute against `base` (a folder).
  public static func absolute(_ path: String, base: String) -> String {
    let expanded = (path as NSString).expandingTildeInPath
    if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL.path }
    return URL(fileURLWithPath: base).appendingPathComponent(expanded).standardizedFileURL.path
  }
}

public struct DataLocationError: Error, CustomStringConvertible {
  public let description: String
  init(_ text: String) { description = text }
}

extension ModelSpec {
  /// The files in the data folder that the model trains on.
  public var dataFiles: [String] {
    switch self {
    case .gpt, .llama: return ["shakespeare.txt"]
    case .mlp: return ["digits.csv.gz"]
    case .linreg: return ["diabetes_data_raw.csv.gz", "diabetes_target.csv.gz"]
    }
  }

  /// The loss of the best model that ignores its input, in the units of the model's loss: the entropy
  /// of the training split's character frequencies for text (nats), ln(classes) for classification,
  /// the variance of the (standardized) targets for regression (mean squared error). A run whose final
  /// validation loss is at or above it has learned nothing.
  public func chanceLoss(dataDirectory: String) throws -> Double {
    let dir = URL(fileURLWithPath: dataDirectory)
    switch self {
    case .gpt, .llama: return try CharDataset(contentsOf: dir.appendingPathComponent("shakespeare.txt")).unigramEntropy
    case .mlp: return log(Double(DigitsDataset.classes))
    case .linreg:
      let d = try DiabetesDataset(
        features: dir.appendingPathComponent("diabetes_data_raw.csv.gz"),
        target: dir.appendingPathComponent("diabetes_target.csv.gz"))
      let y = d.y.map(Double.init)
      let mean = y.reduce(0, +) / Double(y.count)
      return y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(y.count)
    }
  }
}
