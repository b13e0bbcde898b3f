"""The numbers behind every claim of the FP4 study, from the committed (exported) grid files only.

    python3 experiments/fp4-design-space/summary.py experiments/fp4-design-space/results

Reads placement.h5, factorial.h5, tensor-scaled.h5, leaders.h5 and llama.h5 with xarray (nothing of fpsim's code) and
prints one markdown section per claim.

Statistics. Every run is one (model, recipe, seed); a seed fixes the initialization, the data order
and the stochastic-rounding stream, so runs with the same model and seed are paired wherever they
are. A run that appears in two grids (fp32 in every gpt-tiny grid) must be the same bits in both;
this is checked. Means carry a 95% Student-t interval over
seeds; a difference is paired by seed, over seeds where both runs finished without diverging, and is
"within noise" when its 95% interval holds 0.

The paper's score of a configuration c (Hu et al. 2025, as this study reads it):
    score(c) = ((median - loss(c)) / median) / complexity(c)
where median is the median final loss over all FP4 configurations of the factorial, loss(c) the
configuration's mean over seeds, and complexity(c) = 1 + the number of techniques it turns on beyond
plain MXFP4-style FP4 (a non-UE8M0 scale, tensor scaling, scale rounding up, stochastic rounding,
Hadamard). Higher is better; negative means worse than the median configuration.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

GRIDS = {"placement": "gpt-tiny", "factorial": "gpt-tiny", "tensor-scaled": "gpt-tiny", "leaders": "gpt-tiny",
         "llama": "llama-tiny"}
PLAIN = "fp4:scale=ue5m3,block=16,sr=off,hadamard=off"
SCALED = "fp4:scale=ue5m3,block=16,tensor-scale=on,sr=off,hadamard=off"
STATUS = ["learned", "diverged", "blew_up", "at_chance", "worse_than_baseline", "worse_than_best_lr"]
OPERANDS = ["fwd_x", "fwd_w", "dgrad_dy", "dgrad_w", "wgrad_dy", "wgrad_x"]


def open_results(folder, name):
    return xr.open_dataset(Path(folder) / f"{name}.h5", group="results", engine="h5netcdf")


def settings(recipe):
    """The key=value settings of an fp4 recipe string, with the fp4 preset's defaults filled in."""
    s = {"scale": "ue5m3", "block": "16", "tensor-scale": "off", "scale-rounding": "nearest",
         "sr": "on", "hadamard": "on", "layers": "all", "estimator": "ste"}
    if recipe.startswith("fp4:"):
        s.update(kv.split("=", 1) for kv in recipe[4:].split(","))
    return s


def runs(folder):
    """One row per (model, recipe, seed): final losses, status and the grid it came from."""
    rows = []
    for grid, model in GRIDS.items():
        if not (Path(folder) / f"{grid}.h5").exists():
            continue  # leaders.h5 comes last; the tables say how many seeds each mean rests on
        ds = open_results(folder, grid).isel(lr=0)
        for recipe in ds.recipe.values:
            for seed in ds.seed.values:
                cell = ds.sel(recipe=recipe, seed=seed)
                rows.append(dict(grid=grid, model=model, recipe=str(recipe), seed=int(seed),
                                 final=float(cell.final_eval_loss), diverged=int(cell.diverged),
                                 status=int(cell.status), spikes=int(cell.spikes),
                                 curve=cell.eval_loss.values.tobytes()))
    df = pd.DataFrame(rows)
    # The same (model, recipe, seed) in two grids must be the same run, bit for bit.
    twins = df.groupby(["model", "recipe", "seed"])
    clashes = [k for k, g in twins if g.curve.nunique() > 1]
    if clashes:
        sys.exit(f"summary: runs that should be identical differ: {clashes}")
    shared = sum(1 for _, g in twins if len(g) > 1)
    return df.drop_duplicates(["model", "recipe", "seed"]).drop(columns="curve"), shared


