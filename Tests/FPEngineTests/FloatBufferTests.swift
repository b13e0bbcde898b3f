import FPEngine
import Foundation
import Testing

@Suite struct FloatBufferTests {
  /// Small buffers: 64-byte aligned and zeroed. Buffers of 2 MiB or more: on a 2 MiB boundary, zeroed
  /// to the last element, and, where Linux's transparent huge pages are `madvise` or `always`, backed
  /// by huge pages (the mapping's AnonHugePages in /proc/self/smaps).
  @Test func largeBuffersSitOnHugePages() throws {
    let small = FloatBuffer(count: 1000)
    #expect(Int(bitPattern: small.pointer) % 64 == 0)
    #expect(small.buffer.allSatisfy { $0 == 0 })

    let count = (1 << 21) / 4 * 3 + 1  // 6 MiB and 4 bytes: four huge pages once rounded up
    let large = FloatBuffer(count: count)
    let address = Int(bitPattern: large.pointer)
    #expect(address % (1 << 21) == 0)
    #expect(large.buffer.allSatisfy { $0 == 0 })
    large.pointer[count - 1] = 1
    #expect(large.pointer[count - 1] == 1)

    let mode = (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
    guard mode.contains("[madvise]") || mode.contains("[always]") else { return }
    #expect(try Self.anonHugeKiB(containing: address) >= 2048, "THP mode \(mode)")
  }

  /// AnonHugePages (KiB) of the mapping of /proc/self/smaps that holds `address`.
  static func anonHugeKiB(containing address: Int) throws -> Int {
    // Read to the end: /proc files report size 0, and a whole-file read may stop at the first page.
    let file = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
    let smaps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
    var inside = false
    for line in smaps.split(separator: "\n") {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
        let bounds = range.split(separator: "-").compactMap { Int($0, radix: 16) }
        inside = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
      } else if inside, fields.first == "AnonHugePages:", fields.count >= 2 {
        return Int(fields[1]) ?? 0
      }
    }
    return 0
  }
}
