"""Phase behaviour of a fitted lattice model: temperature scans, transitions, phase diagrams.

A model fitted to one frozen image (couplings J_m in units of k_B T_f, see
:mod:`atomine.thermo.lattice`) predicts what the same material does at other
temperatures. Everything here runs canonical Monte Carlo
(:func:`atomine.thermo.montecarlo.sample`) at fixed composition on a periodic lattice
and reads off

* the energy, heat capacity C = var(E) / (N t^2) (per site, k_B units) and Warren-Cowley
  short-range order alpha_1..3 at each reduced temperature t = T / T_f;
* a long-range-order parameter, the largest structure-factor peak away from k = 0
  (:func:`order_parameter`), and whether that peak sits at the longest wavelength the
  box holds (clustering: phase separation into dopant-rich and host-rich regions) or at
  a superstructure vector (ordering);
* the transition temperature from the heat-capacity maximum (:func:`transition`) and a
  composition-temperature map of all of these (:func:`phase_diagram`).

Temperatures are t = T / T_f, dimensionless; a caller who knows T_f in kelvin multiplies.
"""

from __future__ import annotations

import numbers
from collections import Counter

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ._order import LONG_WAVELENGTH, SUPERSTRUCTURE, order_parameter
from .lattice import check_kind
from .montecarlo import sample

# Below the transition the order parameter is O(1) (O(c^2) for a droplet at small c);
# above it O(log N / N). A factor 4 between the coldest and the hottest temperature of a
# scan separates the two on any box of more than ~100 sites; without ordering it stays ~1.
RISE_FACTOR = 4.0
CONVENTION = ("H = sum_m J_m sum_<ij> in shell m sigma_i sigma_j; sigma = +1 dopant, -1 host; "
              "energies in k_B T_f; temperature t = T / T_f")
_SCAN_COLUMNS = ("temperature", "energy_per_site", "energy_err", "heat_capacity", "heat_capacity_err",
                 "sro_1", "sro_2", "sro_3", "order_parameter", "k_type")


