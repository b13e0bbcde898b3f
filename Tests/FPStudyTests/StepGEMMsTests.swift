import FPEngine
import Foundation
import Testing

@testable import FPStudy

/// `fpsim bench train --gemm-floor`'s workload: the GEMMs of every linear layer, three per layer.
@Suite struct StepGEMMsTests {
  static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("data")

  /// gpt-tiny: N = 16 * 128 rows; per block c_attn 128 -> 384, c_proj 128 -> 128, c_fc 128 -> 512,
  /// mlp c_proj 512 -> 128, four blocks, and the head 128 -> 76 symbols; 6 N C OC operations each.
  @Test func gptTinyHasTheClosedFormCount() throws {
    let task = try ModelSpec.gptTiny.makeTask(dataDirectory: Self.data, recipe: .fp32, seed: 0)
    let gemms = StepGEMMs(task: task)
    let perBlock: Int = 128 * 384 + 128 * 128 + 128 * 512 + 512 * 128
    let expected: Int = 6 * 2048 * (4 * perBlock + 128 * 76)
    #expect(gemms.flops == Double(expected))
    #expect(gemms.shapes.count == 17)
  }

  /// llama-micro's seven linear layers per block, and a pass over them on one and two threads, whose
  /// products of the fixed operands stay finite.
  @Test func llamaMicroCountAndAPass() throws {
    let task = try ModelSpec.llamaMicro.makeTask(dataDirectory: Self.data, recipe: .fp32, seed: 0)
    let gemms = StepGEMMs(task: task)
    // llama-micro: N = 8 * 32; per block q, k, v, o 32 -> 32, gate and up 32 -> 96, down 96 -> 32.
    let perBlock: Int = 4 * 32 * 32 + 3 * 32 * 96
    let expected: Int = 6 * 256 * (2 * perBlock + 32 * 76)
    #expect(gemms.flops == Double(expected))
    for threads in [1, 2] { gemms.run(threads: threads) }
    let out = gemms.out.pointer
    #expect((0..<gemms.out.count).allSatisfy { out[$0].isFinite })
  }
}
