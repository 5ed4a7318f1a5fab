"""Steps of :func:`~.thermo.learn_thermodynamics` that are more than one call into :mod:`atomine.thermo`.

* ``read_atoms``: the input (atom table, Parquet file, ``atomine atoms`` folder, occupancy array)
  as something :func:`~atomine.thermo.occupancy.occupancy_lattice` takes, and its provenance record;
* ``landscape``: s^2 on a (J1, J2) grid around the estimate, by reweighting Monte Carlo references;
* ``configurations``: the fitted model's most probable local configurations;
* ``temperature_physics``: SRO and heat capacity against temperature, the transition, the phase diagram;
* ``image_sro``: the image's own Warren-Cowley parameters, to set beside the model's at t = 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from ..data import array_hash, file_hash
from ..errors import InputError

ATOMS_FILE = "atoms.parquet"
MAX_BOX = 64  # sites per side of the extra Monte Carlo boxes: beyond it histograms gain nothing visible
LANDSCAPE_SIGMAS = 4.0
LANDSCAPE_POINTS = 21
REFERENCE_SPACING = 1.5  # stderr between extra references: the weights collapse within ~1-2 stderr of one
LANDSCAPE_ESS_MIN = 5.0  # snapshots; each holds thousands of sites, so a few already fix q far better than the image
CONFIG_DESCRIPTOR = "nnn"
TOP_CONFIGURATIONS = 10
T_MIN = 0.02  # lowest t = T / T_f scanned


# --------------------------------------------------------------------------- input
def read_atoms(atoms) -> tuple[Any, dict[str, Any]]:
    """(atom table DataFrame or occupancy array, provenance record of the input)."""
    if isinstance(atoms, (str, os.PathLike)):
        path = Path(atoms)
        if path.is_dir():
            folder, path = path, path / ATOMS_FILE
            if not path.is_file():
                raise InputError(f"{folder} holds no {ATOMS_FILE}; pass an atom table (.parquet) or the result "
                                 "folder of 'atomine atoms'")
        elif not path.exists():
            raise InputError(f"{path} does not exist; pass an atom table (.parquet) or the result folder of "
                             "'atomine atoms'")
        if path.suffix.lower() != ".parquet":
            raise InputError(f"{path.name}: an atom table must be a Parquet file (.parquet), as 'atomine atoms' writes")
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises its own types on bad bytes
            raise InputError(f"{path.name} is not a readable Parquet table ({type(exc).__name__}); "
                             "pass the atoms.parquet that 'atomine atoms' wrote") from None
        return table, {"atoms": {"file": path.name, "rows": int(len(table)), "content_hash": file_hash(path)}}
    if isinstance(atoms, pd.DataFrame):
        digest = array_hash(pd.util.hash_pandas_object(atoms, index=False).to_numpy()) if len(atoms) else "empty"
        return atoms, {"atoms": {"kind": "atom table", "rows": int(len(atoms)), "content_hash": digest}}
    if isinstance(atoms, xr.DataArray):
        atoms = atoms.values
    try:
        arr = np.asarray(atoms)
    except Exception:  # ragged lists and other objects numpy cannot hold
        arr = np.asarray([None], dtype=object)
    if arr.dtype == object:
        raise InputError(f"atoms must be an atom table (DataFrame), a Parquet file or a 2-D occupancy array; "
                         f"got {type(atoms).__name__}")
    return arr, {"atoms": {"kind": "occupancy array", "shape": list(arr.shape), "content_hash": array_hash(arr)}}


# --------------------------------------------------------------------------- shared Monte Carlo set-up
def fit_descriptor(fit):
    """The descriptor object the fit histogrammed with (a FitResult keeps its name and labels)."""
    from ..thermo.configurations import descriptor

    if fit.classes is not None:
        return fit.classes
    if fit.descriptor != "shell_counts":
        return descriptor(fit.kind, fit.descriptor)
    for n in (1, 2, 3):
        d = descriptor(fit.kind, "shell_counts", n_shells=n)
        if d.labels == tuple(fit.class_labels):
            return d
    raise InputError("the fit's configuration classes match no shell_counts descriptor")  # not reachable


def _box_start(lattice, rng) -> np.ndarray:
    """A random periodic box at the image's composition (the bulk model the fit simulates)."""
    shape = tuple(min(max(s, 24), MAX_BOX) for s in lattice.shape)
    n = shape[0] * shape[1]
    flat = -np.ones(n, dtype=np.int8)
    flat[rng.choice(n, size=int(round(lattice.composition * n)), replace=False)] = 1
    return flat.reshape(shape)


