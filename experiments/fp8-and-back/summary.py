"""The numbers behind every claim of the FP8 study, from the committed (exported) grid files only.

    python3 experiments/fp8-and-back/summary.py experiments/fp8-and-back/results

Reads mantissa.h5, exponent.h5 and rounding.h5 with xarray (nothing of fpsim's code) and prints one
markdown section per claim. Statistics: mean over seeds with a 95% Student-t interval; differences are
paired by seed (same seed = same initialization and data order, in any of the three grids) and only
over seeds where both runs finished without diverging; "within noise" when the interval holds 0.
"""
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats

ALARM_FACTOR = 2.0  # sharpness alarm: above this multiple of the run's first post-warmup value
RISE = 0.5  # nats: the training loss "starts to rise" when it first exceeds its running minimum by this
TOLERANCE = 0.05  # nats: "as good as bfloat16" when the paired interval lies below this


def open_grid(path):
    """A grid's /results, its first dimension named `format` in the grids of formats: the committed files
    (grid schema_version 1) name it so; a grid rerun by a newer fpsim (version 2) names it `recipe`
    and says `label_kind = "format"`."""
    ds = xr.open_dataset(path, group="results", engine="h5netcdf")
    return ds.rename(recipe="format") if ds.attrs.get("label_kind") == "format" else ds


def open_results(folder, name):
    return open_grid(Path(folder) / f"{name}.h5")


