"""The FP8 study's figures (PNG, for the README), from the committed grid files with xarray and matplotlib.

    python3 experiments/fp8-and-back/figures.py experiments/fp8-and-back/results experiments/fp8-and-back/figures

One figure per claim; the numbers under each are printed by summary.py.
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from summary import ALARM_FACTOR, finished, interval, open_results


def save(fig, folder, name):
    fig.tight_layout()
    fig.savefig(Path(folder) / name, dpi=90)
    plt.close(fig)


def mantissa_loss(m, out):
    """Claim 1: final validation loss against mantissa bits, one line per learning rate."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bits = m.mantissa_bits.values
    for lr in m.lr.values:
        stats = [interval(finished(m, format=f, lr=lr)) for f in m.format.values]
        mean = np.array([s[0] for s in stats])
        half = np.array([s[1] if s[1] is not None else np.nan for s in stats])
        ax.errorbar(bits, mean, yerr=half, marker="o", capsize=3, label=f"lr {lr:g}")
        for b, f in zip(bits, m.format.values):
            n_unstable = int(np.isin(m.status.sel(format=f, lr=lr).values, [1, 2]).sum())
            if n_unstable:
                ax.annotate(f"{n_unstable}x", (b, mean[list(m.format.values).index(f)]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axhline(float(m.attrs["chance_loss"]), color="gray", ls=":", lw=1, label="unigram (chance)")
    ax.invert_xaxis()
    ax.set_xlabel("mantissa bits (e8mY, truncation)")
    ax.set_ylabel("final validation loss (nats)")
    ax.set_title("Mantissa cuts: mean and 95% interval over seeds\n(Nx: runs that diverged or blew up)", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out, "claim1_mantissa_loss.png")


def stability_map(m, out):
    """Claim 2: the fraction of seeds that learned, format x learning rate."""
    meanings = m.status.attrs["flag_meanings"].split()
    learned = meanings.index("learned")
    frac = (m.status == m.status.attrs["flag_values"][learned]).mean("seed").values
    fig, ax = plt.subplots(figsize=(5, 3.4))
    im = ax.imshow(frac, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(m.lr.size), [f"{lr:g}" for lr in m.lr.values])
    ax.set_yticks(range(m.format.size), m.format.values)
    for i in range(frac.shape[0]):
        for j in range(frac.shape[1]):
            ax.text(j, i, f"{frac[i, j]:.1f}", ha="center", va="center", color="w" if frac[i, j] < 0.6 else "k", fontsize=8)
    ax.set_xlabel("peak learning rate")
    ax.set_title("Fraction of seeds that learned", fontsize=9)
    fig.colorbar(im, ax=ax)
    save(fig, out, "claim2_stability_map.png")


def exponent_curves(e, out):
    """Claim 3: validation loss over steps for the exponent cuts, with and without loss scaling."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    steps = e.eval_step.values
    for recipe in e.recipe.values:
        curve = e.eval_loss.sel(recipe=recipe).isel(lr=0).median("seed").values
        style = "--" if "loss-scale" in str(recipe) else "-"
        ax.plot(steps, curve, style, marker=".", label=str(recipe).replace("uniform:", "").replace(":loss-scale=dynamic", " + loss scaling"))
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats), median over seeds")
    ax.set_title(f"Exponent cuts at lr {float(e.lr.values[0]):g}", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out, "claim3_exponent_curves.png")


def sharpness_curves(m, out):
    """Claim 4: keskar-logits sharpness over steps, runs that diverged (red) and the others (gray),
    at the learning rates where some run diverged; each relative to its first measurement."""
    sharp = m.sharpness_keskar_logits
    steps = sharp.sharpness_step.values
    fig, ax = plt.subplots(figsize=(6, 3.6))
    drawn = set()
    for f in m.format.values:
        for lr in m.lr.values:
            for seed in m.seed.values:
                series = sharp.sel(format=f, lr=lr, seed=seed).values
                if not np.isfinite(series[0]) or series[0] == 0:
                    continue
                diverged = int(m.status.sel(format=f, lr=lr, seed=seed)) == 1
                label = ("diverged" if diverged else "did not diverge") if diverged not in drawn else None
                drawn.add(diverged)
                ax.plot(steps, series / series[0], color="tab:red" if diverged else "0.7", lw=1.2 if diverged else 0.5,
                        alpha=1 if diverged else 0.5, label=label, zorder=3 if diverged else 1)
                if diverged:
                    d = int(m.diverged_step.sel(format=f, lr=lr, seed=seed))
                    ax.axvline(d, color="tab:red", lw=0.4, ls=":")
    ax.axhline(ALARM_FACTOR, color="k", lw=0.8, ls="--", label=f"alarm: {ALARM_FACTOR:g}x the first value")
    ax.set_yscale("log")
    ax.set_xlabel("step (dotted: divergence)")
    ax.set_ylabel("sharpness / its first value")
    ax.set_title("Last-token-logit sharpness (keskar-logits) during training", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out, "claim4_sharpness.png")


def rounding_bars(m, r, out):
    """Rounding: final validation loss of rtz, rne and stochastic at the same bits and learning rate."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    cells = [(f, lr) for f in ["e8m3", "e8m1"] for lr in r.lr.values]
    width = 0.25
    for k, mode in enumerate(["rtz", "rne", "stochastic"]):
        means, halves = [], []
        for f, lr in cells:
            x = finished(m, format=f, lr=lr) if mode == "rtz" else finished(r, recipe=f"uniform:{f}:{mode}", lr=lr)
            mean, half, _ = interval(x)
            means.append(mean)
            halves.append(half if half is not None else 0)
        ax.bar(np.arange(len(cells)) + (k - 1) * width, means, width, yerr=halves, capsize=2, label=mode)
    ax.set_xticks(range(len(cells)), [f"{f}\nlr {lr:g}" for f, lr in cells])
    ax.set_ylim(bottom=min(2.0, ax.get_ylim()[0]))
    ax.set_ylabel("final validation loss (nats)")
    ax.set_title("Same bits, three roundings (mean, 95% interval; diverged runs left out)", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, out, "rounding.png")


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "results")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).parent / "figures")
    out.mkdir(parents=True, exist_ok=True)
    m, e, r = (open_results(results, n) for n in ["mantissa", "exponent", "rounding"])
    mantissa_loss(m, out)
    stability_map(m, out)
    exponent_curves(e, out)
    sharpness_curves(m, out)
    rounding_bars(m, r, out)
    print(f"figures in {out}")


if __name__ == "__main__":
    main()