def interval(values):
    """Mean, 95% t-interval half-width (None below two values) and count of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return (float(v.mean()) if len(v) else float("nan")), None, len(v)
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))), len(v)


def losses(df, model, recipe):
    """Seed -> final validation loss of runs that did not diverge (NaN where they did)."""
    d = df[(df.model == model) & (df.recipe == recipe)].set_index("seed")
    return d.final.where(d.diverged == 0)


def mean_text(s):
    m, h, n = interval(s)
    return "-" if not np.isfinite(m) else f"{m:.3f}" + (f" ± {h:.3f}" if h is not None else "") + f" (n={n})"


def paired(df, model, a, b):
    """loss(a) - loss(b) paired by seed: (text, verdict, mean)."""
    la, lb = losses(df, model, a), losses(df, model, b)
    m, h, n = interval((la - lb).dropna())
    if n == 0:
        return "no finished pair", "-", np.nan
    if h is None:
        return f"{m:+.3f} (one pair)", "one pair", m
    lo, hi = m - h, m + h
    verdict = "within noise" if lo <= 0 <= hi else ("worse" if lo > 0 else "better")
    return f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}] (n={n})", verdict, m


def status_text(df, model, recipe):
    """How many runs ended in each status other than learned, e.g. `5/5 at_chance`; `learned` when all did."""
    d = df[(df.model == model) & (df.recipe == recipe)]
    bad = [f"{int((d.status == i).sum())}/{len(d)} {name}" for i, name in enumerate(STATUS) if i and (d.status == i).any()]
    return ", ".join(bad) if bad else f"{len(d)}/{len(d)} learned"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def against(df, model, recipes, base, names=None):
    """Rows: recipe, diverged, mean loss, paired difference to base (and to fp32 when base is not fp32)."""
    names = names or {}
    rows = []
    for r in recipes:
        row = [names.get(r, r), status_text(df, model, r), mean_text(losses(df, model, r))]
        for b in dict.fromkeys([base, "fp32"]):
            row += list(paired(df, model, r, b)[:2]) if r != b else ["-", "-"]
        rows.append(row)
    header = ["recipe", "status", "final eval loss", f"- {names.get(base, base)}, 95% CI", "verdict"]
    if base != "fp32":
        header += ["- fp32, 95% CI", "verdict"]
    return table(header, rows)


def tensor_scaled(s):
    """Whether a tensor scale acts: with UE8M0 (power-of-two scales, the floor/ceil rules) fpsim's
    tensor scale changes nothing (`fpsim quantize` gives the same bits with and without it), since
    UE8M0 already spans float32's exponents."""
    return s["tensor-scale"] == "on" and s["scale"] != "ue8m0"


def complexity(s):
    return 1 + sum([s["scale"] != "ue8m0", tensor_scaled(s), s["scale-rounding"] == "up",
                    s["sr"] != "off", s["hadamard"] != "off"])


# The factorial's factors as indicators, for the regressions in summary and figures.
TECHNIQUES = {"tensor scale on": tensor_scaled, "scale rounding up": lambda s: s["scale-rounding"] == "up",
              "sr=all": lambda s: s["sr"] == "all", "hadamard=all": lambda s: s["hadamard"] == "all"}
SCALES = {"scale ue4m3 (vs ue8m0/32)": lambda s: s["scale"] == "ue4m3",
          "scale ue5m3 (vs ue8m0/32)": lambda s: s["scale"] == "ue5m3"}


def factor_sets(recipes):
    """(title, recipes, factors) for the pooled regression and one per scale format. Within UE8M0 the
    tensor scale does nothing, so its indicator is left out there: the half fraction then holds every
    combination of the other three, and T = R xor S xor H carries only their three-way interaction."""
    sets = [("all 24 configurations", recipes, {**SCALES, **TECHNIQUES})]
    for scale in ["ue8m0", "ue4m3", "ue5m3"]:
        own = [r for r in recipes if settings(r)["scale"] == scale]
        factors = {k: f for k, f in TECHNIQUES.items() if scale != "ue8m0" or k != "tensor scale on"}
        sets.append((f"within {scale}", own, factors))
    return sets


def factorial_table(df):
    recipes = [r for r in df[df.grid.isin(["factorial", "leaders"])].recipe.unique() if r != "fp32"]
    means = {r: interval(losses(df, "gpt-tiny", r))[0] for r in recipes}
    median = float(np.nanmedian(list(means.values())))
    rows = []
    for r in recipes:
        s = settings(r)
        diff = paired(df, "gpt-tiny", r, "fp32")
        score = (median - means[r]) / median / complexity(s) if np.isfinite(means[r]) else np.nan
        rows.append(dict(recipe=r, scale=s["scale"], T=s["tensor-scale"] + ("" if tensor_scaled(s) or s["tensor-scale"] == "off" else " (no-op)"), R=s["scale-rounding"], S=s["sr"],
                         H=s["hadamard"], diverged=status_text(df, "gpt-tiny", r),
                         loss=mean_text(losses(df, "gpt-tiny", r)), diff=diff[0], verdict=diff[1],
                         mean_diff=diff[2], score=score, complexity=complexity(s)))
    f = pd.DataFrame(rows)
    f["rank_score"] = f.score.rank(ascending=False, method="min").astype("Int64")
    f["rank_diff"] = f.mean_diff.rank(ascending=True, method="min").astype("Int64")
    f = f.sort_values("rank_diff")
    out = table(["scale", "tensor scale", "scale rounding", "sr", "hadamard", "status", "final eval loss",
                 "- fp32, 95% CI", "verdict", "complexity", "paper score", "rank (score)", "rank (- fp32)"],
                [[x.scale, x.T, x.R, x.S, x.H, x.diverged, x.loss, x.diff, x.verdict, x.complexity,
                  f"{x.score:+.4f}", x.rank_score, x.rank_diff] for x in f.itertuples()])
    rho = stats.spearmanr(f.score, -f.mean_diff, nan_policy="omit")
    return out, median, f, rho


