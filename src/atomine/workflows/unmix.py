"""Physically constrained unmixing of an EELS / EDS spectrum image or a CITS grid, end to end.

:func:`unmix_spectra` composes :mod:`atomine.spectra` and :mod:`atomine.unmix`:

1. checks and preprocessing (:mod:`._unmix_prep`): EELS power-law background (window before
   the first edge, per-pixel fit quality), optional zero-loss alignment on a low-loss SI,
   Poisson channel weighting; EDS: zero-energy noise peak cut, elements of the summed
   spectrum identified and mapped; CITS dI/dV;
2. the number of components, given or chosen by bi-cross-validation;
3. unmixing: a mixed pixel is a convex combination of pure spectra (abundances >= 0 summing
   to one, spectra >= 0), by N-FINDR + exact FCLS, N-FINDR + NNLS, NMF started from the
   N-FINDR endmembers, MCR-ALS, or Bayesian (Gibbs) unmixing with credible intervals;
4. per-pixel residual, endmembers on the physical axis (EELS: background removed with the
   same window), and what each component contains (edges; X-ray lines; gap and resonances).

All methods work on the weighted data divided by one global scale (values of order one);
endmembers are mapped back to data units at the end.
"""

from __future__ import annotations

import datetime as _dt
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
from ..data import array_hash
from ..errors import InputError
from . import _unmix_prep as prep
from ._image_results import finish_folder, provenance_record, stage_clock
from ._unmix_methods import METHODS
from ._unmix_methods import unmix_matrix as _unmix

Progress = Callable[[int, int, str], None]
_STAGES = 5


@dataclass
class UnmixResult:
    """What :func:`unmix_spectra` found.

    Attributes
    ----------
    maps : xarray.Dataset
        ``abundance`` (component, y, x), fractions; ``endmember`` (component, energy|bias) in the
        data's units per channel (EELS with background removal: each pure spectrum minus its
        power law fitted in the background window; ``endmember_counts`` keeps the raw,
        non-negative counts); ``residual`` (y, x), RMS over channels of data minus model, in
        the data's units; ``abundance_lo`` / ``abundance_hi`` and ``endmember_lo`` /
        ``endmember_hi`` (bayes: 95 % credible bounds); per-pixel preprocessing maps
        (``background_r``, ``background_chi2_red``, ``background_r_squared``, ``t_over_lambda``,
        ``zlp_shift``); EDS: net counts of the principal line of each element of the summed
        spectrum (``eds_<El>_<line>``, e.g. ``eds_Ni_Ka``). Coordinate ``component_name``.
    annotations : pandas.DataFrame
        EELS: the edges each component contains; EDS: its X-ray lines
        (:func:`atomine.spectra.annotate_eds`); CITS: each component's gap and resonances.
    summary : dict
        Preprocessing, how K was chosen (criterion and values), method, fit quality, timings,
        skipped steps.
    """

    maps: xr.Dataset
    annotations: pd.DataFrame
    summary: dict[str, Any]
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    started: str
    elapsed_s: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def abundance(self) -> xr.DataArray:
        return self.maps["abundance"]

    @property
    def endmember(self) -> xr.DataArray:
        return self.maps["endmember"]

    @property
    def residual(self) -> xr.DataArray:
        return self.maps["residual"]

    @property
    def component_names(self) -> list[str]:
        return [str(v) for v in self.maps["component_name"].values]

    def provenance(self, files: dict[str, str] | None = None) -> dict[str, Any]:
        return provenance_record("atomine.workflows.unmix.unmix_spectra", self, files)

    def save(self, directory: str | os.PathLike, overwrite: bool = False, *,
             report: Callable[["UnmixResult", Path], Any] | None = None) -> Path:
        """Write ``result.zarr``, ``annotations.csv``, ``summary.json``, ``provenance.json`` and, given a
        ``report(result, path)`` writer, ``report.html``; atomically. An existing folder is refused unless
        ``overwrite``."""
        from ..io import save
        from ..io._atomic import atomic_path

        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
            tmp.mkdir()
            save(self.maps, tmp / "result.zarr")
            self.annotations.to_csv(tmp / "annotations.csv", index=False)
            finish_folder(tmp, self, report)
        return directory


