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

  /// A grid with `histograms = true` (2 recipes x 2 lrs x 2 seeds, 5 steps) and a run with
  /// `--histograms`: the report draws binade heat maps whose cells are, in the DOM as Chromium built
  /// it, the nonzero cells h5py and numpy compute from the file (for the grid: per recipe at its best
  /// learning rate, recomputed here from final_eval_loss and diverged, the mean over seeds of each
  /// seed's fraction per binade; for the run: the counts summed over the layers of each operand kind),
  /// and the screenshot shows the maps' dark cells.
  @Test func binadeHeatMapsOfAGridAndARunHoldTheFilesFractions() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try """
      model = "gpt-micro"
      recipes = ["mxfp4", "uniform:e4m3fn"]
      lrs = [3e-3, 3e-1]
      seeds = [0, 1]
      steps = 5
      eval_every = 5
      histograms = true
      """.write(to: dir.appendingPathComponent("spec.toml"), atomically: true, encoding: .utf8)
    let g = try CLI.run(["grid", dir.appendingPathComponent("spec.toml").path, "--out", dir.appendingPathComponent("g.h5").path, "--jobs", "2", "--data", dataDirectory])
    #expect(g.status == 0, "\(g.stderr)")
    let run = dir.appendingPathComponent("run.h5").path
    let t = try CLI.run(["train", "--model", "gpt-micro", "--recipe", "nvfp4", "--steps", "6", "--histograms", "--data", dataDirectory, "--out", run])
    #expect(t.status == 0, "\(t.stderr)")
    var doms: [String] = []
    for (name, file) in [("grid", dir.appendingPathComponent("g.h5").path), ("run", run)] {
      let page = dir.appendingPathComponent("\(name).html").path
      let r = try CLI.run(["report", file, "--out", page])
      #expect(r.status == 0, "\(r.stderr)")
      let dom = dir.appendingPathComponent("\(name)-dom.html").path
      try Self.browser(["--dump-dom", "file://" + page]).write(toFile: dom, atomically: true, encoding: .utf8)
      doms.append(dom)
    }
    let shot = dir.appendingPathComponent("grid.png").path
    _ = try Self.browser(["--screenshot=\(shot)", "--window-size=1280,5000", "file://" + dir.appendingPathComponent("grid.html").path])

    let check = try python("""
      import html.parser
      import h5py, numpy as np
      from PIL import Image

      class Dom(html.parser.HTMLParser):
          # Heat maps (<div class="heatmap">, holding one svg) with their cell and missing counts; tables by data-kind.
          def __init__(self):
              super().__init__()
              self.maps, self.tables, self.map = [], {}, None
              self.table = None; self.row = None; self.cell = None
          def handle_starttag(self, tag, attrs):
              a = dict(attrs)
              if tag == 'div' and 'heatmap' in (a.get('class') or '').split():
                  self.map = {'attrs': a, 'cells': 0, 'missing': 0, 'title': None}; self.maps.append(self.map)
              # A cell is one subpath (M...z) of a <path class="cell">, a grey column a <rect class="missing">.
              if tag == 'path' and self.map is not None and a.get('class') == 'cell': self.map['cells'] += a['d'].count('M')
              if tag == 'rect' and self.map is not None and a.get('class') == 'missing': self.map['missing'] += 1
              if tag == 'table': self.table = []; self.tables.setdefault(a.get('data-kind'), []).append(self.table)
              if tag == 'tr' and self.table is not None: self.row = []; self.table.append(self.row)
              if tag in ('td', 'th') and self.row is not None: self.cell = ''
          def handle_endtag(self, tag):
              if tag == 'div': self.map = None
              if tag in ('td', 'th') and self.cell is not None: self.row.append(self.cell.strip()); self.cell = None
              if tag == 'table': self.table = None
          def handle_data(self, d):
              if self.cell is not None: self.cell += d

      def close(text, x):
          return abs(float(text) - x) <= 1e-5 * max(1e-30, abs(x))

      # The grid: recipes at their best lr, mean over seeds of each seed's fractions.
      d = Dom(); d.feed(open('\(doms[0])').read())
      f = h5py.File('\(dir.path)/g.h5', 'r'); r = f['results']
      labels = [x.decode() if isinstance(x, bytes) else x for x in r['recipe'][()]]
      ops = [x.decode() if isinstance(x, bytes) else x for x in r['operand'][()]]
      lrs = list(r['lr'][()]); steps = list(r['step'][()]); binade = r['binade'][()]
      ev = r['final_eval_loss'][()].astype(float); div = r['diverged'][()]
      h = r['histogram'][()]
      assert h.ndim == 6 and len(d.maps) == len(labels) * len(ops), (h.shape, len(d.maps))
      want, lo, hi = {}, 10**9, -10**9
      for k, lab in enumerate(labels):
          ok = [l for l in range(len(lrs)) if not div[k, l].any() and np.isfinite(ev[k, l]).all()]
          l = min(ok, key=lambda l: (np.median(ev[k, l]), l))
          for o, op in enumerate(ops):
              for t in range(len(steps)):
                  rows = [h[k, l, s, t, o] for s in range(h.shape[2])]
                  rows = [x / x.sum() for x in rows if (x >= 0).all() and x.sum() > 0]
                  m = np.mean(rows, axis=0) if rows else None
                  want[(lab, op, t)] = (l, len(rows), m)
                  if m is not None:
                      nz = np.nonzero(m)[0]; lo = min(lo, nz[0]); hi = max(hi, nz[-1])
      checked = 0
      for mp in d.maps:
          lab, op = mp['attrs']['data-recipe'], mp['attrs']['data-operand']
          k = labels.index(lab)
          l = want[(lab, op, 0)][0]
          assert close(mp['attrs']['data-lr'], lrs[l]), (lab, mp['attrs'])
          cells = sum(int((want[(lab, op, t)][2] > 0).sum()) for t in range(len(steps)) if want[(lab, op, t)][2] is not None)
          assert mp['cells'] == cells and cells > 0, (lab, op, mp['cells'], cells)
          assert mp['missing'] == sum(want[(lab, op, t)][2] is None for t in range(len(steps))), (lab, op)
      tables = d.tables['grid-binades']
      assert len(tables) == len(labels)
      for k, lab in enumerate(labels):
          for row in tables[k][1:]:
              op, t = row[0], steps.index(int(row[1]))
              l, n, m = want[(lab, op, t)]
              assert int(row[2]) == n, row
              nz = np.nonzero(m)[0]
              assert int(row[3]) == binade[nz[0]] and int(row[4]) == binade[nz[-1]], row
              vals = row[5].split()
              assert len(vals) == nz[-1] - nz[0] + 1
              for b, text in zip(range(nz[0], nz[-1] + 1), vals):
                  assert close(text, m[b]) if m[b] > 0 else text == '0', (row, b)
                  checked += 1
      # The run: counts summed over the layers of each kind, one cell per nonzero (step, binade).
      d = Dom(); d.feed(open('\(doms[1])').read())
      hr = h5py.File('\(run)', 'r')['runs/run/metrics/histograms']
      names = [x.decode() if isinstance(x, bytes) else x for x in hr['operand'][()]]
      counts = hr['counts'][()].astype(np.int64)
      assert len(d.maps) == 6, len(d.maps)
      for mp in d.maps:
          op = mp['attrs']['data-operand']
          total = counts[[i for i, n in enumerate(names) if n.endswith('.' + op)]].sum(axis=0)
          assert mp['cells'] == int((total > 0).sum()) and mp['missing'] == int((total.sum(axis=1) == 0).sum()), (op, mp)
          checked += 1
      # Its table: one row per nonzero (operand kind, step, binade) with the summed count.
      for row in d.tables['binades'][0][1:]:
          total = counts[[i for i, n in enumerate(names) if n.endswith('.' + row[0])]].sum(axis=0)
          t = list(hr['step'][()]).index(int(row[1])); b = list(hr['binade'][()]).index(int(row[2]))
          assert int(row[3]) == total[t, b] > 0, row
          checked += 1
      # The screenshot shows the maps' dark cells (shades near #143278; no other ink on the page is that dark a blue).
      im = np.asarray(Image.open('\(shot)').convert('RGB')).astype(int)
      dark = int(((im[..., 0] < 60) & (im[..., 1] < 90) & (im[..., 2] > 90)).sum())
      assert dark > 500, dark
      print(checked, lo <= hi)
      """)
    let parts = check.split(separator: " ")
    #expect(parts.count == 2 && (Int(parts[0]) ?? 0) > 100 && parts[1].hasPrefix("True"), "\(check)")
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