def effects(df, recipes, factors):
    """OLS of final loss on factor indicators plus one indicator per seed (the pairing). factors: name ->
    function(settings) -> bool. Returns the factor names, effects, 95% half-widths, runs and residual
    degrees of freedom."""
    d = df[(df.model == "gpt-tiny") & df.recipe.isin(recipes) & (df.diverged == 0)]
    d = d[np.isfinite(d.final)]
    seeds = sorted(d.seed.unique())
    X = np.column_stack([np.ones(len(d))]
                        + [np.array([f(settings(r)) for r in d.recipe], dtype=float) for f in factors.values()]
                        + [(d.seed.values == s).astype(float) for s in seeds[1:]])
    y = d.final.values
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    dof = len(y) - X.shape[1]
    cov = (resid @ resid / dof) * np.linalg.pinv(X.T @ X)
    half = stats.t.ppf(0.975, dof) * np.sqrt(np.diag(cov))
    k = len(factors)
    return list(factors), beta[1:k + 1], half[1:k + 1], len(y), dof


def regression(df, recipes, factors):
    """The effects of `effects` as a markdown table."""
    names, beta, half, n, dof = effects(df, recipes, factors)
    rows = []
    for name, b, h in zip(names, beta, half):
        verdict = "within noise" if b - h <= 0 <= b + h else ("raises loss" if b - h > 0 else "lowers loss")
        rows.append([name, f"{b:+.4f} [{b - h:+.4f}, {b + h:+.4f}]", verdict])
    return table(["factor (on - off)", "effect on final eval loss, 95% CI", "verdict"], rows), n, dof


def telemetry(folder, grid, recipes, names):
    """Mean over seeds and steps of each block-scale telemetry fraction, per operand."""
    ds = open_results(folder, grid).isel(lr=0)
    rows = []
    for r in recipes:
        if r not in ds.recipe.values:
            continue
        cell = ds.sel(recipe=r)
        for kind in ["scale_underflow", "scale_saturated", "flushed", "saturated"]:
            v = cell[kind].mean(["seed", "step"])
            rows.append([names.get(r, r), kind] + [f"{100 * float(v.sel(operand=o)):.3g}%" for o in OPERANDS])
    return table(["recipe", "fraction", *OPERANDS], rows)


