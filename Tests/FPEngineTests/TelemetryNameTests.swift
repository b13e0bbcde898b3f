import FPEngine
import Testing

/// `GEMMOperand.kind(ofTelemetryName:)`, the one parser of `<layer>.<operand>` that run-file readers
/// share: layer names hold dots themselves, so the kind is the text after the last one.
@Suite struct TelemetryNameTests {
  @Test func theKindIsTheTextAfterTheLastDot() {
    for op in GEMMOperand.allCases {
      for layer in ["lm_head", "transformer.h.0.attn.c_attn", "model.layers.11.mlp.down_proj"] {
        #expect(GEMMOperand.kind(ofTelemetryName: "\(layer).\(op)") == op.description)
      }
    }
    #expect(GEMMOperand.kind(ofTelemetryName: "fwd_x") == nil)
    #expect(GEMMOperand.kind(ofTelemetryName: "a.b.") == "")
  }
}
