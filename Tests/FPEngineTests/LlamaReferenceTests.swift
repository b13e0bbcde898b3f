import FPEngine
import Foundation
import Testing

/// The Llama's logits, loss and every parameter gradient against an independent PyTorch implementation
/// (experiments/reference/llama_reference.py, run in float64 on the same float32 weights), with the
/// GPT's tolerances (`GPTReferenceTests`): logits and loss within 1e-5 relative, each gradient tensor
/// within 1e-4 of its largest reference magnitude. Each tensor's figures are printed.
@Suite struct LlamaReferenceTests {
  @Test func llamaLogitsLossAndGradientsMatchPyTorch() throws {
    // Head size 16: the blocked attention kernels run. T = 8 positions of rotary angles; hidden 48 is
    // not a multiple of 16, so the SwiGLU and the GEMMs take their tails too.
    let config = LlamaConfig(vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 32, hidden: 48)
    let B = 2, T = 8, V = config.vocabSize
    let llama = Llama(config: config, batchSize: B, recipe: .fp32, seed: 0, threads: 2)
    // Weights larger than the initialization, so that attention, SiLU and RMSNorm all work in their
    // curved regions and every gradient is far from zero.
    let P = llama.parameters
    for (k, t) in P.tensors.enumerated() {
      let x = P.values.pointer + t.offset
      if t.isMatrix {
        Initializer.normal(x, count: t.count, std: t.name.contains("embed") ? 0.8 : 0.35, seed: 42, stream: UInt64(k))
      } else {
        Initializer.normal(x, count: t.count, std: 0.2, seed: 42, stream: UInt64(k))
        for i in 0..<t.count { x[i] += 1 }  // RMSNorm gains around 1
      }
    }
    var rng = TestRNG(98)
    let tokens = rng.ints(B * T, below: V), targets = rng.ints(B * T, below: V)
    let loss = llama.forward(tokens: tokens, targets: targets)
    llama.backward()

    let caseJSON: [String: Any] = [
      "config": [
        "vocab_size": V, "block_size": config.blockSize, "n_layer": config.nLayer, "n_head": config.nHead,
        "n_embd": config.nEmbd, "hidden": config.hidden, "rope_base": config.ropeBase,
      ],
      "B": B, "T": T, "tokens": tokens.map(Int.init), "targets": targets.map(Int.init),
      "params": P.tensors.map { ["name": $0.name, "shape": $0.shape] as [String: Any] },
    ]
    guard let ref = try runReferenceScript("llama_reference.py", caseJSON: caseJSON, parameters: P) else { return }
    #expect(ref.count == B * T * V + 1 + P.count)
    guard ref.count == B * T * V + 1 + P.count else { return }

    var offset = 0
    func take(_ n: Int) -> [Double] {
      defer { offset += n }
      return Array(ref[offset..<(offset + n)])
    }
    let (dl, sl) = maxDifference(llama.logits.toArray(), take(B * T * V))
    print(String(format: "%-44@ max diff %.3e  scale %.3e  ratio %.2e", "logits" as NSString, dl, sl, dl / sl))
    #expect(dl <= 1e-5 * sl, "logits: \(dl) vs scale \(sl)")
    let refLoss = take(1)[0]
    print("loss: fpsim \(loss), PyTorch float64 \(refLoss), diff \(abs(Double(loss) - refLoss))")
    #expect(abs(Double(loss) - refLoss) <= 1e-5 * refLoss)
    var worst = 0.0
    for t in P.tensors {
      let (d, s) = maxDifference(P.gradArray(t.name), take(t.count))
      worst = max(worst, d / s)
      print(String(format: "%-44@ max diff %.3e  scale %.3e  ratio %.2e", t.name as NSString, d, s, d / s))
      #expect(s > 0, "\(t.name): reference gradient is zero")
      #expect(d <= 1e-4 * s, "grad \(t.name): \(d) vs scale \(s)")
    }
    print("worst gradient ratio: \(worst)")
  }
}

/// Runs experiments/reference/SCRIPT on a case (case.json and the parameters as params.bin in a
/// temporary folder) and returns its reference.bin as doubles; nil after recording the failure.
func runReferenceScript(_ script: String, caseJSON: [String: Any], parameters P: ParameterSet) throws -> [Double]? {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-\(script)-\(getpid())")
  try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: dir) }
  try JSONSerialization.data(withJSONObject: caseJSON).write(to: dir.appendingPathComponent("case.json"))
  try Data(buffer: P.values.buffer).write(to: dir.appendingPathComponent("params.bin"))
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = ["python3", repositoryRoot.appendingPathComponent("experiments/reference/\(script)").path, dir.path]
  let err = Pipe(), out = Pipe()
  p.standardError = err
  p.standardOutput = out
  try p.run()
  let outText = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  p.waitUntilExit()
  guard p.terminationStatus == 0 else {
    if p.terminationStatus == 3 {
      Issue.record("PyTorch is required for this test and is not importable by python3: install it with  pip install \"$PIP_FIND_LINKS\"/torch-*.whl  (not plain `pip install torch`)")
    } else {
      Issue.record("\(script) failed (status \(p.terminationStatus)): \(errText)")
    }
    return nil
  }
  print("reference: \(outText.trimmingCharacters(in: .whitespacesAndNewlines))")
  let raw = try Data(contentsOf: dir.appendingPathComponent("reference.bin"))
  return raw.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
}
