import Glibc  // mmap, madvise, munmap

/// A float32 buffer the engine owns: one 64-byte aligned allocation (a cache line, one AVX-512
/// vector), zero-initialised, freed with its owner. Kernels never own memory; models own these.
///
/// Buffers of 2 MiB or more get their own anonymous mapping of whole 2 MiB pages on a 2 MiB boundary,
/// marked for transparent huge pages before first touch (madvise MADV_HUGEPAGE; Linux's default THP
/// mode here is `madvise`, so without it every page is 4 KiB). A fresh mapping, not malloc: malloc may
/// hand back heap memory already faulted in on 4 KiB pages, which the advice does not convert. A
/// gpt-tiny step touches well over 100 MB, far more than the 4 KiB-page TLB covers: with huge pages the
/// fp32 step measured about 2% faster. Addresses never change a result's bits.
public final class FloatBuffer {
  public let count: Int
  public let pointer: UnsafeMutablePointer<Float>
  /// Bytes of the buffer's own mapping (whole huge pages), 0 when it came from the allocator.
  let mappedBytes: Int

  /// 2 MiB: the x86-64 huge page.
  static let hugePage = 1 << 21

  public init(count: Int) {
    precondition(count >= 0, "negative buffer size")
    self.count = count
    let bytes = max(count, 1) * 4
    if bytes >= Self.hugePage, let p = Self.mapHugePages(bytes) {
      (pointer, mappedBytes) = (p.0.bindMemory(to: Float.self, capacity: count), p.1)
    } else {
      let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
      (pointer, mappedBytes) = (raw.bindMemory(to: Float.self, capacity: max(count, 1)), 0)
    }
    pointer.initialize(repeating: 0, count: max(count, 1))
  }

  /// A mapping of `bytes` rounded up to whole huge pages, starting on a huge-page boundary (mapped one
  /// page larger, the unaligned head and tail unmapped), advised for huge pages; nil if mmap fails.
  static func mapHugePages(_ bytes: Int) -> (UnsafeMutableRawPointer, Int)? {
    let length = (bytes + hugePage - 1) / hugePage * hugePage
    guard let base = mmap(nil, length + hugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
      base != MAP_FAILED
    else { return nil }
    let head = (hugePage - Int(bitPattern: base) % hugePage) % hugePage
    if head > 0 { munmap(base, head) }
    munmap(base + head + length, hugePage - head)
    // Advice only: where the kernel has THP off, the buffer simply stays on 4 KiB pages.
    _ = madvise(base + head, length, MADV_HUGEPAGE)
    return (base + head, length)
  }

  public convenience init(_ values: [Float]) {
    self.init(count: values.count)
    values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
  }

  deinit {
    if mappedBytes > 0 {
      munmap(UnsafeMutableRawPointer(pointer), mappedBytes)
    } else {
      UnsafeMutableRawPointer(pointer).deallocate()
    }
  }

  public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
  /// Zeroes the buffer on `threads` threads (the training step's gradient buffers: a serial memset of
  /// several MB left the other cores idle).
  public func zero(threads: Int = 1) {
    nonisolated(unsafe) let p = pointer
    parallelChunks(count, threads) { lo, hi in (p + lo).update(repeating: 0, count: hi - lo) }
  }
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
