import Glibc  // aligned_alloc, madvise, free

/// A float32 buffer the engine owns: one 64-byte aligned allocation (a cache line, one AVX-512
/// vector), zero-initialised, freed with its owner. Kernels never own memory; models own these.
///
/// Buffers of 2 MiB or more are placed on 2 MiB boundaries, rounded up to whole 2 MiB, and marked for
/// transparent huge pages (madvise MADV_HUGEPAGE; Linux's default THP mode here is `madvise`, so
/// without it every page is 4 KiB). A gpt-tiny step touches well over 100 MB, far more than the
/// 4 KiB-page TLB covers: with huge pages the fp32 step measured about 2% faster. Addresses never
/// change a result's bits.
public final class FloatBuffer {
  public let count: Int
  public let pointer: UnsafeMutablePointer<Float>
  /// Whether `pointer` came from aligned_alloc (huge pages), to be released with free.
  let onHugePages: Bool

  /// 2 MiB: the x86-64 huge page.
  static let hugePage = 1 << 21

  public init(count: Int) {
    precondition(count >= 0, "negative buffer size")
    self.count = count
    let bytes = max(count, 1) * 4
    let raw: UnsafeMutableRawPointer
    if bytes >= Self.hugePage, let p = aligned_alloc(Self.hugePage, (bytes + Self.hugePage - 1) / Self.hugePage * Self.hugePage) {
      // Advice only: where the kernel has THP off, the buffer simply stays on 4 KiB pages.
      _ = madvise(p, (bytes + Self.hugePage - 1) / Self.hugePage * Self.hugePage, MADV_HUGEPAGE)
      raw = p
      onHugePages = true
    } else {
      raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
      onHugePages = false
    }
    pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
  }

  public convenience init(_ values: [Float]) {
    self.init(count: values.count)
    values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
  }

  deinit {
    if onHugePages {
      free(UnsafeMutableRawPointer(pointer))
    } else {
      UnsafeMutableRawPointer(pointer).deallocate()
    }
  }

  public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
  public func zero() { pointer.update(repeating: 0, count: count) }
  public func toArray() -> [Float] { Array(buffer) }
}

/// Where one named tensor lives inside a `ParameterSet`'s flat buffers.
public struct TensorInfo: Hashable, Codable, Sendable {
  public let name: String
  public let shape: [Int]
  public let offset: Int
  public var count: Int { shape.reduce(1, *) }
  /// Weight decay applies to tensors of two or more dimensions (matrices and embeddings), never to
  /// biases or LayerNorm gains, as nanoGPT's `configure_optimizers`.
  public var isMatrix: Bool { shape.count >= 2 }
}

/// A model's parameters, their gradients, all in two flat buffers with the same layout (as llm.c), so
/// optimizers, clipping and checkpoints are single loops over `count` floats.
public final class ParameterSet {
  public let tensors: [TensorInfo]
  public let values: FloatBuffer
  public let grads: FloatBuffer
  private let index: [String: Int]

  /// `layout`: (name, shape) in storage order; names are unique.
  public init(layout: [(String, [Int])]) {
    var infos: [TensorInfo] = []
    var offset = 0
    for (name, shape) in layout {
      infos.append(TensorInfo(name: name, shape: shape, offset: offset))
      offset += shape.reduce(1, *)
    }
    tensors = infos
    values = FloatBuffer(count: offset)
    grads = FloatBuffer(count: offset)
    var idx: [String: Int] = [:]
    for (i, t) in infos.enumerated() {
      precondition(idx[t.name] == nil, "duplicate parameter name \(t.name)")
      idx[t.name] = i
    }
    index = idx
  }

  /// Total number of scalar parameters.
  public var count: Int { values.count }

  public func info(_ name: String) -> TensorInfo? { index[name].map { tensors[$0] } }

  /// The value buffer of a named tensor (a programming error if the name is unknown).
  public func value(_ name: String) -> UnsafeMutablePointer<Float> {
    guard let t = info(name) else { preconditionFailure("no parameter named \(name)") }
    return values.pointer + t.offset
  }

  public func grad(_ name: String) -> UnsafeMutablePointer<Float> {
    guard let t = info(name) else { preconditionFailure("no parameter named \(name)") }
    return grads.pointer + t.offset
  }

  public func valueArray(_ name: String) -> [Float] {
    let t = info(name)!
    return Array(UnsafeBufferPointer(start: values.pointer + t.offset, count: t.count))
  }

  public func gradArray(_ name: String) -> [Float] {
    let t = info(name)!
    return Array(UnsafeBufferPointer(start: grads.pointer + t.offset, count: t.count))
  }
}