def main(folder):
    df, shared = runs(folder)
    out = []
    out.append("# FP4 design space: the numbers\n")
    out.append(f"Made by `run.sh summary` (`summary.py {Path(folder).name}`) from the committed exports. Runs: "
               f"{len(df)} distinct (model, recipe, seed); {shared} of them (fp32's) are in more than one grid and "
               "identical bit for bit in each (validation curves compared). Learning rate 0.003, 250 steps, final "
               "validation loss in nats.\n")

    g = "gpt-tiny"
    out.append("## 1. Baselines and the industry recipes (gpt-tiny; placement.h5, tensor-scaled.h5)\n")
    out.append(against(df, g, ["fp32", "bf16", "mxfp4", "nvfp4", PLAIN, SCALED, PLAIN + ",layers=mlp"], "fp32",
                       {PLAIN: "fp4 ue5m3/16, no tensor scale", SCALED: "fp4 ue5m3/16, tensor scale",
                        PLAIN + ",layers=mlp": "fp4 ue5m3/16, no tensor scale, MLP linears only"}))
    t, v, _ = paired(df, g, "nvfp4", "mxfp4")
    out.append(f"\nNVFP4 - MXFP4, seed-paired: {t}, {v}.\n")
    out.append(f"Chance level (unigram entropy of the text): {open_results(folder, 'placement').attrs['chance_loss']:.3f} nats.\n")

    def variant(base, key, value):
        head = base.split(",sr=")[0]
        return f"{head},sr={value if key == 'sr' else 'off'},hadamard={value if key == 'hadamard' else 'off'}"

    out.append("## 2. Without a tensor scale: one change at a time from plain UE5M3 (gpt-tiny, placement.h5)\n")
    rows = [PLAIN] + [variant(PLAIN, "sr", p) for p in ["gradients", "forward", "backward", "all"]] \
        + [variant(PLAIN, "hadamard", p) for p in ["wgrad", "forward", "backward", "all"]] + [PLAIN + ",estimator=clipped-ste"]
    out.append(against(df, g, rows, PLAIN, {r: r.replace("fp4:scale=ue5m3,block=16,", "") for r in rows}))
    for title, key, places in [("3. Where stochastic rounding goes", "sr", ["gradients", "forward", "all"]),
                               ("4. Where the Hadamard transform goes (size 16)", "hadamard", ["wgrad", "backward", "all"])]:
        out.append(f"\n## {title} (gpt-tiny, one change from UE5M3 with a tensor scale, tensor-scaled.h5)\n")
        rows = [SCALED] + [variant(SCALED, key, p) for p in places]
        out.append(against(df, g, rows, SCALED, {SCALED: "off (ue5m3/16, tensor scale)", **{variant(SCALED, key, p): f"{key}={p}" for p in places}}))
        t, v, _ = paired(df, g, variant(SCALED, key, places[0]), variant(SCALED, key, "all"))
        out.append(f"\n{key}={places[0]} - {key}=all, seed-paired: {t}, {v}.")
    out.append("\n## 5. Gradient estimator (gpt-tiny, UE5M3 with a tensor scale, tensor-scaled.h5)\n")
    out.append(against(df, g, [SCALED, SCALED + ",estimator=clipped-ste"], SCALED,
                       {SCALED: "straight-through (ste)", SCALED + ",estimator=clipped-ste": "clipped-ste"}))

    out.append("\n## 6. The factorial: scale format x tensor scale x scale rounding x sr x Hadamard (gpt-tiny)\n")
    text, median, f, rho = factorial_table(df)
    out.append(f"Median configuration loss {median:.3f}. Sorted by the seed-paired difference to fp32.\n")
    out.append(text)
    out.append(f"\nSpearman rank correlation between the paper's score and (minus) the difference to fp32: "
               f"{rho.statistic:+.2f}.\n")
    out.append("\n## 7. Factor effects (regression on the factorial's runs, seed as a blocking factor)\n")
    out.append("Each effect is the change in final validation loss when the technique is on, the others held "
               "in the regression; with a tensor scale, UE8M0 is left as without one (it does nothing there).\n")
    for title, recipes, factors in factor_sets(list(f.recipe)):
        t, n, dof = regression(df, recipes, factors)
        out.append(f"\n{title} ({n} runs that did not diverge, {dof} residual degrees of freedom):\n")
        out.append(t)

    out.append("\n## 8. Where the error comes from: block-scale and element telemetry (gpt-tiny)\n")
    out.append("Mean over seeds and the 250 steps of the fraction of blocks whose scale underflowed (nonzero "
               "blocks only) or saturated, and of values flushed to zero or saturated, per GEMM operand, mean "
               "over layers.\n")
    pick = {f"fp4:scale={s},block={b},tensor-scale={t},scale-rounding=nearest,sr=off,hadamard=off":
            f"{s}/{b}, tensor scale {t}" for s, b in [("ue8m0", 32), ("ue4m3", 16), ("ue5m3", 16)] for t in ["off"]}
    pick.update({f"fp4:scale={s},block={b},tensor-scale=on,scale-rounding=up,sr=off,hadamard=off":
                 f"{s}/{b}, tensor scale on, rounding up" for s, b in [("ue8m0", 32), ("ue4m3", 16), ("ue5m3", 16)]})
    out.append(telemetry(folder, "factorial", list(pick), pick))
    out.append("\n")
    out.append(telemetry(folder, "placement", ["mxfp4", "nvfp4", PLAIN], {PLAIN: "ue5m3/16, tensor scale off (placement)"}))

    if (Path(folder) / "llama.h5").exists():
        out += llama_section(folder, df)
    print("\n".join(out))


def llama_section(folder, df):
    out = ["\n## 9. llama-tiny, the paper's setting (FP4 on the MLP linears only)\n"]
    L = "llama-tiny"
    lrec = list(dict.fromkeys(df[df.model == L].recipe))
    lnames = {r: r.replace("fp4:scale=", "").replace(",block=", "/").replace(",sr=off,hadamard=off", "") for r in lrec}
    out.append(against(df, L, lrec, "fp32", lnames))
    mlp = {"ue8m0": "fp4:scale=ue8m0,block=32,sr=off,hadamard=off,layers=mlp",
           "ue4m3": "fp4:scale=ue4m3,block=16,tensor-scale=on,sr=off,hadamard=off,layers=mlp",
           "ue5m3": "fp4:scale=ue5m3,block=16,tensor-scale=on,sr=off,hadamard=off,layers=mlp",
           "ue5m3, no tensor scale": "fp4:scale=ue5m3,block=16,sr=off,hadamard=off,layers=mlp"}
    for a, b in [("ue5m3", "ue8m0"), ("ue5m3", "ue4m3"), ("ue5m3, no tensor scale", "ue5m3")]:
        t, v, _ = paired(df, L, mlp[a], mlp[b])
        out.append(f"{a} - {b} (MLP only): {t}, {v}.\n")
    out.append(telemetry(folder, "llama", list(mlp.values()), {r: n for n, r in mlp.items()}))
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "results"))