def _positive_int(value, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{what} must be a positive whole number, got {value!r}")
    return int(value)


def unmix_spectra(si, *, method: str = "fcls", n_components: int | None = None, references=None,
                  background=True, lowloss=None, weighting: str | None = "poisson", denoise: bool = False,
                  random_state=0, progress: Progress | None = None) -> UnmixResult:
    """Unmix a spectrum image or CITS grid into pure spectra and their abundance maps.

    Parameters
    ----------
    si : xarray.DataArray
        ``("y", "x", "energy")`` EELS or EDS counts (energy in eV; EDS when ``attrs["signal"]`` is
        "EDS", whose axis may also be in keV), or ``("y", "x", "bias")`` CITS current (bias in V);
        see :mod:`atomine.data`.
    method : {"fcls", "nnls", "nmf", "mcr", "bayes"}
        fcls: N-FINDR endmembers (denoised vertex pixels), exact fully constrained abundances;
        nnls: the same endmembers, non-negative abundances that need not sum to one; nmf: NMF
        started from the N-FINDR endmembers, sum-to-one abundances; mcr: MCR-ALS with
        non-negative spectra and closure (fixed references allowed, plus free components);
        bayes: Gibbs-sampled joint unmixing with 95 % credible intervals.
    n_components : int, optional
        Number of components; default from the data (see :func:`._unmix_prep.choose_k`) or,
        with references and fcls/nnls, the number of references.
    references : sequence of spectra, optional
        Known pure spectra (DataArrays with an energy/bias axis, resampled by linear
        interpolation when their axis covers the data's; or arrays with one value per
        channel), in the units that are unmixed (EELS raw counts, or background-subtracted
        counts with ``background="pixel"``; CITS dI/dV in A/V). With fcls / nnls they *are*
        the endmembers; extra free components only via mcr.
    background : bool or {"endmember", "pixel", "none"}
        EELS power-law background (window before the first edge). True = "endmember": fitted
        per pixel (quality recorded) but removed from the pure endmembers, since mixing is
        linear on raw counts; "pixel": unmix the per-pixel subtracted spectra; False: raw.
    lowloss : xarray.DataArray, optional
        Low-loss SI of the same pixels: the core loss is aligned on its zero-loss peak
        (drift removed) and a t/lambda map is recorded.
    weighting : {"poisson", None}
        EELS/EDS: divide channels by sqrt(mean spectrum) (even Poisson noise). Ignored for CITS.
    denoise : bool
        PCA-denoise the spectra (:func:`atomine.spectra.pca_denoise`) before unmixing.
    random_state : int
        Seed of every randomised step.
    progress : callable, optional
        ``progress(done, total, message)`` after each stage.

    Returns
    -------
    UnmixResult
    """
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    n_components = _positive_int(n_components, "n_components")
    if isinstance(random_state, bool) or not isinstance(random_state, (numbers.Integral, type(None))):
        raise InputError(f"random_state must be a non-negative integer or None, got {random_state!r}")
    tick = stage_clock(progress, _STAGES, timings)
    skipped: list[str] = []

    # 1. checks and preprocessing
    t0 = time.perf_counter()
    si, kind = prep.check_input(si)
    n_pixels = si.sizes["y"] * si.sizes["x"]
    if n_components is not None and n_components > n_pixels:
        raise InputError(f"n_components={n_components} is more than the {n_pixels} pixels; ask for fewer components")
    input_record = {"spectrum_image": {"name": str(si.name), "dims": list(map(str, si.dims)), "shape": list(si.shape),
                                       "signal": str(si.attrs.get("signal", "")), "content_hash": array_hash(si),
                                       "provenance": si.attrs.get("provenance", [])}}
    p = prep.prepare(si, kind, background=background, lowloss=lowloss, weighting=weighting,
                     random_state=random_state, need_k=True)
    refs, ref_names, ref_notes = prep.references_matrix(references, p.axis, p.dim)
    if denoise:
        p = _denoise(p, random_state)
    tick("preprocessing", t0)

    # 2. number of components
    t0 = time.perf_counter()
    r = refs.shape[0]
    k_info: dict[str, Any]
    if n_components is not None:
        k, k_info = n_components, {"criterion": "given"}
    elif r and method in ("fcls", "nnls"):
        k, k_info = r, {"criterion": "the number of references"}
    else:
        k, k_info = prep.choose_k(p.k_data, random_state)
        k = max(k, r)
    if r and method in ("fcls", "nnls") and k != r:
        raise InputError(f"with method={method!r} the {r} reference(s) are the endmembers, so n_components must be {r}; "
                         "use method='mcr' to add free components")
    if r > k:
        raise InputError(f"{r} references but n_components={k}; give n_components >= {r}")
    if k > n_pixels:
        raise InputError(f"{k} components need at least {k} pixels; the data have {n_pixels}")
    if method == "bayes" and k < 2:
        raise InputError("bayes needs at least 2 components")
    tick(f"{k} component(s)", t0)

    # 3. unmixing in the scaled, weighted space
    t0 = time.perf_counter()
    Xw = p.X * p.weights
    scale = float(np.sqrt(np.mean(Xw * Xw))) or 1.0
    Xs = Xw / scale
    refs_s = refs * p.weights / scale if r else refs

    def inner(done: int, total: int) -> None:
        if progress is not None and (done == total or done % max(1, total // 20) == 0):
            progress(2, _STAGES, f"{method}: {done}/{total}")

    A, Es, extra, m_info = _unmix(Xs, k, method, refs_s, random_state, inner)
    E = Es * scale / p.weights
    tick(f"unmixing ({method})", t0)

    # 4. residual, endmembers on the physical axis, annotations
    t0 = time.perf_counter()
    model = A @ E
    residual = np.sqrt(np.mean((p.X - model) ** 2, axis=1)).reshape(p.shape)
    lack_of_fit = float(100.0 * np.linalg.norm(Xw - (A @ Es) * scale) / max(np.linalg.norm(Xw), 1e-300))
    names = _names(k, ref_names, method)
    maps = _assemble(p, A, E, residual, extra, scale, names)
    annotations = _annotate(p, maps, skipped)
    tick("residual and annotations", t0)

    t0 = time.perf_counter()
    summary = {
        "kind": kind, "signal": str(si.attrs.get("signal", "")), "method": method, "n_components": k,
        "n_components_chosen": k_info.get("chosen", k_info["criterion"]), "n_components_criterion": k_info,
        "component_names": names, "preprocessing": p.info, "references": {"names": ref_names, "notes": ref_notes},
        "unmixing": m_info, "lack_of_fit_percent": lack_of_fit,
        "residual_rms_median": float(np.median(residual)), "residual_units": p.units,
        "abundance_sum_range": [float(A.sum(1).min()), float(A.sum(1).max())],
        "abundance_mean": A.mean(axis=0).tolist(), "endmember_min": float(np.min(maps["endmember"].values)),
        "skipped": skipped, "timings_s": timings,
    }
    if "endmember_counts" in maps:
        summary["endmember_counts_min"] = float(np.min(maps["endmember_counts"].values))
    parameters = {"method": method, "n_components": k, "references": ref_names, "background": background,
                  "lowloss": lowloss is not None, "weighting": weighting, "denoise": denoise,
                  "random_state": random_state}
    tick("summary", t0)
    return UnmixResult(maps, annotations, summary, parameters, input_record, started,
                       time.perf_counter() - t_start, timings)


def _denoise(p: prep.Prepared, random_state) -> prep.Prepared:
    """PCA-denoise the matrix to unmix (Poisson-weighted for counts)."""
    from ..spectra import pca_denoise

    da = xr.DataArray(p.X.reshape(p.shape + (p.axis.size,)), dims=("y", "x", p.dim), coords={p.dim: p.axis})
    counts = p.kind != "cits" and p.info.get("background", {}).get("mode") != "pixel"
    den, rep = pca_denoise(da, weighted=counts, random_state=random_state)
    p.X = np.asarray(den.values, dtype=np.float64).reshape(p.X.shape)
    p.info["denoise"] = {"method": "atomine.spectra.pca_denoise", "n_components": rep.n_components,
                         "criterion": rep.criterion, "variance_removed": rep.variance_removed,
                         "chi2_mean": rep.chi2_mean}
    return p


def _names(k: int, ref_names: list[str], method: str) -> list[str]:
    names = list(ref_names[:k]) if method in ("fcls", "nnls", "mcr", "bayes") else []
    return names + [f"component {i + 1}" for i in range(len(names), k)]


def _assemble(p: prep.Prepared, A, E, residual, extra, scale, names) -> xr.Dataset:
    ny, nx = p.shape
    k = A.shape[1]
    si = p.si
    coords = {"y": si.coords["y"], "x": si.coords["x"], "component": np.arange(k),
              "component_name": ("component", np.array(names, dtype=str)),
              p.dim: (p.dim, p.axis, dict(si.coords[p.dim].attrs) or {"units": p.axis_units})}
    spec = ("component", p.dim)
    label = "dI/dV" if p.kind == "cits" else "counts per channel"
    data_vars = {
        "abundance": (("component", "y", "x"), A.T.reshape(k, ny, nx).astype(np.float32),
                      {"units": "1", "long_name": "abundance (fraction of each pure spectrum)"}),
        "residual": (("y", "x"), residual.astype(np.float32),
                     {"units": p.units, "long_name": "RMS over channels of data minus model"}),
    }
    bg = p.info.get("background", {}).get("mode")
    if bg == "endmember":
        data_vars["endmember_counts"] = (spec, E, {"units": p.units, "long_name": f"pure spectrum, {label}, "
                                                                                  "background included"})
        data_vars["endmember"] = (spec, prep.subtract_background(E, p.axis, p.background_window),
                                  {"units": p.units, "long_name": f"pure spectrum, {label}, power-law background "
                                                                  f"({p.background_window[0]:.1f}-"
                                                                  f"{p.background_window[1]:.1f} eV) removed"})
    else:
        data_vars["endmember"] = (spec, E, {"units": p.units, "long_name": f"pure spectrum, {label}"})
    if extra:
        lo, hi = extra["abundance_lo_"], extra["abundance_hi_"]
        data_vars["abundance_lo"] = (("component", "y", "x"), lo.T.reshape(k, ny, nx).astype(np.float32),
                                     {"units": "1", "long_name": "lower 95 % credible bound of the abundance"})
        data_vars["abundance_hi"] = (("component", "y", "x"), hi.T.reshape(k, ny, nx).astype(np.float32),
                                     {"units": "1", "long_name": "upper 95 % credible bound of the abundance"})
        for name, key in (("endmember_lo", "components_lo_"), ("endmember_hi", "components_hi_")):
            data_vars[name] = (spec, extra[key] * scale / p.weights,
                               {"units": p.units, "long_name": f"{name[-2:]} 95 % credible bound of the pure spectrum"})
    for name, m in p.maps.items():
        data_vars[name] = (("y", "x"), np.asarray(m.values), dict(m.attrs))
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs = {"title": "atomine spectral unmixing", "atomine_version": __version__, "kind": p.kind,
                "data": str(si.name), "data_units": p.units, "data_provenance": list(si.attrs.get("provenance", []))}
    return ds


def _annotate(p: prep.Prepared, maps: xr.Dataset, skipped: list[str]) -> pd.DataFrame:
    """Edges per EELS component, X-ray lines per EDS component, gap and resonances per CITS component; empty
    (and recorded) otherwise."""
    try:
        from ..spectra import annotate_cits, annotate_eds, annotate_eels
    except ImportError:
        skipped.append("annotations: atomine.spectra.annotate_eels / annotate_eds / annotate_cits are not available")
        return pd.DataFrame()
    spectra = maps["endmember_counts"] if "endmember_counts" in maps else maps["endmember"]
    try:
        if p.kind == "cits":
            table = annotate_cits(spectra.values, p.axis)
        elif p.kind == "eels" and p.info.get("background", {}).get("mode") != "pixel":
            table = annotate_eels(spectra.values, p.axis)
        elif p.kind == "eds":
            # a component is a per-pixel spectrum; its lines are judged on the counts it stands for, at most
            # those of the pixels it represents (the sum of its abundance)
            table = annotate_eds(spectra, n_pixels=maps["abundance"].sum(("y", "x")).values,
                                 candidates=p.info.get("eds", {}).get("candidates"))
        else:
            skipped.append(f"annotations: none for {p.kind} data" + (" with the per-pixel background removed"
                                                                     if p.kind == "eels" else ""))
            return pd.DataFrame()
    except InputError as exc:
        skipped.append(f"annotations: {exc}")
        return pd.DataFrame()
    names = maps["component_name"].values
    if "component" in table and len(table):
        table.insert(1, "component_name", [str(names[int(c)]) for c in table["component"]])
    return table


__all__ = ["METHODS", "UnmixResult", "unmix_spectra"]
