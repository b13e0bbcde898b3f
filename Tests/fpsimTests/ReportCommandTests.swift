import Foundation
import Testing

/// `fpsim report` checked in a real browser (headless Chromium) and its numbers checked against the
/// file read by h5py and numpy/scipy; `fpsim compare --json` against the same oracle; the Python
/// figure scripts of experiments/plots run on the same files.
@Suite(.serialized) struct ReportCommandTests {
  /// A small format grid (gpt-micro, 3 formats x 2 lrs x 3 seeds, 40 steps) and one run file with
  /// snapshots, made once for the suite (about 15 s) in a scratch folder the suite's last test removes.
  nonisolated(unsafe) static var made: (dir: URL, grid: String, run: String)?

  static func files(_ unused: URL) throws -> (grid: String, run: String) {
    if let made { return (made.grid, made.run) }
    let dir = try scratchDirectory()
    let grid = dir.appendingPathComponent("g.h5").path, run = dir.appendingPathComponent("run.h5").path
    let g = try CLI.run([
      "grid", "--model", "gpt-micro", "--formats", "e8m7,e8m5,e8m3", "--rounding", "rtz", "--lrs", "0.003,0.3",
      "--seeds", "0..2", "--steps", "40", "--eval-every", "10", "--data", dataDirectory, "--out", grid, "--jobs", "2",
    ])
    #expect(g.status == 0, "\(g.stderr)")
    let r = try CLI.run([
      "train", "--model", "gpt-micro", "--recipe", "mxfp8", "--steps", "30", "--eval-every", "10", "--snapshot-every", "15",
      "--data", dataDirectory, "--out", run,
    ])
    #expect(r.status == 0, "\(r.stderr)")
    made = (dir, grid, run)
    return (grid, run)
  }