def _run(theta, names, lattice, site_field, rng, *, n_snapshots: int, thin: int, n_equilibrate: int,
         on_image: bool = False):
    """Snapshots (S, n_i, n_j) of the fitted kind of model at theta, and whether they are periodic."""
    from ..thermo.montecarlo import sample

    n_j = sum(1 for n in names if n.startswith("J"))
    couplings = np.asarray(theta[:n_j], dtype=np.float64)
    has_field = "h" in names
    if has_field or on_image:  # a field profile lives on the image grid: simulate the image lattice itself
        start, periodic = lattice.spins, lattice.periodic
        field = float(theta[names.index("h")]) if has_field else 0.0
        f = np.where(lattice.valid, site_field, 0.0) if has_field else None
    else:
        start, periodic, field, f = _box_start(lattice, rng), True, 0.0, None
    res = sample(start, couplings, kind=lattice.kind, field=field, site_field=f, periodic=periodic, n_chains=2,
                 n_sweeps=n_snapshots * thin, n_equilibrate=n_equilibrate, thin=thin, n_snapshots=n_snapshots,
                 seed=int(rng.integers(2**31)))
    return res.snapshots.reshape((-1,) + res.snapshots.shape[-2:]), periodic, f


# --------------------------------------------------------------------------- s^2 landscape
def _reference(theta, fit, lattice, site_field, desc, rng):
    """A reweightable Monte Carlo reference ensemble at theta, on the fit's histogram classes."""
    from ..thermo._reweight import Ensemble
    from ..thermo.lattice import pair_sums

    snaps, periodic, f = _run(theta, fit.names, lattice, site_field, rng, n_snapshots=40, thin=2, n_equilibrate=150,
                              on_image=hasattr(desc, "bin_of_site"))
    n_j = sum(1 for n in fit.names if n.startswith("J"))
    r = pair_sums(snaps, lattice.kind, n_j, periodic=periodic)
    if f is not None:
        r = np.concatenate([r, -np.sum(snaps * f, axis=(-2, -1))[:, None]], axis=1)
    counts = desc.histograms(snaps, periodic=periodic).astype(np.float64)
    return Ensemble(np.array(theta, dtype=np.float64), r, counts / counts.sum(axis=1, keepdims=True))


