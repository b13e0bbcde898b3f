import FPEngine
import Foundation
import Testing

/// The GPT's logits, loss and every parameter gradient against an independent PyTorch implementation
/// (experiments/reference/gpt_reference.py, run in float64 on the same float32 weights).
///
/// Tolerance: fpsim computes in float32 through 2 blocks, so it should agree with the float64 reference
/// to a few float32 ulps of each tensor's scale: the logits and loss within 1e-5 relative, each
/// gradient tensor within 1e-4 of its largest reference magnitude (gradients sum over more terms and
/// pass the LayerNorm backward twice per block). Each tensor's figures are printed.
@Suite struct GPTReferenceTests {
  @Test func gptLogitsLossAndGradientsMatchPyTorch() throws {
    // Head size 16: the blocked attention kernels run (the plain-loop ones are checked by the kernel tests).
    let config = GPTConfig(vocabSize: 11, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 32)
    let B = 2, T = 8, V = config.vocabSize
    let gpt = GPT(config: config, batchSize: B, recipe: .fp32, seed: 0, threads: 2)
    // Weights larger than nanoGPT's initialization, so that attention, GELU and LayerNorm all work in
    // their curved regions and every gradient is far from zero.
    let P = gpt.parameters
    for (k, t) in P.tensors.enumerated() {
      let x = P.values.pointer + t.offset
      if t.isMatrix {
        Initializer.normal(x, count: t.count, std: t.name.contains("wte") || t.name.contains("wpe") ? 0.8 : 0.35, seed: 42, stream: UInt64(k))
      } else {
        Initializer.normal(x, count: t.count, std: 0.2, seed: 42, stream: UInt64(k))
        if t.name.contains("ln_") && t.name.hasSuffix("weight") { for i in 0..<t.count { x[i] += 1 } }
      }
    }
    var rng = TestRNG(99)
    let tokens = rng.ints(B * T, below: V), targets = rng.ints(B * T, below: V)
    let loss = gpt.forward(tokens: tokens, targets: targets)
    gpt.backward()

    // The case for the script.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-gpt-reference-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let caseJSON: [String: Any] = [
      "config": ["vocab_size": V, "block_size": config.blockSize, "n_layer": config.nLayer, "n_head": config.nHead, "n_embd": config.nEmbd],
      "B": B, "T": T, "tokens": tokens.map(Int.init), "targets": targets.map(Int.init),
      "params": P.tensors.map { ["name": $0.name, "shape": $0.shape] as [String: Any] },
    ]
    try JSONSerialization.data(withJSONObject: caseJSON).write(to: dir.appendingPathComponent("case.json"))
    try Data(buffer: P.values.buffer).write(to: dir.appendingPathComponent("params.bin"))

    let script = repositoryRoot.appendingPathComponent("experiments/reference/gpt_reference.py")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script.path, dir.path]
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
        Issue.record("gpt_reference.py failed (status \(p.terminationStatus)): \(errText)")
      }
      return
    }
    print("reference: \(outText.trimmingCharacters(in: .whitespacesAndNewlines))")
    let raw = try Data(contentsOf: dir.appendingPathComponent("reference.bin"))
    let ref: [Double] = raw.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
    #expect(ref.count == B * T * V + 1 + P.count)
    guard ref.count == B * T * V + 1 + P.count else { return }

    var offset = 0
    func take(_ n: Int) -> [Double] {
      defer { offset += n }
      return Array(ref[offset..<(offset + n)])
    }
    let (dl, sl) = maxDifference(gpt.logits.toArray(), take(B * T * V))
    print(String(format: "%-40@ max diff %.3e  scale %.3e  ratio %.2e", "logits" as NSString, dl, sl, dl / sl))
    #expect(dl <= 1e-5 * sl, "logits: \(dl) vs scale \(sl)")
    let refLoss = take(1)[0]
    print("loss: fpsim \(loss), PyTorch float64 \(refLoss), diff \(abs(Double(loss) - refLoss))")
    #expect(abs(Double(loss) - refLoss) <= 1e-5 * refLoss)
    var worst = 0.0
    for t in P.tensors {
      let (d, s) = maxDifference(P.gradArray(t.name), take(t.count))
      worst = max(worst, d / s)
      print(String(format: "%-40@ max diff %.3e  scale %.3e  ratio %.2e", t.name as NSString, d, s, d / s))
      #expect(s > 0, "\(t.name): reference gradient is zero")
      #expect(d <= 1e-4 * s, "grad \(t.name): \(d) vs scale \(s)")
    }
    print("worst gradient ratio: \(worst)")
  }
}