  static let chromium: String = {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] where FileManager.default.isExecutableFile(atPath: c) { return c }
    return "chromium"
  }()

  /// Runs headless Chromium; fails (never skips) with the install command when it is missing.
  static func browser(_ arguments: [String]) throws -> String {
    let profile = FileManager.default.temporaryDirectory.appendingPathComponent("fpsim-chromium-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: profile) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(profile.path)"] + arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    _ = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
      throw CLIError("chromium failed (status \(p.terminationStatus)); bash scripts/install-deps.sh installs Debian's chromium")
    }
    return String(decoding: data, as: UTF8.self)
  }

  @Test func reportOfAGridRendersInChromiumWithTheFilesNumbers() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let (grid, _) = try Self.files(dir)
    let page = dir.appendingPathComponent("page.html").path
    let r = try CLI.run(["report", grid, "--out", page, "--tolerance", "0.05"])
    #expect(r.status == 0, "\(r.stderr)")
    let html = try String(contentsOfFile: page, encoding: .utf8)
    // Self-contained: nothing loaded from anywhere (the SVG namespace is a name, not a load).
    let stripped = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
    #expect(!stripped.contains("http://") && !stripped.contains("https://"))
    #expect(!html.contains("<script") && !html.contains("<link") && !html.contains("url("))
    #expect(html.contains("fpsim 0.1.0") && html.contains("fpsim report"))
    #expect(html.contains("Fewest bits within 0.050 nats of e8m7"))

    // The DOM as Chromium built it.
    let dom = dir.appendingPathComponent("dom.html").path
    try Self.browser(["--dump-dom", "file://" + page]).write(toFile: dom, atomically: true, encoding: .utf8)
    let shot = dir.appendingPathComponent("shot.png").path
    _ = try Self.browser(["--screenshot=\(shot)", "--window-size=1200,3000", "file://" + page])

    let check = try python("""
      import html.parser, json, sys
      import h5py, numpy as np
      from scipy import stats
      from PIL import Image

      class Dom(html.parser.HTMLParser):
          def __init__(self):
              super().__init__()
              self.svgs, self.tables, self.stack = [], {}, []
              self.table = None; self.row = None; self.cell = None
          def handle_starttag(self, tag, attrs):
              a = dict(attrs)
              if tag == 'svg': self.svgs.append(0); self.stack.append('svg')
              if self.stack and tag in ('path', 'polyline', 'rect', 'circle'): self.svgs[-1] += 1
              if tag == 'table': self.table = []; self.tables.setdefault(a.get('data-kind'), []).append(self.table)
              if tag == 'tr' and self.table is not None: self.row = []; self.table.append(self.row)
              if tag in ('td', 'th') and self.row is not None: self.cell = ''
          def handle_endtag(self, tag):
              if tag == 'svg' and self.stack: self.stack.pop()
              if tag in ('td', 'th') and self.cell is not None: self.row.append(self.cell.strip()); self.cell = None
              if tag == 'table': self.table = None
          def handle_data(self, d):
              if self.cell is not None: self.cell += d

      d = Dom(); d.feed(open('\(dom)').read())
      assert len(d.svgs) >= 8, len(d.svgs)
      assert all(n > 0 for n in d.svgs), d.svgs            # every plot has drawn elements
      for kind in ['curve-train', 'curve-eval', 'stability', 'bits', 'paired', 'bit-reduction', 'telemetry-flushed']:
          assert kind in d.tables, (kind, list(d.tables))

      f = h5py.File('\(grid)', 'r'); r = f['results']
      labels = [x.decode() if isinstance(x, bytes) else x for x in r['recipe'][()]]
      lrs = list(r['lr'][()]); steps = list(r['step'][()])
      ev = r['final_eval_loss'][()].astype(float); div = r['diverged'][()]; loss = r['loss'][()]
      def close(text, x):
          return abs(float(text) - x) <= 1e-5 * max(1.0, abs(x))
      checked = 0
      # Training curves: median, min, max over seeds at each listed step.
      t = d.tables['curve-train'][0]; head = t[0]
      for row in t[1:]:
          l = [i for i, x in enumerate(lrs) if close(row[0], x)][0]; s = steps.index(int(row[1]))
          for k, lab in enumerate(labels):
              v = loss[k, l, :, s].astype(float)
              assert head[2 + 3 * k] == lab + ' median'
              assert close(row[2 + 3 * k], np.median(v)) and close(row[3 + 3 * k], v.min()) and close(row[4 + 3 * k], v.max()), row
              checked += 3
      # Stability counts.
      for row in d.tables['stability'][0][1:]:
          k = labels.index(row[0]); l = [i for i, x in enumerate(lrs) if close(row[1], x)][0]
          assert int(row[3]) == int(div[k, l].sum()); checked += 1
      # Final validation loss against bits: mean and 95% t-interval over finished seeds.
      for row in d.tables['bits'][0][1:]:
          k = labels.index(row[0]); l = [i for i, x in enumerate(lrs) if close(row[3], x)][0]
          v = ev[k, l][(div[k, l] == 0) & np.isfinite(ev[k, l])]
          half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
          assert int(row[1]) == 16 - [0, 2, 4][k] and int(row[2]) == [0, 2, 4][k]
          assert close(row[5], v.mean()) and close(row[6], v.mean() - half) and close(row[7], v.mean() + half), row
          checked += 3
      # Paired differences to e8m7.
      for row in d.tables['paired'][0][1:]:
          k = labels.index(row[0]); l = [i for i, x in enumerate(lrs) if close(row[1], x)][0]
          if k == 0: assert row[-1] == 'baseline'; continue
          dd = ev[k, l] - ev[0, l]
          half = stats.t.ppf(0.975, len(dd) - 1) * dd.std(ddof=1) / np.sqrt(len(dd))
          assert close(row[5], dd.mean()) and close(row[6], dd.mean() - half) and close(row[7], dd.mean() + half), row
          assert row[8].startswith('within seed noise') == (dd.mean() - half <= 0 <= dd.mean() + half), row
          checked += 3

      # The screenshot is a drawn page, not a blank one.
      im = np.asarray(Image.open('\(shot)').convert('RGB'))
      colours = len(np.unique(im.reshape(-1, 3), axis=0))
      inked = float((im.sum(axis=2) < 600).mean())
      assert im.shape[0] >= 2000 and colours > 200 and inked > 0.02, (im.shape, colours, inked)
      print(checked, colours, round(inked, 3))
      """)
    let parts = check.split(separator: " ")
    #expect(parts.count == 3 && (Int(parts[0]) ?? 0) > 100, "\(check)")
  }

  @Test func reportOfRunFilesAndTheFigureScripts() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let (grid, run) = try Self.files(dir)
    let page = dir.appendingPathComponent("runs.html").path
    let r = try CLI.run(["report", run, run, "--out", page, "--log-steps"])
    #expect(r.status == 0, "\(r.stderr)")
    let html = try String(contentsOfFile: page, encoding: .utf8)
    #expect(html.contains("data-kind=\"histograms\"") && html.contains("data-kind=\"run-telemetry\""))
    #expect(html.contains("log scale"))
    // The Python figures from the same files: PNGs that exist and hold a drawing.
    let figs = dir.appendingPathComponent("figs").path
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let out = try python("""
      import subprocess, sys, os
      import numpy as np
      from PIL import Image
      root = '\(root.path)'
      subprocess.run([sys.executable, root + '/experiments/plots/grid_figures.py', '\(grid)', '--out', '\(figs)'], check=True, stdout=subprocess.DEVNULL)
      subprocess.run([sys.executable, root + '/experiments/plots/run_figures.py', '\(run)', '\(run)', '--out', '\(figs)'], check=True, stdout=subprocess.DEVNULL)
      names = ['loss', 'stability', 'final_eval', 'paired', 'run_loss', 'run_telemetry', 'run_histograms']
      for n in names:
          im = np.asarray(Image.open(os.path.join('\(figs)', n + '.png')).convert('RGB'))
          colours = len(np.unique(im.reshape(-1, 3), axis=0))
          assert im.shape[0] > 200 and im.shape[1] > 300 and colours > 30, (n, im.shape, colours)
      print(len(names))
      """)
    #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "7")
  }

  @Test func compareJSONMatchesScipyAndErrorsAreOneLine() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let (grid, run) = try Self.files(dir)
    let c = try CLI.run(["compare", grid, "--baseline", "e8m5", "--json"])
    #expect(c.status == 0, "\(c.stderr)")
    let jsonPath = dir.appendingPathComponent("c.json").path
    try c.stdout.write(toFile: jsonPath, atomically: true, encoding: .utf8)
    let check = try python("""
      import json, h5py, numpy as np
      from scipy import stats
      out = json.load(open('\(jsonPath)'))
      f = h5py.File('\(grid)', 'r'); r = f['results']
      labels = [x.decode() if isinstance(x, bytes) else x for x in r['recipe'][()]]
      lrs = list(r['lr'][()]); ev = r['final_eval_loss'][()].astype(float)
      b = labels.index('e8m5'); n = 0
      assert len(out['rows']) == len(labels) * len(lrs)
      for row in out['rows']:
          k = labels.index(row['label']); l = lrs.index(row['lr'])
          assert row['baseline'] == 'e8m5' and row['file'] == '\(grid)'
          if k == b: assert row['verdict'] == 'baseline'; continue
          dd = ev[k, l] - ev[b, l]
          half = stats.t.ppf(0.975, len(dd) - 1) * dd.std(ddof=1) / np.sqrt(len(dd))
          d = row['difference']
          assert abs(d['mean'] - dd.mean()) < 1e-9 and abs(d['low'] - (dd.mean() - half)) < 1e-9 and abs(d['high'] - (dd.mean() + half)) < 1e-9, row
          n += 1
      assert out['bit_reduction'][0]['answer']['baseline'] == 'e8m5'
      print(n)
      """)
    #expect(check.trimmingCharacters(in: .whitespacesAndNewlines) == "4")
    let text = try CLI.run(["compare", grid])
    #expect(text.status == 0 && text.stdout.contains("baseline") && text.stdout.contains("Fewest bits within 0.050 nats of e8m7"))

    // Errors: one line, status 2, no page left behind.
    let page = dir.appendingPathComponent("p.html").path
    for args in [
      ["report", dir.appendingPathComponent("missing.h5").path, "--out", page],
      ["report", grid, "--out", page, "--baseline", "e4m3"],
      ["report", grid, "--out", dir.appendingPathComponent("p.txt").path],
      ["compare", run],
      ["compare", grid, "--baseline", "nope"],
    ] {
      let e = try CLI.run(args)
      #expect(e.status == 2, "\(args): \(e.stderr)")
      #expect(e.stderr.hasPrefix("fpsim: error: ") && e.stderr.split(separator: "\n").count == 1, "\(args): \(e.stderr)")
      #expect(!FileManager.default.fileExists(atPath: page))
    }
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") }
    #expect(leftovers.isEmpty)
    if let made = Self.made { try? FileManager.default.removeItem(at: made.dir) }
    Self.made = nil
  }
}