def landscape(fit, lattice, site_field, seed: int, progress: Callable[[int, int], None] | None = None) -> xr.DataArray:
    """s^2(J1, J2) (or s^2(J1) for a one-coupling model) within +-4 stderr of the estimate.

    Each grid point is reweighted from whichever Monte Carlo reference gives it the largest
    effective sample size: the fit's own ensemble, or one of the extra references run on a
    coarse grid (every 1.5 stderr); NaN where even the best has fewer than
    ``LANDSCAPE_ESS_MIN`` effective snapshots. The other parameters stay at their estimates.
    """
    from ..thermo._bootstrap import distance_at

    idx = [k for k, n in enumerate(fit.names) if n.startswith("J")][:2]
    sd = np.where(np.isfinite(fit.stderr[idx]) & (fit.stderr[idx] > 0), fit.stderr[idx], 0.05)
    axes = [fit.value[k] + np.linspace(-LANDSCAPE_SIGMAS, LANDSCAPE_SIGMAS, LANDSCAPE_POINTS) * s
            for k, s in zip(idx, sd)]
    coarse = np.arange(-2, 3) * REFERENCE_SPACING
    offsets = np.array(np.meshgrid(*([coarse] * len(idx)), indexing="ij")).reshape(len(idx), -1).T
    offsets = offsets[np.any(offsets != 0, axis=1)]  # the centre is the fit's own ensemble
    desc = fit_descriptor(fit)
    rng = np.random.default_rng(seed)
    ensembles = [fit.ensemble]
    for k, off in enumerate(offsets):
        theta = fit.value.copy()
        theta[idx] += off * sd
        ensembles.append(_reference(theta, fit, lattice, site_field, desc, rng))
        if progress is not None:
            progress(k + 1, len(offsets))
    grid = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(idx), -1).T
    s2 = np.full(len(grid), np.nan)
    ess = np.zeros(len(grid))
    for g, point in enumerate(grid):
        theta = fit.value.copy()
        theta[idx] = point
        sizes = [e.ess(theta) for e in ensembles]
        best = int(np.argmax(sizes))
        ess[g] = sizes[best]
        if sizes[best] >= LANDSCAPE_ESS_MIN:
            s2[g] = distance_at(ensembles[best], theta, fit.counts_image, fit.bins)
    names = [fit.names[k] for k in idx]
    shape = tuple(len(a) for a in axes)
    coords = {n: (n, a, {"units": "k_B T_f"}) for n, a in zip(names, axes)}
    return xr.DataArray(s2.reshape(shape), dims=names, coords=coords, name="s2_landscape", attrs={
        "long_name": "squared statistical distance s^2 between image and model histograms", "units": "rad^2",
        "estimate": [float(fit.value[k]) for k in idx], "covariance": fit.covariance[np.ix_(idx, idx)].tolist(),
        "n_eff": float(fit.n_eff), "ess_min": LANDSCAPE_ESS_MIN, "n_references": len(ensembles),
        "ess_smallest_used": float(np.min(ess[np.isfinite(s2)])) if np.isfinite(s2).any() else 0.0,
        "method": "histogram reweighting from the nearest of the fit's reference and extra Monte Carlo references "
                  f"every {REFERENCE_SPACING:g} stderr; NaN where fewer than {LANDSCAPE_ESS_MIN:g} effective "
                  "snapshots remain; other parameters at their estimates"})


# --------------------------------------------------------------------------- configurations
def configurations(fit, lattice, site_field, seed: int) -> tuple[Any, np.ndarray, np.ndarray, list[dict]]:
    """(descriptor, model class probabilities, image class probabilities, top classes) of the fitted model.

    The model's probabilities come from Monte Carlo snapshots at the fitted parameters, histogrammed
    with the ``nnn`` descriptor (centre and the first two shells).
    """
    from ..thermo.configurations import descriptor

    desc = descriptor(lattice.kind, CONFIG_DESCRIPTOR)
    rng = np.random.default_rng(seed)
    snaps, periodic, _ = _run(fit.value, fit.names, lattice, site_field, rng, n_snapshots=15, thin=5,
                              n_equilibrate=300)
    q = desc.histograms(snaps, periodic=periodic).sum(axis=0).astype(np.float64)
    q /= q.sum()
    p = desc.histogram(lattice.spins, periodic=lattice.periodic).astype(np.float64)
    p = p / p.sum() if p.sum() > 0 else p
    order = np.argsort(-q, kind="stable")  # the order export.write_configurations writes them in
    order = order[q[order] > 0][:TOP_CONFIGURATIONS]
    reps, mult = desc.representatives(), desc.multiplicity()
    top = [{"rank": r + 1, "class_index": int(k), "label": desc.labels[k], "probability": float(q[k]),
            "probability_image": float(p[k]), "multiplicity": int(mult[k]), "spins": reps[k].tolist(),
            "offsets": desc.offsets.tolist()} for r, k in enumerate(order)]
    return desc, q, p, top


def species(table, dopant) -> tuple[str, str]:
    """(dopant, host) chemical symbols for the exported structures: the table's labels when they are element
    symbols, else Ca in La (the La(1-x)Ca(x)MnO3 seed case)."""
    if isinstance(table, pd.DataFrame) and "cls" in table:
        labels = [str(v) for v in pd.unique(table["cls"].dropna()) if str(v) not in ("vacancy", "unknown")]
        if len(labels) == 2 and all(_is_symbol(v) for v in labels):
            dop = dopant if dopant in labels else min(labels, key=lambda v: int((table["cls"] == v).sum()))
            return dop, next(v for v in labels if v != dop)
    return "Ca", "La"


