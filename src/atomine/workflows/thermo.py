"""Effective interactions of dopants from one image, and what they predict: end to end.

:func:`learn_thermodynamics` composes :mod:`atomine.thermo`:

1. the occupancy lattice of one sublattice (+1 dopant, -1 host, 0 vacancy / unknown / missing)
   (:func:`~atomine.thermo.occupancy.occupancy_lattice`);
2. the lattice model: nested candidates fitted by statistical distance and one chosen by BIC,
   spatial cross-validation and predictive checks (:func:`~atomine.thermo.select.select_model`),
   or a named model (:func:`~atomine.thermo.fit.fit_model`); a parametric bootstrap of it;
3. the s^2 landscape around the estimate (:mod:`._thermo_steps`);
4. the model's most probable local configurations, for theory;
5. with ``phase``: short-range order and heat capacity against temperature at the observed
   composition, the order-disorder or miscibility transition, a composition-temperature diagram.

One convention throughout: H = sum_m J_m sum_<ij> in shell m sigma_i sigma_j - h sum_i f_i sigma_i,
sigma = +1 dopant, -1 host, energies in k_B T_f (T_f: the temperature at which the configuration
froze); J > 0 favours unlike neighbours (ordering), J < 0 like neighbours (clustering). Given
T_f in kelvin every parameter is also reported in meV, J k_B T_f.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..data import file_hash, jsonable
from ..errors import InputError
from . import _thermo_steps as steps
from ._image_results import provenance_record, stage_clock

Progress = Callable[[int, int, str], None]
K_B_MEV_PER_K = 0.0861733
CANDIDATES = ("j1", "j1j2", "j1j2j3")
CONVENTION = ("H = sum_m J_m sum_<ij> in shell m sigma_i sigma_j - h sum_i f_i sigma_i; sigma = +1 dopant, -1 host, "
              "0 not in the model; J > 0 favours unlike neighbours (ordering), J < 0 like neighbours (clustering)")
SUMMARY_KEYS = ("model", "parameters", "statistical_distance", "chi2_per_dof", "n_eff", "candidates", "convention",
                "units", "lattice", "composition", "n_sites", "chi2", "dof", "design_effect", "transition",
                "t_freeze_k", "reason")
_STAGES = 6


@dataclass
class ThermoResult:
    """What :func:`learn_thermodynamics` found.

    Attributes
    ----------
    fit : atomine.thermo.fit.FitResult
        The chosen model's fit (with ``stderr_bootstrap`` when bootstrapped).
    selection : atomine.thermo.select.ModelSelection or None
        All candidates' fits and scores (None for a named model).
    lattice : atomine.thermo.lattice.Lattice
        The image's occupancy lattice.
    scan : pandas.DataFrame
        Energy, heat capacity, SRO alpha_1..3 and order parameter against t = T / T_f at the
        observed composition (empty without ``phase``).
    transition : dict
        :func:`~atomine.thermo.phase.transition` of the scan; ``temperature_k`` with T_f.
    phase_diagram : xarray.Dataset
        Heat capacity, order parameter, SRO on (composition, temperature) and the transition line.
    landscape : xarray.DataArray
        s^2 on a grid of (J1, J2) (or J1) around the estimate; NaN where reweighting cannot reach.
    configurations : list of dict
        The model's most probable ``nnn`` configuration classes: rank, label, probability (model),
        probability_image, multiplicity, spins on offsets.
    summary : dict
        The content of ``thermo.json`` (keys ``SUMMARY_KEYS``; NaN written as null).
    details : dict
        What the report needs beyond it: the image's own SRO alpha_1..3, convergence, lattice
        shape, origin and constant, the species written to ``configurations.xyz``.
    config_descriptor, config_probabilities
        The ``nnn`` descriptor and the model's probability of each of its classes.
    """

    fit: Any
    selection: Any
    lattice: Any
    scan: pd.DataFrame
    transition: dict[str, Any]
    phase_diagram: xr.Dataset
    landscape: xr.DataArray
    configurations: list[dict]
    summary: dict[str, Any]
    details: dict[str, Any]
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    started: str
    elapsed_s: float
    timings: dict[str, float] = field(default_factory=dict)
    config_descriptor: Any = field(default=None, repr=False)
    config_probabilities: np.ndarray | None = field(default=None, repr=False)

    def histograms(self) -> pd.DataFrame:
        """One row per configuration class of the fit: label, pooled bin, image count and p, model q."""
        f = self.fit
        return pd.DataFrame({"class_index": np.arange(len(f.class_labels)), "label": list(f.class_labels),
                             "bin": f.bins, "count_image": f.counts_image.astype(np.int64), "p_image": f.p_image,
                             "q_model": f.q_model})

    def candidates(self) -> pd.DataFrame:
        return pd.DataFrame(self.summary["candidates"])

    def maps(self) -> xr.Dataset:
        """Occupancy lattice, s^2 landscape and phase diagram as one Dataset (``result.zarr``)."""
        lat = self.lattice
        ni, nj = lat.shape
        parts: dict[str, xr.DataArray] = {"occupancy": xr.DataArray(
            lat.spins, dims=("site_i", "site_j"),
            coords={"site_i": lat.origin[0] + np.arange(ni), "site_j": lat.origin[1] + np.arange(nj)},
            attrs={"long_name": "occupancy: +1 dopant, -1 host, 0 not in the model", "units": "1",
                   "lattice": lat.kind, "a_nm": lat.a_nm if lat.a_nm is not None else "unknown"})}
        parts["s2_landscape"] = self.landscape
        for name, v in self.phase_diagram.data_vars.items():
            parts[f"phase_{name}"] = v
        ds = xr.Dataset(parts)
        ds.attrs = {"title": "atomine thermodynamics", "atomine_version": __version__, "model": self.fit.model,
                    "convention": CONVENTION, "energy_units": "k_B T_f", "temperature": "t = T / T_f"}
        return ds

    def provenance(self, files: dict[str, str] | None = None) -> dict[str, Any]:
        record = provenance_record("atomine.workflows.thermo.learn_thermodynamics", self, files)
        record["timings_s"] = dict(self.timings)
        return record

    def save(self, directory: str | os.PathLike, overwrite: bool = False, *,
             report: Callable[["ThermoResult", Path], Any] | None = None) -> Path:
        """Write ``thermo.json``, ``histograms.csv``, ``scan.csv``, ``candidates.csv``, ``result.zarr``,
        ``configurations.xyz``, ``provenance.json`` and, given a ``report(result, path)`` writer,
        ``report.html``; atomically. An existing folder is refused unless ``overwrite``."""
        from ..io import save
        from ..io._atomic import atomic_path
        from ..thermo.export import write_configurations

        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
            tmp.mkdir()
            (tmp / "thermo.json").write_text(json.dumps(jsonable(self.summary), indent=2) + "\n", encoding="utf-8")
            self.histograms().to_csv(tmp / "histograms.csv", index=False)
            self.scan.to_csv(tmp / "scan.csv", index=False)
            self.candidates().to_csv(tmp / "candidates.csv", index=False)
            save(self.maps(), tmp / "result.zarr")
            # without a lattice constant (an occupancy array) a = 0.1 nm: the Angstrom values are lattice units
            a_nm = self.lattice.a_nm or 0.1
            name = f"{self.lattice.kind} model lattice" + ("" if self.lattice.a_nm else
                                                           ", a unknown: positions in lattice constants")
            write_configurations(tmp / "configurations.xyz", self.config_descriptor, self.config_probabilities,
                                 a_nm=a_nm, species=tuple(self.details["species"]), top=steps.TOP_CONFIGURATIONS,
                                 lattice_name=name)
            if report is not None:
                report(self, tmp / "report.html")
            files = {p.name: file_hash(p) for p in sorted(tmp.iterdir())}
            (tmp / "provenance.json").write_text(json.dumps(jsonable(self.provenance(files)), indent=2) + "\n",
                                                 encoding="utf-8")
        return directory


# --------------------------------------------------------------------------- checks
def _check(model, t_freeze_k, bootstrap, seed, phase, progress, site_field):
    from ..thermo.fit import parse_model

    if not isinstance(model, str):
        raise InputError(f"model must be 'auto' or a name such as 'j1j2', got {model!r}")
    model = model.lower().replace(" ", "")
    if model != "auto":
        has_field = parse_model(model)[1]
        if site_field is not None and not has_field:
            raise InputError(f"site_field is given but model {model!r} has no field term; use {model + '+field'!r} "
                             "or model='auto'")
    if t_freeze_k is not None and (isinstance(t_freeze_k, bool) or not isinstance(t_freeze_k, numbers.Real)
                                   or not math.isfinite(t_freeze_k) or t_freeze_k <= 0):
        raise InputError(f"t_freeze_k must be a positive temperature in kelvin, got {t_freeze_k!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, numbers.Integral) or not 0 <= bootstrap <= 10_000:
        raise InputError(f"bootstrap must be a whole number of replicas from 0 to 10000, got {bootstrap!r}")
    if bootstrap == 1:
        raise InputError("bootstrap=1 gives no spread; use 0 (none) or at least 2 replicas")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(phase, bool):
        raise InputError(f"phase must be True or False, got {phase!r}")
    if progress is not None and not callable(progress):
        raise InputError("progress must be a callable(done, total, message) or None")
    return model, None if t_freeze_k is None else float(t_freeze_k), int(bootstrap), int(seed)


# --------------------------------------------------------------------------- model
def _single_row(fit) -> dict[str, Any]:
    """The candidates-table row of a model fitted on its own (no cross-validation or predictive checks)."""
    n_eff = max(fit.n_eff, 1.0)
    return {"model": fit.model, "n_parameters": len(fit.names), "chi2": float(fit.chi2),
            "bic": float(fit.chi2 + len(fit.names) * np.log(n_eff)), "cv_chi2": float("nan"),
            "ppc_p_mean_cluster": float("nan"), "ppc_p_large_cluster_fraction": float("nan"), "chosen": True}


def _choose_model(lat, model, site_field, bootstrap, seed, inner):
    """(fit, selection or None, candidates rows, reason)."""
    from ..thermo.fit import fit_model
    from ..thermo.select import select_model

    if model != "auto":
        fit = fit_model(lat, model, site_field=site_field, bootstrap=bootstrap, seed=seed,
                        progress=inner("fitting " + model))
        return fit, None, [_single_row(fit)], f"{model} was asked for"
    names = CANDIDATES + (tuple(c + "+field" for c in CANDIDATES) if site_field is not None else ())
    sel = select_model(lat, names, site_field=site_field, seed=seed, progress=inner("model selection"))
    fit = sel.best
    if bootstrap:
        # refit the chosen model from its estimate on the selection's histogram, with replicas; the
        # selection's estimate stays the reported one (its scores are the table's) and takes the spread
        boot = fit_model(lat, fit.model, descriptor=steps.fit_descriptor(fit), site_field=site_field,
                         theta_start=fit.value, bootstrap=bootstrap, seed=seed + 1, progress=inner("bootstrap"))
        fit = dataclasses.replace(fit, bootstrap=boot.bootstrap, stderr_bootstrap=boot.stderr_bootstrap)
    return fit, sel, [dict(r) for r in sel.table], sel.reason


def _parameters(fit, t_freeze_k) -> dict[str, Any]:
    out = fit.parameters()
    if t_freeze_k is not None:
        scale = K_B_MEV_PER_K * t_freeze_k
        for item in out.values():
            item["meV"] = {k: v * scale for k, v in item.items() if k in ("value", "stderr", "stderr_bootstrap")}
    return out


def _clean(obj):
    """NaN and inf become None (JSON null), recursively."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def learn_thermodynamics(atoms, *, lattice: str = "auto", sublattice: int | None = None, dopant: str | None = None,
                         model: str = "auto", t_freeze_k: float | None = None, site_field=None, interface=None,
                         field_decay_nm: float = 1.0, bootstrap: int = 50, phase: bool = True, seed: int = 0,
                         progress: Progress | None = None) -> ThermoResult:
    """Learn the dopants' effective interactions from one image, and what they predict.

    Parameters
    ----------
    atoms : pandas.DataFrame, str, os.PathLike or array_like
        An atom table (DESIGN.md: ``x``, ``y`` in nm, ``site_i``, ``site_j``, ``cls``, ``sublattice``),
        a Parquet file of one, the result folder of ``atomine atoms``, or a 2-D occupancy array
        (0 host, 1 dopant, -1 vacancy / unknown; or booleans, True = dopant). Not modified.
    lattice : {"auto", "square", "triangular"}
        Lattice topology; ``auto`` reads it from the fitted lattice vectors (an array is square).
    sublattice : int, optional
        Sublattice to model; default the one that holds the dopants. ``vacancy`` and
        ``unknown`` sites are masked (they leave every sum of the model).
    dopant : str, optional
        The ``cls`` label of the dopant; default ``"dopant"``, else the minority label.
    model : str
        ``auto`` (``j1``, ``j1j2``, ``j1j2j3`` fitted and one chosen; with ``site_field`` also
        their ``+field`` variants) or one of those names.
    t_freeze_k : float, optional
        Freezing temperature T_f in kelvin: parameters are also given in meV (J k_B T_f with
        k_B = 0.0861733 meV/K) and the transition in kelvin.
    site_field : array (n_i, n_j), optional
        Site-field profile f on the lattice grid (e.g. exp(-distance / decay) from an interface).
    interface : ((x0, y0), (x1, y1)), optional
        An interface or surface trace in nm (image coordinates): the site field becomes
        exp(-d / field_decay_nm) with d the distance from it (atom tables only; see
        :func:`~atomine.thermo.fields.interface_field`). Exclusive with ``site_field``.
    field_decay_nm : float
        Decay length (nm) of the interface field.
    bootstrap : int
        Parametric-bootstrap replicas of the chosen model (0 = none).
    phase : bool
        Temperature scan, transition and phase diagram of the fitted model (about half the time).
    seed : int
        Seed of every Monte Carlo run.
    progress : callable, optional
        ``progress(done, total, message)``.

    Returns
    -------
    ThermoResult

    Raises
    ------
    InputError
        Unusable input (see :func:`~atomine.thermo.occupancy.occupancy_lattice`: missing columns,
        one species, too few sites) or parameters.
    """
    from ..thermo.occupancy import occupancy_lattice

    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    model, t_freeze_k, bootstrap, seed = _check(model, t_freeze_k, bootstrap, seed, phase, progress, site_field)
    timings: dict[str, float] = {}
    tick = stage_clock(progress, _STAGES, timings)

    def inner(stage: str, step: int):
        def report(done: int, total: int, message: str = "") -> None:
            if progress is not None:
                progress(step, _STAGES, f"{message or stage} {done}/{total}")
        return report

    t0 = time.perf_counter()
    table, inputs = steps.read_atoms(atoms)
    lat = occupancy_lattice(table, lattice=lattice, sublattice=sublattice, dopant=dopant)
    if interface is not None:
        from ..thermo.fields import interface_field

        if site_field is not None:
            raise InputError("give either site_field or interface, not both")
        site_field = interface_field(lat, interface, field_decay_nm)
        _check(model, t_freeze_k, bootstrap, seed, phase, progress, site_field)
    tick(f"{lat.kind} lattice, {lat.n_sites} sites", t0)

    t0 = time.perf_counter()
    fit, sel, rows, reason = _choose_model(lat, model, site_field, bootstrap, seed, lambda s: inner(s, 1))
    tick(f"model {fit.model}", t0)

    t0 = time.perf_counter()
    land = steps.landscape(fit, lat, site_field, seed + 2, inner("s^2 landscape", 2))
    tick("s^2 landscape", t0)

    t0 = time.perf_counter()
    desc, q_conf, p_conf, top = steps.configurations(fit, lat, site_field, seed + 3)
    tick("configurations", t0)

    t0 = time.perf_counter()
    if phase:
        scan, trans, diagram = steps.temperature_physics(fit, lat, seed + 4, lambda d, t, m: inner(m, 4)(d, t))
    else:
        scan, diagram = pd.DataFrame(), xr.Dataset()
        trans = {"temperature": None, "kind": "not computed", "method": "phase=False: no temperature scan"}
    j = np.array([(v, e) for n, v, e in zip(fit.names, fit.value, fit.stderr) if n.startswith("J")])
    trans["couplings_resolved"] = bool(np.any(np.abs(j[:, 0]) > 2 * j[:, 1]))
    if not trans["couplings_resolved"]:
        trans["note"] = ("every coupling is within 2 stderr of zero (a random arrangement fits): the transition "
                         "is that of the point estimate, not a resolved property of the sample")
    if t_freeze_k is not None and trans.get("temperature") is not None:
        trans["temperature_k"] = float(trans["temperature"]) * t_freeze_k
    tick("temperature scan and phase diagram" if phase else "no phase behaviour asked for", t0)

    t0 = time.perf_counter()
    sro = steps.image_sro(lat)
    summary = _clean({
        "model": fit.model, "parameters": _parameters(fit, t_freeze_k),
        "statistical_distance": fit.statistical_distance, "chi2_per_dof": fit.chi2_per_dof, "n_eff": fit.n_eff,
        "candidates": rows, "convention": CONVENTION,
        "units": {"parameters": "k_B T_f", "temperature": "t = T / T_f", "statistical_distance": "rad",
                  **({"meV": f"J k_B T_f with k_B = {K_B_MEV_PER_K} meV/K and T_f = {t_freeze_k:g} K"}
                     if t_freeze_k is not None else {})},
        "lattice": lat.kind, "composition": lat.composition, "n_sites": fit.n_sites, "chi2": fit.chi2,
        "dof": fit.dof, "design_effect": fit.design_effect, "transition": trans, "t_freeze_k": t_freeze_k,
        "reason": reason,
    })
    details = _clean({
        "sro_image": sro, "converged": fit.converged, "descriptor": fit.descriptor, "lattice_shape": list(lat.shape),
        "lattice_origin": list(lat.origin), "a_nm": lat.a_nm, "n_model_sites": lat.n_sites,
        "species": list(steps.species(table, dopant)), "bootstrap": bootstrap,
        "configurations_descriptor": desc.name, "fit_seconds": fit.seconds,
    })
    tick("summary", t0)
    parameters = {"lattice": lattice, "sublattice": sublattice, "dopant": dopant, "model": model,
                  "t_freeze_k": t_freeze_k, "site_field": site_field is not None,
                  "interface_nm": None if interface is None else np.asarray(interface, float).reshape(-1).tolist(),
                  "field_decay_nm": field_decay_nm if interface is not None else None, "bootstrap": bootstrap,
                  "phase": phase, "seed": seed}
    return ThermoResult(fit=fit, selection=sel, lattice=lat, scan=scan, transition=trans, phase_diagram=diagram,
                        landscape=land, configurations=top, summary=summary, details=details, parameters=parameters,
                        inputs=inputs, started=started, elapsed_s=time.perf_counter() - t_start, timings=timings,
                        config_descriptor=desc, config_probabilities=q_conf)


__all__ = ["CONVENTION", "K_B_MEV_PER_K", "SUMMARY_KEYS", "ThermoResult", "learn_thermodynamics"]
