"""Validation of the EELS and CITS simulators over many seeds (``make validate``).

Checks, each against a stated criterion:

1. Poisson noise of the EELS spectrum images: var/mean of the counts about the truth
   mean is 1 (standardised residuals), per seed.
2. Edge-onset detection on the noisy data: spectra summed over each pure-phase region,
   power-law background fitted before the first edge, onset = steepest rise of the
   smoothed background-subtracted spectrum near each tabulated edge; error vs truth.
3. Gap recovery from dI/dV: each pure-gap CITS curve (and their mean) differentiated
   numerically; gap edges = steepest rise of the smoothed dI/dV on each side; half-gap
   estimate vs the true Delta.

Runnable alone: ``python benchmarks/validate_spectra_sim.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from atomine.simulate import cits, eels

N_SEEDS = 20


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header, rows) -> str:
    return "\n".join([_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)])


def _verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


def poisson_statistics(seeds) -> tuple[str, bool]:
    ratios, means = [], []
    for seed in seeds:
        sim = eels.PRESETS["eels-si"][1](seed)
        lam = sim.truth.maps.noiseless.values.astype(np.float64)
        k = sim.data.values.astype(np.float64)
        z = (k - lam) / np.sqrt(lam)
        ratios.append(z.var())
        means.append(z.mean())
    ratios, means = np.array(ratios), np.array(means)
    ok = bool(np.all(np.abs(ratios - 1) < 0.01) and np.all(np.abs(means) < 0.005))
    text = (f"Standardised residuals (counts - mean) / sqrt(mean) of the `eels-si` data, {len(seeds)} seeds, "
            f"{lam.size} values each. Criterion: |var - 1| < 0.01 and |mean| < 0.005 for every seed.\n\n"
            + _table(["statistic", "mean over seeds", "std over seeds", "min", "max"],
                     [["var / mean", f"{ratios.mean():.4f}", f"{ratios.std():.4f}", f"{ratios.min():.4f}",
                       f"{ratios.max():.4f}"],
                      ["mean of z", f"{means.mean():+.5f}", f"{means.std():.5f}", f"{means.min():+.5f}",
                       f"{means.max():+.5f}"]])
            + f"\n\nResult: {_verdict(ok)}")
    return text, ok


def _onset_errors(sim) -> list[float]:
    e = sim.truth.maps.energy.values
    step = e[1] - e[0]
    errors = []
    for comp, rows in sim.truth.tables["edges"].groupby("component"):
        pure = sim.truth.maps.abundances.sel(component=comp).values > 0.999
        if pure.sum() < 20:
            continue
        s = sim.data.values[pure].astype(np.float64).sum(0)
        first = rows["onset_ev"].min()
        pre = (e > e[0] + 2) & (e < first - 5)
        slope, icpt = np.polyfit(np.log(e[pre]), np.log(s[pre]), 1)
        d = np.gradient(gaussian_filter1d(s - np.exp(icpt) * e ** slope, 0.7), e)
        for e0 in rows["onset_ev"]:
            win = np.flatnonzero((e > e0 - 4) & (e < e0 + 3))
            i = win[np.argmax(d[win])]
            y0, y1, y2 = d[i - 1:i + 2]
            errors.append(e[i] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) * step - e0)
    return errors


def onset_detection(seeds) -> tuple[str, bool]:
    errors = np.concatenate([_onset_errors(eels.PRESETS["eels-si"][1](seed)) for seed in seeds])
    a = np.abs(errors)
    ok = bool(np.quantile(a, 0.95) <= 1.0)
    text = (f"Onsets detected on noisy `eels-si` spectra summed over each pure-phase region (SrTiO3, LaMnO3), "
            f"{len(seeds)} seeds, {errors.size} edges in all; 1 eV channels. Criterion: 95 % of errors within "
            "one channel.\n\n"
            + _table(["mean error (eV)", "median abs error", "95th pct abs error", "max abs error", "within 1 channel"],
                     [[f"{errors.mean():+.3f}", f"{np.median(a):.3f}", f"{np.quantile(a, 0.95):.3f}", f"{a.max():.3f}",
                       f"{(a <= 1.0).mean() * 100:.1f} %"]])
            + f"\n\nResult: {_verdict(ok)}")
    return text, ok


def _gap_edges(curves, v, smooth_v: float = 0.02):
    dv = v[1] - v[0]
    didv = np.gradient(gaussian_filter1d(curves, smooth_v / dv, axis=-1), v, axis=-1)
    rise = np.gradient(gaussian_filter1d(didv, smooth_v / dv, axis=-1), v, axis=-1)
    pos, neg = v > 0.05, v < -0.05
    return v[pos][np.argmax(rise[..., pos], axis=-1)], v[neg][np.argmin(rise[..., neg], axis=-1)]


def gap_recovery(seeds) -> tuple[str, bool]:
    means, singles = [], []
    for seed in seeds:
        sim = cits.PRESETS["cits-grid"][1](seed)
        gap = sim.truth.tables["dos"].set_index("component").loc["semiconductor"]
        delta, width = float(gap["delta_ev"]), float(gap["broadening_ev"])
        v = sim.data.bias.values
        pure = sim.truth.maps.abundances.sel(component="semiconductor").values > 0.999
        curves = sim.data.values[pure].astype(np.float64)
        hi, lo = _gap_edges(curves.mean(0), v)
        means.append(0.5 * (hi - lo) - delta)
        his, los = _gap_edges(curves, v)
        singles.append(0.5 * (his - los) - delta)
    means, singles = np.array(means), np.concatenate(singles)
    ok = bool(np.all(np.abs(means) <= width) and np.quantile(np.abs(singles), 0.95) <= width)
    text = (f"Half-gap from the steepest rise of numerically differentiated I(V) (Gaussian smoothing 20 mV) in "
            f"the pure semiconducting domain of `cits-grid` (Delta = {delta} eV, broadening {width} eV, bias step "
            f"{v[1] - v[0]:.3f} V, white 0.5 pA + 1/f 0.3 pA noise), {len(seeds)} seeds. Criterion: region-mean "
            "error within the broadening for every seed, and 95 % of single-curve errors within it.\n\n"
            + _table(["estimate", "n", "mean error (eV)", "rms error (eV)", "95th pct abs error (eV)",
                      "max abs error (eV)"],
                     [["mean curve per seed", means.size, f"{means.mean():+.4f}", f"{np.sqrt((means**2).mean()):.4f}",
                       f"{np.quantile(np.abs(means), 0.95):.4f}", f"{np.abs(means).max():.4f}"],
                      ["single curves", singles.size, f"{singles.mean():+.4f}", f"{np.sqrt((singles**2).mean()):.4f}",
                       f"{np.quantile(np.abs(singles), 0.95):.4f}", f"{np.abs(singles).max():.4f}"]])
            + f"\n\nResult: {_verdict(ok)}")
    return text, ok


def run() -> str:
    seeds = range(N_SEEDS)
    parts, oks = [], []
    for title, fn in (("Poisson noise of the EELS SI", poisson_statistics),
                      ("Edge-onset detection error", onset_detection),
                      ("Gap recovery from dI/dV", gap_recovery)):
        text, ok = fn(seeds)
        parts.append(f"### {title}\n\n{text}")
        oks.append(ok)
    summary = f"All {len(oks)} checks pass." if all(oks) else f"{len(oks) - sum(oks)} of {len(oks)} checks FAIL."
    return summary + "\n\n" + "\n\n".join(parts)


if __name__ == "__main__":
    print(run())