def _is_symbol(text: str) -> bool:
    return 1 <= len(text) <= 2 and text.isalpha() and text[0].isupper() and text[1:].islower()


# --------------------------------------------------------------------------- temperature
def temperature_range(couplings, kind: str) -> tuple[float, float]:
    """A range of t = T / T_f that brackets the model's transition and holds t = 1.

    The guess t0 = 0.6 sum_m z_m |J_m| is Onsager's t_c = 2.269 |J1| on the square lattice (z = 4)
    and 3.64 |J1| on the triangular one (z = 6), to within 5 %.
    """
    from ..thermo.lattice import coordination

    t0 = 0.6 * sum(coordination(kind, m + 1) * abs(float(j)) for m, j in enumerate(couplings))
    # below 2 % of T_f a transition could not have shaped the image: weak couplings get "none in range"
    return max(min(0.3, t0 / 2.5), T_MIN), max(3.0, 2.5 * t0)


def temperature_physics(fit, lattice, seed: int, progress: Callable[[int, int, str], None] | None = None):
    """(scan, transition, phase diagram) of the fitted couplings at zero field.

    A coarse scan at the observed composition over a range that brackets the transition (and
    holds t = 1), a finer, longer one between the grid neighbours of the heat-capacity maximum,
    then a 9-composition x 12-temperature phase diagram on a 24 x 24 box.
    """
    from ..thermo.phase import phase_diagram, temperature_scan, transition

    couplings = [float(v) for n, v in zip(fit.names, fit.value) if n.startswith("J")]
    c = float(np.clip(lattice.composition, 0.02, 0.98))  # a 32 x 32 box must hold both species
    lo, hi = temperature_range(couplings, lattice.kind)
    kw = {"kind": lattice.kind, "shape": (32, 32), "n_sweeps": 300, "n_equilibrate": 200, "n_chains": 2}

    def inner(stage: str):
        return None if progress is None else (lambda done, total: progress(done, total, stage))

    coarse_t = np.unique(np.r_[np.geomspace(lo, hi, 10), 1.0])
    coarse = temperature_scan(couplings, c, coarse_t, seed=seed, progress=inner("temperature scan"), **kw)
    k = int(np.argmax(coarse["heat_capacity"].to_numpy()))
    scan = coarse
    if 0 < k < len(coarse) - 1:
        t = coarse["temperature"].to_numpy()
        fine_t = np.linspace(t[k - 1], t[k + 1], 9)[1:-1]
        fine_t = fine_t[~np.isin(np.round(fine_t, 12), np.round(t, 12))]
        # the peak is where fluctuations are largest and slowest: twice the chains and sweeps there
        fine_kw = {**kw, "n_sweeps": 600, "n_equilibrate": 300, "n_chains": 4}
        fine = temperature_scan(couplings, c, fine_t, seed=seed + 1, progress=inner("fine scan"), **fine_kw)
        scan = pd.concat([coarse, fine], ignore_index=True).sort_values("temperature", ignore_index=True)
        scan.attrs = dict(coarse.attrs)
    trans = transition(scan)
    pd_t = np.geomspace(lo, hi, 12)
    diagram = phase_diagram(couplings, np.linspace(0.1, 0.9, 9), pd_t, kind=lattice.kind, shape=(24, 24),
                            n_sweeps=200, n_equilibrate=150, n_chains=2, seed=seed + 2,
                            progress=inner("phase diagram"))
    return scan, trans, diagram


def image_sro(lattice) -> list[float]:
    """Warren-Cowley alpha_1..3 of the image itself (masked sites and the open edge left out)."""
    from ..thermo.lattice import pair_sums

    r = pair_sums(lattice.spins, lattice.kind, 3, periodic=lattice.periodic)
    n = pair_sums(np.abs(lattice.spins), lattice.kind, 3, periodic=lattice.periodic)
    c = lattice.composition
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (1.0 - r / n) / 2.0 / (2.0 * c * (1.0 - c))
    return [float(a) if np.isfinite(a) else float("nan") for a in alpha]