# --------------------------------------------------------------------------- checks
def _check_couplings(couplings) -> np.ndarray:
    try:
        j = np.asarray(couplings, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputError(f"couplings must be 1 to 3 numbers (J1, J2, J3) in k_B T_f, got {couplings!r}") from None
    if not 1 <= j.size <= 3 or not np.all(np.isfinite(j)):
        raise InputError(f"couplings must be 1 to 3 finite numbers (J1, J2, J3) in k_B T_f, got {couplings!r}")
    return j


def _check_composition(c, name: str = "composition") -> float:
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not np.isfinite(c) or not 0 < c < 1:
        raise InputError(f"{name} must be a dopant fraction strictly between 0 and 1, got {c!r}")
    return float(c)


def _check_temperatures(temperatures) -> np.ndarray:
    try:
        t = np.asarray(temperatures, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("temperatures must be numbers t = T / T_f") from None
    if t.ndim != 1 or t.size < 3:
        raise InputError(f"temperatures must be a 1-D list of at least 3 values t = T / T_f, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise InputError("temperatures must be finite and positive (t = T / T_f > 0)")
    if np.unique(t).size != t.size:
        raise InputError("temperatures must not repeat")
    return t


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_shape(shape) -> tuple[int, int]:
    try:
        ok = len(shape) == 2
    except TypeError:
        ok = False
    if not ok:
        raise InputError(f"shape must be (n_i, n_j), got {shape!r}")
    return _check_int(shape[0], "shape[0]", 4), _check_int(shape[1], "shape[1]", 4)


def _check_progress(progress):
    if progress is not None and not callable(progress):
        raise InputError("progress must be a callable(done, total) or None")


# --------------------------------------------------------------------------- temperature scan
def _random_start(shape, n_dopant: int, rng: np.random.Generator) -> np.ndarray:
    spins = -np.ones(shape[0] * shape[1], dtype=np.int8)
    spins[rng.choice(spins.size, size=n_dopant, replace=False)] = 1
    return spins.reshape(shape)


def _mean_err(values: np.ndarray) -> tuple[float, float]:
    """Mean over chains and its standard error from the chain-to-chain scatter (NaN for one chain)."""
    err = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else np.nan
    return float(values.mean()), float(err)


def temperature_scan(couplings, composition, temperatures, *, kind="square", shape=(48, 48), field=0.0,
                     site_field=None, n_sweeps=600, n_equilibrate=300, n_chains=2, seed=0,
                     progress=None) -> pd.DataFrame:
    """Thermodynamics of the lattice model at fixed composition over a range of temperatures.

    Each chain starts from its own random configuration with exactly round(composition * N)
    dopants on a periodic ``shape`` box and is annealed: the temperatures are visited from hot
    to cold, each starting from the chain's final state at the previous one, which shortens
    equilibration below a transition. Canonical Kawasaki Monte Carlo (local and non-local
    exchanges) keeps the composition.

    Parameters
    ----------
    couplings : sequence of 1..3 float
        J1, J2, J3 in k_B T_f (J > 0 ordering, J < 0 clustering).
    composition : float
        Dopant fraction c, 0 < c < 1.
    temperatures : sequence of float
        At least 3 distinct reduced temperatures t = T / T_f > 0 (any order).
    kind : {"square", "triangular"}
        Lattice topology.
    shape : (int, int)
        Simulation box in sites.
    field, site_field : float, ndarray (n_i, n_j), optional
        Site-field term -h sum_i f_i sigma_i (see :func:`atomine.thermo.montecarlo.sample`).
    n_sweeps, n_equilibrate : int
        Recorded and discarded sweeps per temperature and chain.
    n_chains : int
        Independent chains; the errors are their standard error (NaN with one chain).
    seed : int
        Seed of the whole scan.
    progress : callable(done, total), optional
        Called after each temperature.

    Returns
    -------
    pandas.DataFrame
        One row per temperature, ascending: ``temperature``, ``energy_per_site`` (k_B T_f),
        ``energy_err``, ``heat_capacity`` (per site, k_B), ``heat_capacity_err``, ``sro_1``..
        ``sro_3`` (Warren-Cowley alpha), ``order_parameter`` (mean s_max of
        :func:`order_parameter` over 20 evenly spaced snapshots per chain), ``k_type`` (the majority). ``attrs``
        record couplings, composition (the simulated one), n_sites, kind, shape and field.
    """
    j = _check_couplings(couplings)
    c = _check_composition(composition)
    t = _check_temperatures(temperatures)
    kind = check_kind(kind)
    shape = _check_shape(shape)
    n_sweeps = _check_int(n_sweeps, "n_sweeps", 1)
    n_equilibrate = _check_int(n_equilibrate, "n_equilibrate", 0)
    n_chains = _check_int(n_chains, "n_chains", 1)
    seed = _check_int(seed, "seed", 0)
    _check_progress(progress)
    n_sites = shape[0] * shape[1]
    n_dopant = int(round(c * n_sites))
    if not 0 < n_dopant < n_sites:
        raise InputError(f"composition {c} leaves no dopant or no host on {n_sites} sites; use a larger shape")

    rng = np.random.default_rng(seed)
    states = [_random_start(shape, n_dopant, rng) for _ in range(n_chains)]
    seeds = rng.integers(0, 2**31 - 1, size=(t.size, n_chains))
    n_snapshots = min(20, n_sweeps)
    order = np.argsort(t)[::-1]  # hot to cold
    rows = []
    for done, it in enumerate(order, start=1):
        energy, heat, sro, s_max, k_types = [], [], [], [], []
        for ch in range(n_chains):
            res = sample(states[ch], j, kind=kind, field=field, site_field=site_field, temperature=float(t[it]),
                         ensemble="canonical", moves="mixed", periodic=True, n_chains=1, n_sweeps=n_sweeps,
                         n_equilibrate=n_equilibrate, n_snapshots=n_snapshots, seed=int(seeds[it, ch]))
            states[ch] = np.ascontiguousarray(res.final[0])
            energy.append(res.energy_per_site())
            heat.append(res.heat_capacity())
            sro.append(res.sro())
            s, k = order_parameter(res.snapshots[0], kind)
            s_max.append(s)
            k_types.extend(k.tolist())
        e, e_err = _mean_err(np.asarray(energy))
        h, h_err = _mean_err(np.asarray(heat))
        a = np.mean(sro, axis=0)
        rows.append((t[it], e, e_err, h, h_err, a[0], a[1], a[2], float(np.mean(s_max)),
                     Counter(k_types).most_common(1)[0][0]))
        if progress is not None:
            progress(done, t.size)
    scan = pd.DataFrame(rows, columns=list(_SCAN_COLUMNS)).sort_values("temperature", ignore_index=True)
    scan.attrs.update(couplings=j.tolist(), composition=n_dopant / n_sites, n_sites=n_sites, kind=kind,
                      shape=list(shape), field=float(field), convention=CONVENTION)
    return scan


# --------------------------------------------------------------------------- transition
def _parabola_vertex(x: np.ndarray, y: np.ndarray) -> float:
    """Abscissa of the vertex of the parabola through three points, clipped to [x0, x2]."""
    (x0, x1, x2), (y0, y1, y2) = x, y
    d01, d12 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
    curvature = (d12 - d01) / (x2 - x0)
    if not curvature < 0:  # flat top (or worse): the grid point is the best estimate
        return float(x1)
    # y' = d01 + curvature * (2 x - x0 - x1) = 0
    return float(np.clip(0.5 * (x0 + x1) - d01 / (2 * curvature), x0, x2))


def _order_midpoint(t: np.ndarray, s: np.ndarray) -> float:
    """Temperature where log s crosses halfway between its coldest and hottest values."""
    logs = np.log(np.maximum(s, 1e-300))
    half = 0.5 * (logs[0] + logs[-1])
    above = np.nonzero(logs >= half)[0]
    k = int(above[-1])  # last (hottest) point still on the ordered side
    if k == t.size - 1:
        return float(t[-1])
    w = (logs[k] - half) / (logs[k] - logs[k + 1])
    return float(t[k] + w * (t[k + 1] - t[k]))


def transition(scan) -> dict:
    """The phase transition in a temperature scan, located by the heat-capacity maximum.

    Parameters
    ----------
    scan : pandas.DataFrame
        Output of :func:`temperature_scan` (columns ``temperature``, ``heat_capacity``,
        ``order_parameter``, ``k_type``), at least 3 rows.

    Returns
    -------
    dict
        ``temperature``: t_c = T_c / T_f, the vertex of the parabola through the
        heat-capacity maximum and its two grid neighbours (clipped to them), or None;
        ``kind``: ``"miscibility"`` (the ordered side's structure-factor peak is
        long-wavelength: phase separation), ``"order-disorder"`` (superstructure peak) or
        ``"none"``; ``method``: how t_c was found; ``peak_heat_capacity`` (per site, k_B);
        ``order_parameter_ratio``: order parameter at the coldest over the hottest temperature.

    Notes
    -----
    No transition (``"none"``) is reported when the heat-capacity maximum sits at an edge of
    the scanned range and the order parameter does not rise on cooling (by a factor
    ``RISE_FACTOR``). When the maximum is at an edge but order does appear, the transition is
    placed where log(order parameter) is halfway between its coldest and hottest values: the
    range did not bracket the heat-capacity peak, so widen it for a better estimate.
    """
    if not isinstance(scan, pd.DataFrame):
        raise InputError("transition needs the DataFrame returned by temperature_scan")
    missing = [c for c in ("temperature", "heat_capacity", "order_parameter", "k_type") if c not in scan.columns]
    if missing:
        raise InputError(f"the scan lacks column(s) {', '.join(missing)}; pass the output of temperature_scan")
    df = scan.sort_values("temperature", ignore_index=True)
    t = _check_temperatures(df["temperature"].to_numpy(dtype=np.float64))
    heat = df["heat_capacity"].to_numpy(dtype=np.float64)
    s = df["order_parameter"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(heat)) or not np.all(np.isfinite(s)):
        raise InputError("the scan has non-finite heat capacity or order parameter values")
    k = int(np.argmax(heat))
    at_edge = k in (0, t.size - 1) or np.ptp(heat) <= 1e-12 * max(1.0, abs(heat[k]))
    ratio = float(s[0] / s[-1]) if s[-1] > 0 else (np.inf if s[0] > 0 else 1.0)
    rises = ratio > RISE_FACTOR
    out = {"temperature": None, "kind": "none", "method": "", "peak_heat_capacity": float(heat[k]),
           "order_parameter_ratio": ratio}
    if at_edge and not rises:
        out["method"] = ("heat-capacity maximum at the edge of the scanned range and no long-range order "
                         "on cooling: no transition in range")
        return out
    if at_edge:
        t_c = _order_midpoint(t, s)
        out["method"] = ("order-parameter midpoint (the heat-capacity maximum sits at the edge of the scanned "
                         "range; widen it for a heat-capacity estimate)")
    else:
        t_c = _parabola_vertex(t[k - 1:k + 2], heat[k - 1:k + 2])
        out["method"] = "heat-capacity maximum (parabola through the top 3 grid points)"
    cold = df["k_type"][t < t_c]
    cold = cold if len(cold) else df["k_type"][:1]
    ordered = Counter(cold.tolist()).most_common(1)[0][0]
    out["temperature"] = t_c
    out["kind"] = "miscibility" if ordered == LONG_WAVELENGTH else "order-disorder"
    return out


# --------------------------------------------------------------------------- phase diagram
def _offset_progress(progress, offset: int, total: int):
    """A scan's progress(done, n_t) reported as progress(offset + done, total) of the whole diagram."""
    return lambda done, _: progress(offset + done, total)


def phase_diagram(couplings, compositions, temperatures, *, kind="square", shape=(32, 32), n_sweeps=300,
                  n_equilibrate=200, n_chains=2, seed=0, progress=None) -> xr.Dataset:
    """Composition-temperature phase diagram of the lattice model (zero field).

    Runs :func:`temperature_scan` at every composition. Without a field the Hamiltonian is
    invariant under sigma -> -sigma, which maps composition c onto 1 - c; so each pair
    {c, 1 - c} is simulated once, at min(c, 1 - c), and the result is used for both.

    Parameters
    ----------
    couplings : sequence of 1..3 float
        J1, J2, J3 in k_B T_f.
    compositions : sequence of float
        Distinct dopant fractions in (0, 1).
    temperatures : sequence of float
        At least 3 distinct reduced temperatures t = T / T_f > 0.
    kind, shape, n_sweeps, n_equilibrate, n_chains, seed
        As in :func:`temperature_scan`.
    progress : callable(done, total), optional
        Called after each simulated (composition, temperature) point.

    Returns
    -------
    xarray.Dataset
        Coordinates ``composition`` and ``temperature`` (t = T / T_f), both ascending. Variables
        on (composition, temperature): ``heat_capacity`` (per site, k_B), ``heat_capacity_err``,
        ``energy_per_site`` (k_B T_f), ``order_parameter``, ``sro_1``; on (composition):
        ``transition_temperature`` (t_c from :func:`transition`, NaN where none) and
        ``transition_kind``. ``attrs``: couplings, kind, convention, shape, symmetry.
    """
    j = _check_couplings(couplings)
    try:
        comps = np.asarray(compositions, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InputError("compositions must be numbers in (0, 1)") from None
    if comps.size == 0:
        raise InputError("compositions is empty; give at least one dopant fraction in (0, 1)")
    for c in comps:
        _check_composition(float(c), "every composition")
    if np.unique(comps).size != comps.size:
        raise InputError("compositions must not repeat")
    comps = np.sort(comps)
    t = np.sort(_check_temperatures(temperatures))
    kind = check_kind(kind)
    shape = _check_shape(shape)
    for value, name, low in ((n_sweeps, "n_sweeps", 1), (n_equilibrate, "n_equilibrate", 0),
                             (n_chains, "n_chains", 1), (seed, "seed", 0)):
        _check_int(value, name, low)
    _check_progress(progress)

    # c and 1 - c share a simulation; round so that 0.3 and 1 - 0.7 meet
    reduced = np.round(np.minimum(comps, 1.0 - comps), 12)
    unique = np.unique(reduced)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=unique.size)
    scans, transitions = {}, {}
    for n, (c, sd) in enumerate(zip(unique, seeds)):
        report = None if progress is None else _offset_progress(progress, n * t.size, unique.size * t.size)
        scan = temperature_scan(j, float(c), t, kind=kind, shape=shape, n_sweeps=n_sweeps,
                                n_equilibrate=n_equilibrate, n_chains=n_chains, seed=int(sd), progress=report)
        scans[c], transitions[c] = scan, transition(scan)

    def grid(column):
        return (("composition", "temperature"), np.stack([scans[c][column].to_numpy() for c in reduced]))

    tc = [transitions[c]["temperature"] for c in reduced]
    return xr.Dataset(
        {name: grid(name) for name in ("heat_capacity", "heat_capacity_err", "energy_per_site",
                                       "order_parameter", "sro_1")}
        | {"transition_temperature": ("composition", np.array([np.nan if x is None else x for x in tc])),
           "transition_kind": ("composition", np.array([transitions[c]["kind"] for c in reduced]))},
        coords={"composition": comps, "temperature": t},
        attrs={"couplings": j.tolist(), "kind": kind, "convention": CONVENTION, "shape": list(shape),
               "n_sweeps": n_sweeps, "n_equilibrate": n_equilibrate, "n_chains": n_chains, "seed": seed,
               "symmetry": "zero field: c and 1 - c are equivalent (sigma -> -sigma); each pair was simulated "
                           "once at min(c, 1 - c)"},
    )


__all__ = ["LONG_WAVELENGTH", "RISE_FACTOR", "SUPERSTRUCTURE", "order_parameter", "phase_diagram",
           "temperature_scan", "transition"]
