import Foundation
import Testing

/// `fpsim grid export`: the committed form of a study. Its `/results` must be the grid's, value for
/// value and attribute for attribute, as h5py and xarray read them, without the checkpoints.
@Suite(.serialized) struct GridExportTests {
  @Test func anExportKeepsResultsIdenticalAndDropsCheckpoints() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let args = ["grid", "--model", "linreg", "--formats", "e8m7,e8m3", "--rounding", "rtz", "--lrs", "0.05,0.2", "--seeds", "0..1",
                "--steps", "20", "--checkpoint-every", "10", "--out", "g.h5", "--jobs", "2"]
    #expect(try GridWorkflowTests.run(args, in: dir).status == 0)
    #expect(try GridWorkflowTests.run(["sharpness", "g.h5", "--metric", "sam", "--steps", "all"], in: dir).status == 0)

    let e = try GridWorkflowTests.run(["grid", "export", "g.h5", "--out", "small/g.h5"], in: dir)
    #expect(e.status == 0, "\(e.stderr)")
    #expect(e.stdout.contains("8 runs"), "\(e.stdout)")
    let check = try python("""
      import h5py, numpy as np, xarray as xr
      big, small = h5py.File('\(dir.path)/g.h5', 'r'), h5py.File('\(dir.path)/small/g.h5', 'r')
      def same_attrs(a, b):
          keys = [k for k in a.attrs if k not in ('DIMENSION_LIST', 'REFERENCE_LIST')]
          assert sorted(keys) == sorted(k for k in b.attrs if k not in ('DIMENSION_LIST', 'REFERENCE_LIST')), (a.name, keys)
          for k in keys:
              assert np.array_equal(np.asarray(a.attrs[k]), np.asarray(b.attrs[k])), (a.name, k)
      names = []
      big['results'].visit(names.append)
      for n in names:
          a, b = big['results'][n], small['results'][n]
          if isinstance(a, h5py.Dataset):
              assert a.dtype == b.dtype and a.shape == b.shape, n
              assert np.array_equal(a[()], b[()], equal_nan=a.dtype.kind == 'f'), n
          same_attrs(a, b)
      same_attrs(big['results'], small['results'])
      x = xr.open_dataset('\(dir.path)/g.h5', group='results', engine='h5netcdf')
      y = xr.open_dataset('\(dir.path)/small/g.h5', group='results', engine='h5netcdf')
      assert x.identical(y)
      assert 'exponent_bits' in y.coords and y['loss'].dims == ('recipe', 'lr', 'seed', 'step')
      for run in small['runs']:
          kept = sorted(small['runs'][run])
          assert 'checkpoints' not in kept and 'metrics' in kept and 'sharpness' in kept, kept
          assert 'checkpoints' in big['runs'][run]
          assert dict(small['runs'][run].attrs) .keys() == dict(big['runs'][run].attrs).keys()
      assert small.attrs['schema'] == 'fpsim/grid' and small.attrs['config'] == big.attrs['config']
      assert small.attrs['exported_from'] == 'g.h5'
      print(len(names))
      """)
    #expect(Int(check.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 10, "\(check)")
    let size = { (p: String) in (try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(p).path)[.size] as? NSNumber)?.intValue ?? 0 }
    #expect(try size("small/g.h5") < size("g.h5"))

    // Still a finished grid: the same spec reruns without writing, report reads it, sharpness says why not.
    let exported = dir.appendingPathComponent("small/g.h5").path
    let before = try GridWorkflowTests.sha(exported)
    let rerun = try GridWorkflowTests.run(args.dropLast(4) + ["--out", "small/g.h5", "--jobs", "2"], in: dir)
    #expect(rerun.status == 0, "\(rerun.stderr)")
    #expect(try GridWorkflowTests.sha(exported) == before)
    let report = try GridWorkflowTests.run(["report", "small/g.h5", "--out", "page.html"], in: dir)
    #expect(report.status == 0, "\(report.stderr)")
    let sharp = try GridWorkflowTests.run(["sharpness", "small/g.h5", "--metric", "sam"], in: dir)
    #expect(sharp.status == 2)
    #expect(sharp.stderr.contains("export"), "\(sharp.stderr)")
    #expect(try GridWorkflowTests.sha(exported) == before)

    // An existing destination, and the grid itself as destination, are refused; nothing is written.
    for out in ["small/g.h5", "g.h5"] {
      let again = try GridWorkflowTests.run(["grid", "export", "g.h5", "--out", out], in: dir)
      #expect(again.status == 2)
      #expect(again.stderr.split(separator: "\n").count == 1, "\(again.stderr)")
    }
    #expect(try GridWorkflowTests.sha(exported) == before)
  }

  @Test func anUnfinishedGridIsNotExported() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let grid = dir.appendingPathComponent("g.h5").path
    // Killed once the first run is in the grid file: runs are missing and /results is not built.
    let (killed, _) = try CLI.runAndKill(
      ["grid", "--model", "gpt-micro", "--formats", "e8m7", "--lrs", "3e-3", "--seeds", "0..3", "--steps", "200",
       "--data", dataDirectory, "--out", grid, "--jobs", "1"]) { $0.contains("runs 1/4") }
    #expect(killed)
    let e = try GridWorkflowTests.run(["grid", "export", "g.h5", "--out", "s.h5"], in: dir)
    #expect(e.status == 2)
    #expect(e.stderr.contains("finish"), "\(e.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("s.h5").path))
  }
}
