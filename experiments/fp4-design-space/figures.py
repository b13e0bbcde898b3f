"""The README's figures, from the committed (exported) grid files only.

    python3 experiments/fp4-design-space/figures.py experiments/fp4-design-space/results experiments/fp4-design-space/figures

Writes differences.png (every recipe of placement, tensor-scaled and llama: its seed-paired difference
to fp32 with its 95% interval),
factorial.png (the 24 factorial configurations, likewise, by scale format), effects.png (the factor
effects of the regression in summary.py), curves.png (validation loss over steps) and
scale_underflow.png (fraction of gradient blocks whose scale underflowed, over steps). Statistics come
from summary.py, so the figures and the tables agree.
"""
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import summary as S  # noqa: E402


def diff_interval(df, model, a, b="fp32"):
    la, lb = S.losses(df, model, a), S.losses(df, model, b)
    m, h, n = S.interval((la - lb).dropna())
    return m, (h if h is not None else 0.0), n


def forest(ax, labels, rows, title, colors=None):
    """Horizontal points with 95% intervals; a vertical line at 0 (no difference)."""
    y = np.arange(len(labels))[::-1]
    for i, (m, h, _) in enumerate(rows):
        c = (colors or {}).get(i, "C0")
        ax.errorbar(m, y[i], xerr=h, fmt="o", color=c, capsize=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def short(recipe):
    return recipe.replace("fp4:", "").replace("scale=", "").replace(",block=", "/").replace("sr=off,hadamard=off", "plain")


def main(folder, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df, _ = S.runs(folder)

    # 1. Every placement and llama recipe against fp32.
    fig, axes = plt.subplots(1, 2, figsize=(13, 7), gridspec_kw=dict(width_ratios=[3, 2]))
    for ax, model in zip(axes, ["gpt-tiny", "llama-tiny"]):
        grids = ["placement", "tensor-scaled"] if model == "gpt-tiny" else ["llama"]
        recipes = [r for r in dict.fromkeys(df[df.grid.isin(grids)].recipe) if r != "fp32"]
        forest(ax, [short(r) for r in recipes], [diff_interval(df, model, r) for r in recipes],
               f"{model}: final eval loss - fp32\n(nats, 95% CI over 5 seeds)")
    fig.tight_layout()
    fig.savefig(out / "differences.png", dpi=110)
    plt.close(fig)

    # 2. The factorial, sorted, colored by scale format.
    _, _, f, _ = S.factorial_table(df)
    colors = {"ue8m0": "C0", "ue4m3": "C3", "ue5m3": "C2"}
    fig, ax = plt.subplots(figsize=(9, 8))
    labels = [f"{x.scale} T={x.T} R={x.R} S={x.S} H={x.H}" for x in f.itertuples()]
    forest(ax, labels, [diff_interval(df, "gpt-tiny", r) for r in f.recipe],
           "gpt-tiny factorial: final eval loss - fp32 (nats, 95% CI; 3 or 5 seeds)",
           {i: colors[s] for i, s in enumerate(f.scale)})
    ax.set_xscale("symlog", linthresh=0.05)
    fig.tight_layout()
    fig.savefig(out / "factorial.png", dpi=110)
    plt.close(fig)

    # 3. Factor effects, overall and within each scale format.
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5), sharey=False)
    sets = S.factor_sets(list(f.recipe))
    for ax, (title, recipes, factors) in zip(axes, sets):
        names, beta, half, _, _ = S.effects(df, recipes, factors)
        forest(ax, names, list(zip(beta, half, [0] * len(beta))), f"effect on loss, {title}")
    fig.tight_layout()
    fig.savefig(out / "effects.png", dpi=110)
    plt.close(fig)

    # 4. Validation loss over steps, mean over seeds.
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for ax, (grid, recipes) in zip(axes, [
        ("placement", ["fp32", "bf16", "mxfp4", "nvfp4", S.PLAIN]),
        ("tensor-scaled", ["fp32", S.SCALED, S.SCALED.replace("sr=off", "sr=all"), S.SCALED.replace("hadamard=off", "hadamard=all")]),
        ("factorial", ["fp32"] + [f"fp4:scale={s},block={b},tensor-scale=off,scale-rounding=nearest,sr=off,hadamard=off"
                                  for s, b in [("ue8m0", 32), ("ue4m3", 16), ("ue5m3", 16)]]),
    ]):
        ds = S.open_results(folder, grid).isel(lr=0)
        for r in recipes:
            ax.plot(ds.eval_step, ds.eval_loss.sel(recipe=r).mean("seed"), marker="o", ms=3, label=short(r))
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss (nats), mean over seeds")
        ax.set_title(f"gpt-tiny, {grid}.h5", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)

    # 5. Gradient blocks whose scale underflowed, over steps, per scale format (no tensor scale).
    ds = S.open_results(folder, "factorial").isel(lr=0)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, op in zip(axes, ["dgrad_dy", "wgrad_dy"]):
        for s, b in [("ue8m0", 32), ("ue4m3", 16), ("ue5m3", 16)]:
            for t, style in [("off", "-"), ("on", "--")]:
                r = f"fp4:scale={s},block={b},tensor-scale={t},scale-rounding={'nearest' if t == 'off' else 'up'},sr=off,hadamard=off"
                if r in ds.recipe.values:
                    ax.plot(ds.step, 100 * ds.scale_underflow.sel(recipe=r, operand=op).mean("seed"), style,
                            color=colors[s], label=f"{s}/{b}, tensor scale {t}")
        ax.set_xlabel("step")
        ax.set_ylabel("% of nonzero blocks, mean over layers and seeds")
        ax.set_title(f"{op}: block scale underflowed to 0", fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "scale_underflow.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