def interval(values):
    """Mean and 95% t-interval half-width of the finite values (None when fewer than two)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return (float(v.mean()) if len(v) else float("nan")), None, len(v)
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half), len(v)


def fmt(mean, half, n):
    """A mean and its interval, with the number of seeds it rests on."""
    if not np.isfinite(mean):
        return "-"
    return f"{mean:.3f}" + (f" ± {half:.3f}" if half is not None else "") + f" (n={n})"


def paired(a, b):
    """a - b over seeds where both finished (final loss finite, not diverged): text and verdict."""
    mean, half, n = interval(np.asarray(a, float) - np.asarray(b, float))
    if n == 0:
        return "no finished pair", "-"
    if half is None:
        return f"{mean:+.3f} (one pair)", "one pair"
    lo, hi = mean - half, mean + half
    verdict = "within noise" if lo <= 0 <= hi else ("worse" if lo > 0 else "better")
    return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}] (n={n})", verdict


def finished(ds, **cell):
    """Final validation loss where the run neither diverged nor blew up, else NaN."""
    loss = ds.final_eval_loss.sel(**cell).values.astype(float)
    ok = ds.diverged.sel(**cell).values == 0
    return np.where(ok, loss, np.nan)


def status_names(ds):
    meanings = ds.status.attrs["flag_meanings"].split()
    values = list(ds.status.attrs["flag_values"])
    return {v: meanings[i] for i, v in enumerate(values)}


def unstable(ds, **cell):
    """Seeds that diverged or blew up (status 1 or 2), as "k/n"."""
    s = ds.status.sel(**cell).values
    return f"{int(np.isin(s, [1, 2]).sum())}/{s.size}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def claim1(m):
    print("## Claim 1: fewer mantissa bits, less stable training (mantissa.h5, truncation)\n")
    print("Unstable runs (diverged or blew up) of the seeds, of them diverged, and loss spikes per run (mean):\n")
    rows = []
    for f in m.format.values:
        row = [f]
        for lr in m.lr.values:
            s = m.status.sel(format=f, lr=lr).values
            spikes = m.spikes.sel(format=f, lr=lr).values.mean()
            row.append(f"{int(np.isin(s, [1, 2]).sum())}/{len(s)} div {int((s == 1).sum())}, spikes {spikes:.1f}")
        rows.append(row)
    print(table(["format"] + [f"lr {lr:g}" for lr in m.lr.values], rows))
    print("\nFinal validation loss, mean ± 95% interval over the seeds that did not diverge (nats):\n")
    rows = [[f] + [fmt(*interval(finished(m, format=f, lr=lr))) for lr in m.lr.values] for f in m.format.values]
    print(table(["format"] + [f"lr {lr:g}" for lr in m.lr.values], rows))
    print("\nSeed-paired difference to e8m7 (nats; positive = worse than bfloat16), 95% interval:\n")
    base = m.format.values[0]
    rows = []
    for f in m.format.values[1:]:
        row = [f]
        for lr in m.lr.values:
            text, verdict = paired(finished(m, format=f, lr=lr), finished(m, format=base, lr=lr))
            row.append(f"{text} {verdict}")
        rows.append(row)
    print(table(["format"] + [f"lr {lr:g}" for lr in m.lr.values], rows))
    print()


def claim2(m):
    print("## Claim 2: reduced precision narrows the range of good learning rates (mantissa.h5)\n")
    print("Per format: learning rates where every seed learned (status learned), and where the")
    print(f"seed-paired difference to e8m7 at that learning rate is below {TOLERANCE} nats with 95% confidence:\n")
    base = m.format.values[0]
    names = status_names(m)
    rows = []
    for f in m.format.values:
        stable, close = [], []
        for lr in m.lr.values:
            s = m.status.sel(format=f, lr=lr).values
            if all(names[int(v)] == "learned" for v in s):
                stable.append(f"{lr:g}")
            d = finished(m, format=f, lr=lr) - finished(m, format=base, lr=lr)
            mean, half, n = interval(d)
            if n == len(m.seed) and half is not None and mean + half < TOLERANCE:
                close.append(f"{lr:g}")
        rows.append([f, ", ".join(stable) or "none", ", ".join(close) or "none"])
    print(table(["format", "stable learning rates", f"within {TOLERANCE} nats of e8m7"], rows))
    print()


def claim3(m, e):
    print("## Claim 3: exponent cuts destabilize more than mantissa cuts (exponent.h5, lr 0.01)\n")
    lr = float(e.lr.values[0])
    base_m = m.loss.sel(format="e8m7", lr=lr).values
    base_e = e.loss.sel(recipe="uniform:e8m7:rtz", lr=lr).values
    same = base_m.shape == base_e.shape and base_m.tobytes() == base_e.tobytes()
    print(f"Check: e8m7 at lr {lr:g} in mantissa.h5 and exponent.h5 are {'identical bit for bit' if same else 'DIFFERENT'} (same seeds, same runs).\n")
    base = finished(e, recipe="uniform:e8m7:rtz", lr=lr)
    rows = []
    for cut, (exp_fmt, man_fmt) in [(3, ("e5m7", "e8m4")), (4, ("e4m7", "e8m3"))]:
        for label, recipe in [(exp_fmt, f"uniform:{exp_fmt}:rtz"), (exp_fmt + " + loss scaling", f"uniform:{exp_fmt}:rtz:loss-scale=dynamic")]:
            x = finished(e, recipe=recipe, lr=lr)
            text, verdict = paired(x, base)
            rows.append([f"{cut} exponent bits: {label}", unstable(e, recipe=recipe, lr=lr),
                         fmt(*interval(x)), f"{text} {verdict}"])
        x = finished(m, format=man_fmt, lr=lr)
        text, verdict = paired(x, base)
        rows.append([f"{cut} mantissa bits: {man_fmt}", unstable(m, format=man_fmt, lr=lr),
                     fmt(*interval(x)), f"{text} {verdict}"])
    print(table(["bits removed", "unstable", "final eval loss", "paired difference to e8m7"], rows))
    print("\nLoss scale at the end and skipped steps are in each run's metrics (runs/<id>/metrics/loss_scale, skipped).\n")


def loss_rise(loss, after):
    """The first step (1-based) after `after` where the training loss exceeds its running minimum so far
    by more than RISE nats, or None."""
    lowest = np.inf
    for t, v in enumerate(loss, start=1):
        if not np.isfinite(v):
            return t if t > after else None
        if t > after and v > lowest + RISE:
            return t
        lowest = min(lowest, v)
    return None


def claim4(m):
    print("## Claim 4: last-token-logit sharpness rises before divergence (mantissa.h5, keskar-logits)\n")
    sharp = m.sharpness_keskar_logits
    steps = sharp.sharpness_step.values
    print(f"Alarm: the first measurement above {ALARM_FACTOR:g}x the run's first one (step {steps[0]}), measured every {steps[1] - steps[0]} steps.\n")
    leads, diverged_runs, false_alarms, quiet_runs, alarm_cells = [], 0, 0, 0, {}
    rows = []
    for f in m.format.values:
        for lr in m.lr.values:
            for seed in m.seed.values:
                series = sharp.sel(format=f, lr=lr, seed=seed).values
                first = series[0]
                alarm = next((int(s) for s, v in zip(steps, series) if np.isfinite(v) and np.isfinite(first) and v > ALARM_FACTOR * first), None)
                status = int(m.status.sel(format=f, lr=lr, seed=seed))
                if status == 1:
                    diverged_runs += 1
                    d = int(m.diverged_step.sel(format=f, lr=lr, seed=seed))
                    rise = loss_rise(m.loss.sel(format=f, lr=lr, seed=seed).values, after=int(steps[0]))
                    lead = None if alarm is None else d - alarm
                    lead_rise = None if alarm is None or rise is None else rise - alarm
                    if lead is not None:
                        leads.append((lead, lead_rise))
                    rows.append([f, f"{lr:g}", int(seed), rise if rise is not None else "-", d,
                                 alarm if alarm is not None else "none", lead if lead is not None else "-",
                                 lead_rise if lead_rise is not None else "-"])
                else:
                    quiet_runs += 1
                    if alarm is not None:
                        false_alarms += 1
                        alarm_cells[(f, float(lr))] = alarm_cells.get((f, float(lr)), 0) + 1
    if rows:
        print(f"Loss rise: the first step after {steps[0]} where the training loss is {RISE:g} nats above its running minimum;")
        print("diverged at: the divergence rule's step (smoothed loss, patience), which lags the rise.\n")
        print(table(["format", "lr", "seed", "loss rise at", "diverged at", "alarm at", "lead to divergence", "lead to loss rise"], rows))
    before = [x for x, _ in leads if x > 0]
    before_rise = [y for _, y in leads if y is not None and y > 0]
    print(f"\nDiverged runs: {diverged_runs}; alarm before the divergence step: {len(before)}"
          f" (median lead {np.median(before) if before else float('nan'):.0f} steps); alarm before the loss rise: {len(before_rise)}"
          f" (median lead {np.median(before_rise) if before_rise else float('nan'):.0f} steps).")
    print(f"Runs that did not diverge: {quiet_runs}; alarms among them: {false_alarms}"
          f" ({100 * false_alarms / max(quiet_runs, 1):.0f}%)"
          + (", in " + ", ".join(f"{f} lr {lr:g} ({n})" for (f, lr), n in sorted(alarm_cells.items())) if alarm_cells else "") + ".\n")
    print("Median sharpness over seeds at the last measured step, per format and learning rate:\n")
    def last_value(series):
        finite = series[np.isfinite(series)]
        return finite[-1] if len(finite) else np.nan
    rows = [[f] + [f"{np.nanmedian([last_value(sharp.sel(format=f, lr=lr, seed=s).values) for s in m.seed.values]):.3g}"
                   for lr in m.lr.values] for f in m.format.values]
    print(table(["format"] + [f"lr {lr:g}" for lr in m.lr.values], rows))
    print()


def rounding(m, r):
    print("## Rounding: is truncation the culprit? (rounding.h5 against mantissa.h5's rtz runs)\n")
    rows = []
    for f in ["e8m3", "e8m1"]:
        for lr in r.lr.values:
            rtz = finished(m, format=f, lr=lr)
            row = [f, f"{lr:g}", unstable(m, format=f, lr=lr), fmt(*interval(rtz))]
            for mode in ["rne", "stochastic"]:
                recipe = f"uniform:{f}:{mode}"
                x = finished(r, recipe=recipe, lr=lr)
                text, verdict = paired(x, rtz)
                row += [unstable(r, recipe=recipe, lr=lr), fmt(*interval(x)), f"{text} {verdict}"]
            rows.append(row)
    print(table(["format", "lr", "rtz unstable", "rtz loss", "rne unstable", "rne loss", "rne - rtz",
                 "stochastic unstable", "stochastic loss", "stochastic - rtz"], rows))
    print("\nEach rounding against bfloat16 (e8m7, truncated, in mantissa.h5), seed-paired:\n")
    rows = []
    for f in ["e8m3", "e8m1"]:
        for lr in r.lr.values:
            base = finished(m, format="e8m7", lr=lr)
            row = [f, f"{lr:g}"]
            for mode in ["rtz", "rne", "stochastic"]:
                x = finished(m, format=f, lr=lr) if mode == "rtz" else finished(r, recipe=f"uniform:{f}:{mode}", lr=lr)
                text, verdict = paired(x, base)
                row.append(f"{text} {verdict}")
            rows.append(row)
    print(table(["format", "lr", "rtz - e8m7", "rne - e8m7", "stochastic - e8m7"], rows))
    print()


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "results")
    m = open_results(folder, "mantissa")
    e = open_results(folder, "exponent")
    r = open_results(folder, "rounding")
    print(f"# FP8 study summary (gpt-tiny, {m.step.size} steps, seeds {list(map(int, m.seed.values))})\n")
    claim1(m)
    claim2(m)
    claim3(m, e)
    claim4(m)
    rounding(m, r)


if __name__ == "__main__":
    main()
