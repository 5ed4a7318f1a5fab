"""Validation of registration and structure-property mining on simulated pairs (``make validate``).

The simulated pair (``atomine.simulate`` preset ``pair-haadf-eels``): a HAADF image and an EELS
spectrum image of the same area at 4x coarser sampling, shifted by (1.37, 2.41) nm and rotated
by 3 degrees, whose second-phase abundance is 0.3 + 6.0 strain_trace + 0.4 dopant_fraction per
spectral pixel (or, with the driving switched off, the same law applied to an independent
specimen, so the null maps keep the same spatial autocorrelation).

Checks (issue 7):

1. Registration of the simultaneous ADF channel onto the HAADF image: largest displacement
   error over the spectral field of view <= 0.2 spectral pixels.
2. Driven pairs: with the two true drivers and two decoys (the drivers of an independent
   specimen: smooth, autocorrelated, unrelated), the true drivers rank first with q < 0.01.
3. Null pairs (>= 200 seeds): at most 8 % give any link at FDR 0.05.

Checks 1-3 use the simulator's own per-pixel maps (truth) as descriptors, so they validate the
registration and the statistics alone. The end-to-end part runs the same checks through the
whole pipeline (:func:`atomine.workflows.correlate`: atom finding on the HAADF, unmixing of the
EELS SI, registration of the simultaneous ADF, descriptors, mining):

4. Driven pairs (``make("pair-haadf-eels", seed=s)``): registration error <= 0.2 spectral px and,
   on the recovered abundance of the driven component, both true drivers ranked first with
   q < 0.01; the univariate and joint (OLS) slopes and the recovered descriptor maps are
   compared with the truth.
5. Null pairs (``simulate_pair(seed=s, driven=False)``, >= 200 seeds): at most 8 % give any
   link at FDR 0.05 (over every structural x spectral descriptor pair).

Runnable alone: ``python benchmarks/validate_correlate.py [n_null] [n_e2e_null]``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats

from atomine.correlate import AffineTransform, mine, register
from atomine.errors import RegistrationError
from atomine.simulate import make
from atomine.simulate.correlated_pair import simulate_pair, simulate_pair_maps
from atomine.workflows.correlate import correlate
from atomine.workflows.correlate_truth import registration_error_px

N_REGISTER = 10
N_DRIVEN = 20
N_NULL = 200
N_E2E_DRIVEN = 10
N_E2E_NULL = 200
WORKERS = 2
DRIVERS = ("strain_trace", "dopant_fraction")


def _status(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _registration_error(seed: int) -> tuple[float, float, float]:
    sim = make("pair-haadf-eels", seed=seed)
    adf, haadf = sim.extra["ADF"], sim.extra["HAADF"]
    t0 = time.perf_counter()
    reg = register(adf, haadf)
    secs = time.perf_counter() - t0
    true = AffineTransform.from_dict(sim.truth.parameters["transform"])
    ys, xs = np.meshgrid(adf.y.values, adf.x.values, indexing="ij")
    xa, ya = reg.transform(xs.ravel(), ys.ravel())
    xb, yb = true(xs.ravel(), ys.ravel())
    px = float(adf.x[1] - adf.x[0])
    return float(np.max(np.hypot(xa - xb, ya - yb)) / px), reg.residual, secs


def _datasets(seed: int, driven: bool):
    maps = simulate_pair_maps(seed, driven)
    decoy = simulate_pair_maps(100_000 + seed, True)
    structure = xr.Dataset({d: maps[d] for d in DRIVERS})
    for d in DRIVERS:  # an unrelated specimen's maps: same smoothness, no link
        structure[f"decoy_{d}"] = decoy[d].assign_coords(y=maps.y, x=maps.x)
    spectra = xr.Dataset({"abundance_doped": maps["abundance"]})
    return structure, spectra


# --- end to end through the pipeline --------------------------------------------------------------


def _pipeline(sim, models: bool, seed: int):
    spectra = xr.Dataset({"EELS": sim.data, "ADF": sim.extra["ADF"]})
    t0 = time.perf_counter()
    result = correlate(sim.extra["HAADF"], spectra, models=models, random_state=seed)
    return result, time.perf_counter() - t0


def _r(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def e2e_driven_seed(seed: int) -> dict:
    """One driven pair through :func:`correlate`: registration error, the driven abundance's links,
    slopes (univariate and joint OLS) and descriptor maps against the truth."""
    sim = make("pair-haadf-eels", seed=seed)
    result, secs = _pipeline(sim, True, seed)
    truth = sim.truth
    out = {"seed": seed, "secs": secs,
           "error_px": registration_error_px(result, truth.parameters["transform"])}
    # the unmixing names its components freely: the driven one is the abundance map most
    # (anti-)correlated with the true abundance; anti-correlated = the complement (slope sign flips)
    abund = [k for k in result.spectra.data_vars if k.startswith("abundance_")]
    rs = {k: _r(result.spectra[k], truth.maps["abundance"]) for k in abund}
    prop = max(rs, key=lambda k: abs(rs[k]))
    sign = float(np.sign(rs[prop]))
    out.update(property=prop, r_abundance=rs[prop])
    links = result.links[result.links["property"] == prop].reset_index(drop=True)
    drivers = list(truth.parameters["drivers"])
    coef = truth.parameters["coefficients"]
    out["top"] = str(links["structure"].iloc[0])
    out["top_is_driver"] = out["top"] in drivers
    order = list(links["structure"])
    out["ranks"] = {d: order.index(d) + 1 if d in order else None for d in drivers}
    out["q"] = {d: float(links.loc[links["structure"] == d, "q"].iloc[0]) if d in order else np.nan for d in drivers}
    out["effect"] = {d: sign * float(links.loc[links["structure"] == d, "effect"].iloc[0]) if d in order else np.nan
                     for d in drivers}
    out["drivers_first"] = bool(set(order[:len(drivers)]) == set(drivers)
                                and all(out["q"][d] < 0.01 for d in drivers))
    # joint OLS of the recovered abundance on the recovered driver maps (the univariate slopes
    # carry the omitted other driver; the joint one should recover both coefficients)
    y = np.asarray(result.spectra[prop].values, dtype=np.float64).ravel()
    cols = [np.asarray(result.structure[d].values, dtype=np.float64).ravel() for d in drivers]
    ok = np.isfinite(y) & np.all([np.isfinite(c) for c in cols], axis=0)
    X = np.column_stack([np.ones(ok.sum())] + [c[ok] for c in cols])
    beta = np.linalg.lstsq(X, y[ok], rcond=None)[0][1:] * sign
    out["joint"] = {d: float(b) for d, b in zip(drivers, beta)}
    out["true_coefficients"] = {d: float(coef[d]) for d in drivers}
    out["joint_rel_err"] = {d: abs(out["joint"][d] - coef[d]) / abs(coef[d]) for d in drivers}
    out["r_maps"] = {d: _r(result.structure[d], truth.maps[d]) for d in drivers}
    return out


def e2e_null_seed(seed: int) -> dict:
    """One null pair (driving switched off) through the same pipeline, mining models off (the
    q-values do not depend on them)."""
    sim = simulate_pair(seed=seed, driven=False)
    try:
        result, secs = _pipeline(sim, False, seed)
    except RegistrationError as exc:  # a refusal is no link; counted and reported apart
        return {"seed": seed, "secs": np.nan, "any_05": False, "any_01": False, "n_sig_05": 0, "q_min": np.nan,
                "n_pairs": 0, "top": "", "refused": str(exc)}
    links = result.links
    q = links["q"].to_numpy()
    top = links.iloc[0]
    return {"seed": seed, "secs": secs, "any_05": bool((q <= 0.05).any()), "any_01": bool((q <= 0.01).any()),
            "n_sig_05": int((q <= 0.05).sum()), "q_min": float(q.min()), "n_pairs": len(links),
            "top": f"{top['structure']} ~ {top['property']}", "refused": ""}


def _one_thread() -> None:
    # two worker processes on two cores: numba's own threads would only oversubscribe them
    import numba

    numba.set_num_threads(1)


def _pool_map(fn, seeds, workers: int = WORKERS) -> list:
    if workers <= 1:
        return [fn(s) for s in seeds]
    # spawned workers (fork is unsafe once an earlier validation has started OpenMP threads in this
    # process) unpickle the function by module name: run.py loads this file under a name that is not
    # importable, so hand them the same functions from this file imported as ``validate_correlate``
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    module = importlib.import_module(Path(__file__).stem)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=module._one_thread) as pool:
        return list(pool.map(getattr(module, fn.__name__), seeds, chunksize=1))


def run_e2e(n_driven: int = N_E2E_DRIVEN, n_null: int = N_E2E_NULL, workers: int = WORKERS) -> tuple[list, dict]:
    """Markdown rows for the end-to-end checks and the raw per-seed figures."""
    rows: list[str] = []

    def row(check, result, criterion, ok):
        rows.append(f"| {check} | {result} | {criterion} | {_status(ok)} |")

    t0 = time.perf_counter()
    driven = _pool_map(e2e_driven_seed, range(n_driven), workers)
    t_driven = time.perf_counter() - t0
    errs = np.array([d["error_px"] for d in driven])
    row(f"end to end, driven, {n_driven} seeds: registration of the simultaneous ADF",
        f"max error {errs.max():.3f} spectral px (median {np.median(errs):.3f})", "<= 0.2 spectral px",
        bool(errs.max() <= 0.2))
    first = sum(d["drivers_first"] for d in driven)
    qmax = np.array([max(d["q"].values()) for d in driven])
    row(f"end to end, driven, {n_driven} seeds: links of the recovered driven abundance (atoms -> "
        "descriptors, unmixing -> abundance)",
        f"both true drivers ranked first with q < 0.01 in {first}/{n_driven} (larger q of the two: max "
        f"{qmax.max():.1e})", "true drivers first, q < 0.01, every seed", first == n_driven)
    t0 = time.perf_counter()
    null = _pool_map(e2e_null_seed, range(n_null), workers) if n_null else []
    t_null = time.perf_counter() - t0
    if null:
        k = sum(d["any_05"] for d in null)
        ci = stats.binomtest(k, n_null).proportion_ci(0.95, method="exact")
        pairs = [d["n_pairs"] for d in null if not d["refused"]]
        refused = sum(bool(d["refused"]) for d in null)
        row(f"end to end, null (driving off), {n_null} seeds, {min(pairs)}-{max(pairs)} structural x spectral "
            "pairs each", f"{k}/{n_null} = {100 * k / n_null:.1f} % with any link at FDR 0.05 (95 % CI "
            f"{100 * ci.low:.1f}-{100 * ci.high:.1f} %); registration refused in {refused}; "
            f"{t_null:.0f} s on {workers} processes", "<= 8 %", k / n_null <= 0.08)
    return rows, {"driven": driven, "null": null, "t_driven": t_driven, "t_null": t_null}


def _driven_table(driven: list) -> str:
    d0, d1 = DRIVERS
    head = ("| seed | error (spectral px) | property (r vs true abundance) | top structure | q "
            f"{d0} / {d1} | univariate slope {d0} / {d1} | joint OLS {d0} / {d1} (rel. error) | "
            f"map r {d0} / {d1} |\n|---|---|---|---|---|---|---|---|\n")
    lines = []
    for d in driven:
        lines.append(
            f"| {d['seed']} | {d['error_px']:.3f} | {d['property']} ({d['r_abundance']:+.3f}) | {d['top']} | "
            f"{d['q'][d0]:.1e} / {d['q'][d1]:.1e} | {d['effect'][d0]:.2f} / {d['effect'][d1]:.3f} | "
            f"{d['joint'][d0]:.2f} / {d['joint'][d1]:.3f} ({100 * d['joint_rel_err'][d0]:.0f} % / "
            f"{100 * d['joint_rel_err'][d1]:.0f} %) | {d['r_maps'][d0]:.3f} / {d['r_maps'][d1]:.3f} |")
    return head + "\n".join(lines) + "\n"


def run(n_null: int = N_NULL, n_e2e_null: int = N_E2E_NULL) -> str:
    t0 = time.perf_counter()
    rows: list[str] = []

    def row(check, result, criterion, ok):
        rows.append(f"| {check} | {result} | {criterion} | {_status(ok)} |")

    errs, res, secs = zip(*(_registration_error(s) for s in range(N_REGISTER)))
    row(f"registration of the simultaneous ADF onto the HAADF, {N_REGISTER} seeds (4x coarser, 3 deg, "
        "shifted)", f"max error {np.max(errs):.3f} spectral px (median {np.median(errs):.3f}); residual "
        f"{np.min(res):.3f}-{np.max(res):.3f}; {np.median(secs):.1f} s each", "<= 0.2 spectral px",
        bool(np.max(errs) <= 0.2))

    first, q_top = 0, []
    for s in range(N_DRIVEN):
        structure, spectra = _datasets(s, True)
        links = mine(structure, spectra, random_state=s, models=False).links
        top = set(links["structure"].iloc[:2])
        q = links["q"].iloc[:2].max()
        first += top == set(DRIVERS) and q < 0.01
        q_top.append(q)
    row(f"driven pairs, {N_DRIVEN} seeds, 2 true drivers + 2 autocorrelated decoys",
        f"true drivers ranked first with q < 0.01 in {first}/{N_DRIVEN} (largest q of the two: median "
        f"{np.median(q_top):.1e}, max {np.max(q_top):.1e})", "true drivers first, q < 0.01", first == N_DRIVEN)

    any_link, n_perm = 0, 0
    for s in range(n_null):
        structure, spectra = _datasets(s, False)
        result = mine(structure, spectra, random_state=s, models=False)
        any_link += bool((result.links["q"] < 0.05).any())
        n_perm = result.n_permutations
    frac = any_link / n_null
    row(f"null pairs (driving switched off), {n_null} seeds, 4 structural x 1 spectral descriptor",
        f"{any_link}/{n_null} = {100 * frac:.1f} % with any link at FDR 0.05 ({n_perm} shifts per test)",
        "<= 8 %", frac <= 0.08)

    t1 = time.perf_counter()
    e2e_rows, e2e = run_e2e(N_E2E_DRIVEN, n_e2e_null)
    rows += e2e_rows
    t_e2e = time.perf_counter() - t1

    head = ("## Registration and structure-property mining (validate_correlate)\n\n"
            f"Runtime {time.perf_counter() - t0:.0f} s, of which {t_e2e:.0f} s end to end ({e2e['t_driven']:.0f} s "
            f"driven, {e2e['t_null']:.0f} s null, {WORKERS} processes). The first three rows use the simulator's "
            "per-pixel maps (truth) as descriptors; the end-to-end rows run `atomine.workflows.correlate` on the "
            "HAADF and the EELS SI + ADF (atom finding, unmixing, registration, descriptors, mining).\n\n"
            "| check | result | criterion | status |\n|---|---|---|---|\n")
    coef = ", ".join(f"{k} {v}" for k, v in e2e["driven"][0]["true_coefficients"].items()) if e2e["driven"] else ""
    table = ("\nEnd to end, driven seeds, on the recovered abundance most correlated with the true one (its sign "
             "folded into the slopes); true coefficients: " + coef + ". The univariate slope carries the other "
             "driver; the joint OLS on both recovered maps should recover both.\n\n" + _driven_table(e2e["driven"]))
    return head + "\n".join(rows) + "\n" + table


if __name__ == "__main__":
    print(run(*(int(a) for a in sys.argv[1:])))
