"""Phase, defect and order-parameter maps of an atomically resolved image from its sliding FFT.

:func:`segment_phases` composes the algorithm packages:

1. window size from the lattice period (:func:`~atomine.fourier.estimate_window`) and a band
   limit of twice the highest strong Bragg peak;
2. sliding FFT, one feature vector per window (:mod:`._segment_unmix`);
3. unmixing (N-FINDR, NMF, PCA, k-means or Gaussian mixture), the number of phases chosen
   from the data unless given;
4. abundances, phase labels, a residual and a defect flag per window, brought back to image
   pixels (:mod:`._pixel_maps`);
5. local lattice (rotation, strain, lattice constants, uncertainties) from a second sliding
   FFT with larger windows, each phase against its own reference, and dislocation cores
   (GPA), grain and phase boundaries as coordinates (:mod:`._segment_lattice`).
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
from ..data import axis_scale, axis_units
from ..errors import InputError
from ..fourier import estimate_window, find_lattice_peaks, power_spectrum, sliding_fft
from . import _segment_lattice as lat
from ._image_results import as_image, finish_folder, image_inputs, provenance_record, stage_clock
from ._pixel_maps import to_pixels
from ._segment_unmix import METHODS, choose_n_components, principal_scores, robust_z, unmix, window_features

Progress = Callable[[int, int, str], None]
_STAGES = 7
_CROP = 1024        # central crop (px) used to find the global Bragg peaks
_LAZY_ABOVE = 4096 * 4096  # images with more pixels get their pixel maps lazily, block by block
_PERSIST_BYTES = 512 << 20  # a dask lattice stack up to this size is computed once and kept


@dataclass
class SegmentResult:
    """Everything :func:`segment_phases` found.

    Attributes
    ----------
    maps : xarray.Dataset
        On the image grid (y, x): ``phase`` (int16 labels), ``abundance`` (component, y, x),
        ``defect`` (bool), ``residual_z``, ``rotation`` (deg), ``strain`` (strain_component, y, x: exx,
        eyy, exy). On the segmentation windows (wy, wx): ``window_abundance``,
        ``window_phase``, ``window_residual_z``, ``window_defect``. On the lattice windows
        (lwy, lwx): ``lattice_<rotation|exx|eyy|exy|a1|a2>`` and their ``_err``. On (component,
        ky, kx): ``component_spectrum``, each phase's FFT magnitude (unit sum).
    defects : pandas.DataFrame
        kind (dislocation, grain_boundary, phase_boundary), x, y (nm), bx, by, b_nm.
    summary : dict
        Window, step, method, number of phases (and how it was chosen), phase fractions,
        per-phase lattice, defect counts, timings.
    """

    maps: xr.Dataset
    defects: pd.DataFrame
    summary: dict[str, Any]
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    started: str
    elapsed_s: float
    timings: dict[str, float] = field(default_factory=dict)

    def provenance(self, files: dict[str, str] | None = None) -> dict[str, Any]:
        return provenance_record("atomine.workflows.segment.segment_phases", self, files)

    def save(self, directory: str | os.PathLike, overwrite: bool = False, *,
             report: Callable[["SegmentResult", Path], Any] | None = None) -> Path:
        """Write ``result.zarr``, ``defects.parquet`` (+ ``.csv``), ``summary.json``, ``provenance.json`` and,
        given a ``report(result, path)`` writer, ``report.html``; atomically. An existing folder is refused
        unless ``overwrite``."""
        from ..io import save
        from ..io._atomic import atomic_path

        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
            tmp.mkdir()
            save(self.maps, tmp / "result.zarr")
            self.defects.to_parquet(tmp / "defects.parquet", index=False)
            self.defects.to_csv(tmp / "defects.csv", index=False)
            finish_folder(tmp, self, report)
        return directory


def _check_finite(image: xr.DataArray) -> None:
    data = image.data
    bad = (~np.isfinite(data)).any()
    if bool(bad.compute() if hasattr(bad, "compute") else bad):
        raise InputError("the image contains NaN or inf; fill or crop the unmeasured pixels first")


def _global_peaks(image: xr.DataArray) -> np.ndarray:
    ny, nx = image.shape
    cy, cx = max(0, (ny - _CROP) // 2), max(0, (nx - _CROP) // 2)
    crop = image[cy:cy + _CROP, cx:cx + _CROP]
    crop = crop.copy(data=np.asarray(crop.data.compute() if hasattr(crop.data, "compute") else crop.data))
    return find_lattice_peaks(power_spectrum(crop), n=3, min_angle_deg=10.0)


def _positive_int(value, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{what} must be a positive whole number, got {value!r}")
    return int(value)


def segment_phases(image, window: int | None = None, step: int | None = None, n_components: int | None = None,
                   method: str = "nfindr", *, lattice_window: int | None = None, k_max: float | None = None,
                   defect_z: float = 5.0, min_abundance: float = 0.5, grain_boundary_deg: float = 4.0,
                   random_state=0, progress: Progress | None = None) -> SegmentResult:
    """Segment an image into phases and defects and map its lattice order parameters.

    Parameters
    ----------
    image : xarray.DataArray (y, x) in nm, or 2-D array (pixel units); may be dask-backed
    window : int, optional
        Sliding-FFT window (px); default from the lattice period (4-8 periods, a power of two).
    step : int, optional
        Window step (px); default window // 4.
    n_components : int, optional
        Number of phases; default chosen from the data (see
        :func:`._segment_unmix.choose_n_components`).
    method : {"nfindr", "nmf", "pca", "kmeans", "gmm"}
    lattice_window : int, optional
        Window of the order-parameter FFT; default 2 x ``window`` (8-16 lattice periods: more
        periods per window give more precise peaks, at the cost of resolution), at most the
        image side.
    k_max : float, optional
        Band limit of the features (cycles per length unit); default twice the highest of the
        three strongest Bragg peaks, capped at Nyquist.
    defect_z : float
        A window whose residual lies this many robust standard deviations above the typical
        one is a defect (no endmember explains it).
    min_abundance : float
        ... as is a window whose largest abundance is below this (no phase dominates it).
    grain_boundary_deg : float
        Smallest rotation jump between neighbouring lattice windows reported as a grain boundary.
    random_state : int, numpy Generator or None
        Seed of every randomised step; equal seeds give equal results.
    progress : callable, optional
        ``progress(done, total, message)`` after each stage.
    """
    t_start = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    image = as_image(image, "segment_phases")
    window = _positive_int(window, "window")
    step = _positive_int(step, "step")
    n_components = _positive_int(n_components, "n_components")
    lattice_window = _positive_int(lattice_window, "lattice_window")
    for what, value in (("defect_z", defect_z), ("grain_boundary_deg", grain_boundary_deg)):
        if not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
            raise InputError(f"{what} must be a positive number, got {value!r}")
    if not isinstance(min_abundance, numbers.Real) or not 0 <= min_abundance < 1:
        raise InputError(f"min_abundance must lie in [0, 1), got {min_abundance!r}")
    ny, nx = image.shape
    if min(ny, nx) < 16:
        raise InputError(f"the image is {ny} x {nx} px; segmentation needs at least 16 px a side")
    if window is not None and window > min(ny, nx):
        raise InputError(f"window {window} px is larger than the image ({ny} x {nx} px); use a window <= {min(ny, nx)}")
    _check_finite(image)
    tick = stage_clock(progress, _STAGES, timings)

    # 1. window size and band limit from the lattice
    t0 = time.perf_counter()
    window = estimate_window(image) if window is None else window
    step = max(1, window // 4) if step is None else step
    lattice_window = min(min(ny, nx), 2 * window) if lattice_window is None else lattice_window
    if lattice_window > min(ny, nx):
        raise InputError(f"lattice_window {lattice_window} px is larger than the image ({ny} x {nx} px)")
    nyquist = 0.5 / max(abs(axis_scale(image, "y")), abs(axis_scale(image, "x")))
    peaks = _global_peaks(image)
    if k_max is None:
        k_max = float(min(nyquist, 2.0 * np.max(np.linalg.norm(peaks, axis=1))))
    n_windows = ((ny - window) // step + 1) * ((nx - window) // step + 1)
    if n_components is not None and n_components > n_windows:
        raise InputError(f"n_components={n_components} is more than the {n_windows} windows; ask for fewer "
                         "components or use a smaller step")
    tick("window and band limit", t0)

    # 2. sliding FFT -> features
    t0 = time.perf_counter()
    stack = sliding_fft(image, window, step, output="magnitude", mask_dc=True, k_max=k_max)
    features = window_features(stack)
    shape = (stack.sizes["wy"], stack.sizes["wx"])
    tick("sliding FFT features", t0)

    # 3. principal scores, number of phases
    t0 = time.perf_counter()
    scores = None if method == "nmf" and n_components is not None else principal_scores(features, random_state)
    criterion: list[dict] = []
    if n_components is None:
        n_components, criterion = choose_n_components(scores, random_state)
    k = n_components
    tick(f"{k} phase(s)", t0)

    # 4. unmixing
    t0 = time.perf_counter()
    mixed = unmix(features, scores, method if k > 1 else "nfindr", k, random_state)
    del features
    z = robust_z(mixed.residual)
    max_ab = np.max(mixed.abundance, axis=1) if method != "pca" else np.ones(len(z))
    defect = (z > defect_z) | (max_ab < min_abundance)
    labels = mixed.labels.reshape(shape)
    tick("unmixing", t0)

    # 5. order parameters per phase
    t0 = time.perf_counter()
    # the lattice windows overlap by 3/4 like the segmentation's (resolution is the window's, not the
    # step's); a stack that fits in memory is computed once for the several passes over it
    lattice_step = max(step, lattice_window // 4)
    lstack = sliding_fft(image, lattice_window, lattice_step, output="magnitude", k_max=k_max)
    if hasattr(lstack.data, "dask") and lstack.nbytes <= _PERSIST_BYTES:
        lstack = lstack.copy(data=lstack.data.compute())
    onehot = (labels[None] == np.arange(k)[:, None, None]).astype(np.float64)
    llabels = np.argmax(to_pixels(onehot, stack.wy.values, stack.wx.values, lstack.wy.values, lstack.wx.values),
                        axis=0)
    lattice, lattice_info = lat.lattice_order(lstack, llabels, k)
    tick("local lattice", t0)

    # 6. dislocations, grain and phase boundaries
    t0 = time.perf_counter()
    ref = lattice_info.get("reference_phase")
    tables = []
    if ref is not None:
        tables.append(lat.dislocations(image, np.asarray(lattice_info["phases"][ref]["g_per_nm"])))
        tables.append(lat.grain_boundaries(lattice, lattice_info.get("symmetry_period_deg"), grain_boundary_deg))
    tables.append(lat.phase_boundaries(labels, stack.wy.values, stack.wx.values))
    from ..fourier import defect_table

    defects = defect_table(*tables)
    tick("defects", t0)

    # 7. maps on image pixels
    t0 = time.perf_counter()
    maps = _assemble(image, stack, lstack, mixed, labels, z, defect, lattice, k)
    tick("maps", t0)

    units = axis_units(image, "x") or "px"
    phase_fraction = np.bincount(mixed.labels, minlength=k) / mixed.labels.size
    summary = {
        "window_px": window, "step_px": step, "lattice_window_px": lattice_window, "lattice_step_px": lattice_step, "k_max": k_max,
        "k_units": f"1/{units}", "method": method if k > 1 else "single phase", "n_components": k,
        "n_components_chosen": "given" if not criterion else "silhouette", "n_components_criterion": criterion,
        "n_windows": int(mixed.labels.size), "phase_window_fraction": phase_fraction.tolist(),
        "defect_window_fraction": float(np.mean(defect)), "global_peaks_per_nm": peaks.tolist(),
        "lattice": lattice_info,
        "defect_counts": {str(kind): int(n) for kind, n in defects["kind"].value_counts().items()},
        "timings_s": timings,
    }
    parameters = {"window": window, "step": step, "n_components": k, "method": method,
                  "lattice_window": lattice_window, "lattice_step": lattice_step, "k_max": k_max, "defect_z": defect_z,
                  "min_abundance": min_abundance, "grain_boundary_deg": grain_boundary_deg,
                  "random_state": random_state if isinstance(random_state, (int, type(None))) else "generator"}
    inputs = image_inputs(image)
    return SegmentResult(maps, defects, summary, parameters, inputs, started, time.perf_counter() - t_start,
                         timings)


def _assemble(image, stack, lstack, mixed, labels, z, defect, lattice, k) -> xr.Dataset:
    """The result Dataset: pixel maps (lazy for large images), window maps and component spectra."""
    ny, nx = image.shape
    lazy = ny * nx > _LAZY_ABOVE or hasattr(image.data, "dask")
    shape = labels.shape
    wy, wx, y, x = stack.wy.values, stack.wx.values, image.y.values, image.x.values
    A = mixed.abundance.reshape(shape + (k,)).transpose(2, 0, 1)
    abundance = to_pixels(A, wy, wx, y, x, lazy=lazy)
    # labels from the interpolated abundances: boundaries fall where two phases are equally abundant
    onehot = (labels[None] == np.arange(k)[:, None, None]).astype(np.float64)
    weights = onehot if np.any(mixed.abundance < 0) else A  # PCA scores are not fractions
    phase = to_pixels(weights, wy, wx, y, x, lazy=lazy).argmax(axis=0).astype(np.int16)
    extra = to_pixels(np.stack([z.reshape(shape), defect.reshape(shape).astype(np.float64)]), wy, wx, y, x, lazy=lazy)
    lw = (lattice.wy.values, lattice.wx.values)
    order = to_pixels(np.stack([lattice[v].values for v in ("rotation", "exx", "eyy", "exy")]), *lw, y, x, lazy=lazy)
    comps = mixed.components
    nky, nkx = stack.sizes["ky"], stack.sizes["kx"]
    spectra = comps.reshape(k, nky, nkx) if comps.shape[1] == nky * nkx else np.full((k, nky, nkx), np.nan)
    spectra = np.square(np.maximum(spectra, 0))  # back from the sqrt features to unit-sum magnitudes
    spectra /= np.maximum(spectra.sum(axis=(1, 2), keepdims=True), 1e-300)
    length = {"units": axis_units(image, "x") or "px"}
    dims = ("y", "x")
    data_vars = {
        "phase": (dims, phase, {"long_name": "phase label (largest abundance)"}),
        "abundance": (("component",) + dims, abundance, {"units": "1", "long_name": "phase abundance"}),
        "defect": (dims, extra[1] >= 0.5, {"long_name": "window no endmember explains"}),
        "residual_z": (dims, extra[0], {"units": "robust sigma", "long_name": "unmixing residual"}),
        "rotation": (dims, order[0], {"units": "deg", "long_name": "lattice rotation, counter-clockwise as displayed"}),
        "strain": (("strain_component",) + dims, order[1:], {"units": "1", "long_name": "strain against each phase's reference"}),
        "window_abundance": (("component", "wy", "wx"), A.astype(np.float32), {"units": "1"}),
        "window_phase": (("wy", "wx"), labels.astype(np.int16), {}),
        "window_residual_z": (("wy", "wx"), z.reshape(shape).astype(np.float32), {"units": "robust sigma"}),
        "window_defect": (("wy", "wx"), defect.reshape(shape), {}),
        "component_spectrum": (("component", "ky", "kx"), spectra.astype(np.float32),
                               {"units": "1", "long_name": "FFT magnitude of each component (unit sum)"}),
    }
    lat_ds = lattice.rename({"wy": "lwy", "wx": "lwx"})
    for v in lat_ds.data_vars:
        data_vars[f"lattice_{v}"] = lat_ds[v]
    coords = {"y": ("y", y, dict(image.y.attrs) or length), "x": ("x", x, dict(image.x.attrs) or length),
              "component": np.arange(k), "strain_component": ["exx", "eyy", "exy"],
              "wy": stack.wy, "wx": stack.wx, "ky": stack.ky, "kx": stack.kx,
              "lwy": ("lwy", lattice.wy.values, dict(lattice.wy.attrs)),
              "lwx": ("lwx", lattice.wx.values, dict(lattice.wx.attrs))}
    ds = xr.Dataset(data_vars, coords=coords)
    ds.attrs = {"title": "atomine phase segmentation", "atomine_version": __version__,
                "image": str(image.name), "image_provenance": list(image.attrs.get("provenance", []))}
    return ds


__all__ = ["SegmentResult", "segment_phases"]
