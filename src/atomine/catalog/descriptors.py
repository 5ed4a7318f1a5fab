"""Content descriptors for the catalog: scalars to filter on and a vector for "more like this".

Images
    Lattice from the power spectrum: the two strongest non-collinear Bragg peaks, reduced to
    the primitive cell when weaker reflections at half their sum/difference are present (in
    HAADF perovskites (110) outshines (100)); the real-space basis is the inverse of the
    reciprocal one, so ``lattice_a_nm`` <= ``lattice_b_nm`` are real lattice constants (0.316 nm
    for MoS2, not its 0.274 nm (100) spacing) and ``lattice_angle_deg`` is their angle folded
    into [60, 90] deg. Absent when no peak stands out of the background.
    ``image_radial_v1``: mean power in 32 log-spaced rings from 0.2 to 20 cycles/nm, the white
    (shot-noise) floor subtracted, log10, centred and scaled to unit length. Rings average over
    direction (rotation invariance); a dose change scales the signal power and the floor, both
    removed (dose invariance). Uncalibrated images get ``image_radial_px_v1`` (0.002-0.5 cycles/px).
    ``n_phases`` from :func:`atomine.workflows.segment_phases` (optional: about 2 s per 512^2 image).
Spectra
    EELS: edges named by :func:`atomine.spectra.find_edges` -> ``edge:<El>_<edge>`` = 1 (both
    ``Mn_L3`` and the combined ``Mn_L23``), elements. EDS: :func:`atomine.spectra.identify_lines`.
    CITS: ``gap_v`` from the mean dI/dV. Signature vectors (``spectrum_v1`` EELS, 0-3000 eV;
    ``eds_spectrum_v1``, 0-20 keV; ``cits_v1``, -2..2 V): the summed spectrum averaged into 128
    fixed bins, log, centred, unit length; bins the data do not cover are 0.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..data import signal_kind

N_RADIAL = 32
_K_NM = (0.2, 20.0)      # cycles/nm: from ~5 nm periods down to 0.05 nm, beyond any STEM resolution
_K_PX = (0.002, 0.5)     # cycles/px for uncalibrated images
_PEAK_SNR = 200.0        # Bragg peak power / median power for "there is a lattice"
_HALF_FRACTION = 0.01    # a half-vector reflection this strong (relative to the weaker main peak) is real
_MAX_SIDE = 1024         # larger images: the central 1024^2 crop (lattice and profile need no more)
_COMBINED = {"L2": "L23", "L3": "L23", "M4": "M45", "M5": "M45", "N4": "N45", "N5": "N45"}


def _crop(da: xr.DataArray) -> xr.DataArray:
    ny, nx = da.sizes["y"], da.sizes["x"]
    y0, x0 = max(0, (ny - _MAX_SIDE) // 2), max(0, (nx - _MAX_SIDE) // 2)
    return da.isel(y=slice(y0, y0 + _MAX_SIDE), x=slice(x0, x0 + _MAX_SIDE))


def _power_at(p: np.ndarray, ky: np.ndarray, kx: np.ndarray, g: np.ndarray) -> float:
    iy = int(np.argmin(np.abs(ky - g[1])))
    ix = int(np.argmin(np.abs(kx - g[0])))
    return float(p[max(0, iy - 1):iy + 2, max(0, ix - 1):ix + 2].max())


def _cross(u, v) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def _gauss_reduce(b: np.ndarray) -> np.ndarray:
    """Lagrange-Gauss reduction of a 2-D basis (rows): shortest, nearly orthogonal vectors."""
    u, v = b[0].copy(), b[1].copy()
    for _ in range(50):
        if u @ u > v @ v:
            u, v = v, u
        m = round(float(u @ v) / float(u @ u))
        if m == 0:
            break
        v = v - m * u
    return np.array([u, v])


def lattice(p: np.ndarray, ky: np.ndarray, kx: np.ndarray) -> dict[str, float]:
    """Real-space lattice constants (units of 1/k) and angle from a power spectrum; {} without a lattice."""
    from ..fourier import find_lattice_peaks

    try:
        g = find_lattice_peaks(p, ky, kx, n=2)
    except Exception:  # fewer than two distinct peaks: no 2-D lattice
        return {}
    noise = float(np.median(p[p > 0])) if np.any(p > 0) else 0.0
    strengths = [_power_at(p, ky, kx, gi) for gi in g]
    if noise <= 0 or min(strengths) < _PEAK_SNR * noise:
        return {}
    g = _gauss_reduce(g)
    for _ in range(2):  # at most two halvings: centred cells of the primitive one
        floor = _HALF_FRACTION * min(_power_at(p, ky, kx, gi) for gi in g)
        for h in (0.5 * (g[0] + g[1]), 0.5 * (g[0] - g[1]), 0.5 * g[0], 0.5 * g[1]):
            if np.hypot(*h) < 2.5 * abs(ky[1] - ky[0]):
                continue
            if _power_at(p, ky, kx, h) > max(floor, _PEAK_SNR * noise):
                other = g[1] if abs(_cross(h, g[1])) > abs(_cross(h, g[0])) else g[0]
                g = _gauss_reduce(np.array([h, other]))
                break
        else:
            break
    a = _gauss_reduce(np.linalg.inv(g).T)  # rows a_i with a_i . g_j = delta_ij
    la, lb = sorted(float(np.hypot(*r)) for r in a)
    angle = math.degrees(math.acos(np.clip(abs(a[0] @ a[1]) / (np.hypot(*a[0]) * np.hypot(*a[1])), 0, 1)))
    return {"lattice_a": la, "lattice_b": lb, "lattice_angle_deg": max(angle, 180.0 - angle) if angle < 60 else angle}


def radial_profile(p: np.ndarray, ky: np.ndarray, kx: np.ndarray, k_range: tuple[float, float]) -> np.ndarray:
    """Unit-length, centred log10 ring-averaged power (noise floor removed) on fixed log bins."""
    kk = np.hypot(*np.meshgrid(kx, ky))
    nyq = min(np.abs(kx).max(), np.abs(ky).max())
    outer = kk > 0.85 * nyq
    floor = float(np.median(p[outer])) if outer.any() else 0.0
    edges = np.geomspace(k_range[0], k_range[1], N_RADIAL + 1)
    idx = np.digitize(kk.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < N_RADIAL)
    total = np.bincount(idx[ok], weights=p.ravel()[ok], minlength=N_RADIAL)
    count = np.bincount(idx[ok], minlength=N_RADIAL)
    valid = count > 0
    mean = np.where(valid, total / np.maximum(count, 1), 0.0) - floor
    peak = float(mean[valid].max()) if valid.any() else 0.0
    if peak <= 0:
        return np.zeros(N_RADIAL)
    # clip at 1 % of the strongest ring: noise-only rings then sit at the same level at any dose
    v = np.where(valid, np.log10(np.maximum(mean, 1e-2 * peak) / peak), 0.0)
    v[valid] -= v[valid].mean()
    v[~valid] = 0.0
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def image_descriptors(da: xr.DataArray, *, phases: bool = False) -> tuple[dict[str, float], str, np.ndarray]:
    """(scalars, vector kind, vector) of a (y, x) image; lattice lengths in nm when calibrated."""
    from ..data import axis_units, length_factor_to_nm
    from ..fourier import power_spectrum

    img = _crop(da)
    values = np.asarray(img.values, dtype=np.float64)
    if not np.isfinite(values).all():
        img = img.copy(data=np.nan_to_num(values, nan=float(np.nanmean(values))))
    try:
        factor = length_factor_to_nm(axis_units(img, "x"))
    except Exception:  # pixel units: lattice in px, profile on the px grid
        factor = None
    spec = power_spectrum(img)
    p = np.asarray(spec.values, dtype=np.float64)
    ky, kx = np.asarray(spec.ky.values), np.asarray(spec.kx.values)
    if factor is not None:  # k in cycles per file unit -> cycles/nm
        ky, kx = ky / factor, kx / factor
    scalars: dict[str, float] = {}
    lat = lattice(p, ky, kx)
    suffix = "_nm" if factor is not None else "_px"
    if lat:
        scalars.update({f"lattice_a{suffix}": lat["lattice_a"], f"lattice_b{suffix}": lat["lattice_b"],
                        "lattice_angle_deg": lat["lattice_angle_deg"]})
    if phases and lat:
        scalars.update(phase_count(img))
    kind = "image_radial_v1" if factor is not None else "image_radial_px_v1"
    return scalars, kind, radial_profile(p, ky, kx, _K_NM if factor is not None else _K_PX)


def phase_count(img: xr.DataArray) -> dict[str, float]:
    """``n_phases`` from a sliding-FFT segmentation; {} when it cannot run on this image."""
    from ..workflows import segment_phases

    try:
        res = segment_phases(img)
    except Exception:  # too small, no lattice, ...: the count is simply absent
        return {}
    n = res.summary.get("n_phases") if isinstance(res.summary, dict) else None
    return {"n_phases": float(n)} if n is not None else {}


def _signature(x: np.ndarray, y: np.ndarray, lo: float, hi: float, n: int = 128) -> np.ndarray:
    """Mean of y in n fixed bins over [lo, hi], log, centred over covered bins, unit length."""
    edges = np.linspace(lo, hi, n + 1)
    idx = np.digitize(x, edges) - 1
    ok = (idx >= 0) & (idx < n)
    total = np.bincount(idx[ok], weights=y[ok], minlength=n)
    count = np.bincount(idx[ok], minlength=n)
    valid = count > 0
    if not valid.any():
        return np.zeros(n)
    mean = total / np.maximum(count, 1)
    scale = float(np.abs(mean[valid]).max()) or 1.0
    v = np.where(valid, np.log10(np.maximum(np.abs(mean) / scale, 1e-6)), 0.0)
    v[valid] -= v[valid].mean()
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v


def eels_descriptors(da: xr.DataArray) -> tuple[dict[str, float], list[str], str, np.ndarray]:
    from ..spectra import find_edges, summed_spectrum

    counts, energy = summed_spectrum(da)
    scalars: dict[str, float] = {}
    elements: set[str] = set()
    try:
        table = find_edges(counts, energy=energy)
    except Exception:  # too short or flat a spectrum: no edges rather than a failed ingest
        table = None
    if table is not None:
        for row in table.itertuples():
            if row.element is None or not isinstance(row.element, str):
                continue
            elements.add(row.element)
            scalars[f"edge:{row.element}_{row.edge}"] = 1.0
            scalars[f"edge:{row.element}_{_COMBINED.get(row.edge, row.edge)}"] = 1.0
    return scalars, sorted(elements), "spectrum_v1", _signature(energy, counts, 0.0, 3000.0)


def eds_descriptors(da: xr.DataArray) -> tuple[dict[str, float], list[str], str, np.ndarray]:
    from ..spectra import identify_lines, summed_spectrum

    counts, energy = summed_spectrum(da)
    if energy.max() > 100:  # eV axis -> keV for the fixed grid
        energy = energy / 1000.0
    elements: list[str] = []
    try:
        found = identify_lines(da)
        elements = sorted(found[1]) if isinstance(found, tuple) else sorted(getattr(found, "elements", []))
    except Exception:  # no peaks / unsupported axis: no elements
        elements = []
    scalars = {f"line:{e}": 1.0 for e in elements}
    return scalars, elements, "eds_spectrum_v1", _signature(energy, counts, 0.0, 20.0)


def cits_descriptors(da: xr.DataArray) -> tuple[dict[str, float], list[str], str, np.ndarray]:
    from ..spectra import didv, gap_edges

    g = didv(da).mean(("y", "x"))
    bias, curve = np.asarray(g.bias.values, float), np.asarray(g.values, float)
    scalars: dict[str, float] = {}
    try:
        lo, hi = gap_edges(curve, bias)
        if np.isfinite(lo) and np.isfinite(hi):
            scalars["gap_v"] = float(hi - lo)
    except Exception:  # bias range not spanning 0 V: no gap
        pass
    return scalars, [], "cits_v1", _signature(bias, curve, -2.0, 2.0)


def describe(da: xr.DataArray, *, phases: bool = False) -> tuple[dict[str, float], list[str], str | None, np.ndarray | None]:
    """(descriptors, elements found, vector kind, vector) for any signal; empty for kinds without one."""
    kind = signal_kind(da)
    if kind == "image":
        s, vk, v = image_descriptors(da, phases=phases)
        return s, [], vk, v
    signal = str(da.attrs.get("signal", "")).upper()
    if kind == "cits":
        return cits_descriptors(da)
    if kind in ("spectrum_image", "spectrum"):
        return eds_descriptors(da) if signal in ("EDS", "EDX", "XEDS") else eels_descriptors(da)
    return {}, [], None, None
