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
    ``image_radial_v2`` (the default since catalog step 2; v1 stays computable with
    ``vector="image_radial_v1"`` so old catalogs remain searchable within v1): 37 numbers in
    two blocks, each rotation and dose invariant, weighted so class differences dominate:

    - 32 rings, 1-16 cycles/nm, of the power spectrum under a *circular* Hann window (the
      separable window of :func:`atomine.fourier.power_spectrum` leaks along the pixel axes,
      which turn with the lattice), zero-padded to twice the size (a Bragg peak is sampled
      near its top whether the lattice runs along the pixel axes or not), with linear (soft) assignment of each pixel to the two
      nearest log-spaced ring centres (a Bragg peak near a ring edge no longer jumps between
      rings when the lattice turns or the pixel size changes); floor removed, clipped at 3 % of
      the strongest ring (dose), log, centred, unit length. Periods beyond 1 nm are left out:
      their power is dopant/vacancy speckle that changes with every realisation.
    - 5 angular harmonics (|c_m| / c_0, m = 2, 4, 6, 8, 12) of the power around the strongest
      ring beyond 1.5 cycles/nm: the lattice symmetry (4- vs 6-fold), how many orientations
      (grains, inclusions) and how sharp the peaks are (dislocations broaden them); weight 1.5.

    Nothing in the vector depends on the pixel size itself (an acquisition setting, not what
    the image shows): the rings are in cycles/nm, so the same specimen at another
    magnification lands on the same vector. ``image_radial_px_v2`` for uncalibrated images
    uses 0.02-0.32 cycles/px.
    ``n_phases``: distinct local lattices (phases or grain orientations) from windowed FFTs
    (:mod:`atomine.catalog._phase_count`, ~30 ms per 512^2 image); on by default in full ingest.
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
# image_radial_v2 (see the module docstring): 32 rings + 5 angular harmonics
N_RADIAL_V2 = 32
_K_NM_V2 = (1.0, 16.0)
_K_PX_V2 = (0.02, 0.32)
_CLIP_V2 = 0.03
_HARMONICS = (2, 4, 6, 8, 12)
_W_ANGULAR = 1.5
_PAD_V2 = 2              # zero padding of the v2 power spectrum (see image_vector_v2)
N_VECTOR_V2 = N_RADIAL_V2 + len(_HARMONICS)   # 37
VECTOR_KINDS = ("image_radial_v1", "image_radial_v2")
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


def _circular_power(values: np.ndarray, pad: int = 1) -> np.ndarray:
    """fftshifted power spectrum under a circular Hann window (rotation-symmetric leakage).

    ``pad`` > 1 zero-pads to ``pad`` times the size: the same spectrum sampled ``pad`` times
    finer in k, so a Bragg peak is sampled near its top whatever its sub-pixel position.
    """
    ny, nx = values.shape
    y = (np.arange(ny) - (ny - 1) / 2) / (ny / 2)
    x = (np.arange(nx) - (nx - 1) / 2) / (nx / 2)
    r = np.hypot(*np.meshgrid(x, y))
    w = np.where(r < 1.0, 0.5 + 0.5 * np.cos(np.pi * np.minimum(r, 1.0)), 0.0)
    d = (values - (values * w).sum() / w.sum()) * w
    return np.abs(np.fft.fftshift(np.fft.fft2(d, s=(pad * ny, pad * nx)))) ** 2


def _soft_rings(p: np.ndarray, kk: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean power per log-spaced ring centre, each pixel shared linearly between its two nearest centres."""
    n = centres.size
    step = math.log(centres[1] / centres[0])
    pos = (np.log(np.maximum(kk.ravel(), 1e-30)) - math.log(centres[0])) / step
    i0 = np.floor(pos).astype(np.int64)
    w1 = pos - i0
    total, weight = np.zeros(n), np.zeros(n)
    for idx, w in ((i0, 1.0 - w1), (i0 + 1, w1)):
        ok = (idx >= 0) & (idx < n)
        total += np.bincount(idx[ok], weights=(w * p.ravel())[ok], minlength=n)
        weight += np.bincount(idx[ok], weights=w[ok], minlength=n)
    return total / np.maximum(weight, 1e-12), weight > 0.5


def _angular_harmonics(p: np.ndarray, kk: np.ndarray, phi: np.ndarray, k0: float, floor: float) -> np.ndarray:
    """|c_m| / c_0 of the floor-free power in the annulus 0.9-1.1 k0 against azimuth (180 bins)."""
    ring = (kk > 0.9 * k0) & (kk < 1.1 * k0)
    nb = 180
    b = np.floor((phi[ring] % (2 * np.pi)) / (2 * np.pi) * nb).astype(np.int64) % nb
    count = np.bincount(b, minlength=nb)
    prof = np.bincount(b, weights=np.maximum(p[ring] - floor, 0.0), minlength=nb) / np.maximum(count, 1)
    c = np.abs(np.fft.rfft(prof))
    return np.array([c[m] / c[0] if c[0] > 0 else 0.0 for m in _HARMONICS])


def image_vector_v2(values: np.ndarray, pixel_nm: float | None) -> np.ndarray:
    """``image_radial_v2`` of a (y, x) array with square pixels of ``pixel_nm`` (None: uncalibrated)."""
    # 2x zero padding: without it a lattice along the pixel axes has its peaks sampled at
    # their tops (sharper rings and angular profile) and a turned one between pixels; measured
    # on the validation set, the unrotated sibling of a 15 deg turned query then fell out of
    # its top 5 in 3 of 9 generators (0 of 9 with padding)
    p = _circular_power(values, pad=_PAD_V2)
    step = pixel_nm if pixel_nm is not None else 1.0
    ky = np.fft.fftshift(np.fft.fftfreq(_PAD_V2 * values.shape[0], d=step))
    kx = np.fft.fftshift(np.fft.fftfreq(_PAD_V2 * values.shape[1], d=step))
    KX, KY = np.meshgrid(kx, ky)
    kk, phi = np.hypot(KX, KY), np.arctan2(KY, KX)
    nyq = 0.5 / step
    outer = kk > 0.85 * nyq
    floor = float(np.median(p[outer])) if outer.any() else 0.0
    centres = np.geomspace(*(_K_NM_V2 if pixel_nm is not None else _K_PX_V2), N_RADIAL_V2)
    mean, valid = _soft_rings(p, kk, centres)
    mean = mean - floor
    out = np.zeros(N_VECTOR_V2)
    peak = float(mean[valid].max()) if valid.any() else 0.0
    if peak <= 0:  # a flat image: no content to compare
        return out
    v = np.where(valid, np.log10(np.maximum(mean, _CLIP_V2 * peak) / peak), 0.0)
    v[valid] -= v[valid].mean()
    v[~valid] = 0.0
    norm = np.linalg.norm(v)
    out[:N_RADIAL_V2] = v / norm if norm > 0 else v
    # strongest ring beyond the speckle-dominated low k (1.5 cycles/nm, or its px equivalent)
    lattice_k = valid & (centres > (1.5 if pixel_nm is not None else 1.5 * _K_PX_V2[0]))
    if lattice_k.any():
        k0 = float(centres[np.argmax(np.where(lattice_k, mean, -np.inf))])
        out[N_RADIAL_V2:] = _W_ANGULAR * _angular_harmonics(p, kk, phi, k0, floor)
    return out / np.linalg.norm(out)


def image_descriptors(da: xr.DataArray, *, phases: bool = True,
                      vector: str = "image_radial_v2") -> tuple[dict[str, float], str, np.ndarray]:
    """(scalars, vector kind, vector) of a (y, x) image; lattice lengths in nm when calibrated.

    ``vector`` selects the similarity vector: "image_radial_v2" (default) or "image_radial_v1"
    (to query a catalog built before v2); uncalibrated images get the ``_px_`` variant.
    """
    from ..data import axis_scale, axis_units, length_factor_to_nm
    from ..errors import InputError

    if vector not in VECTOR_KINDS:
        raise InputError(f"unknown image vector kind {vector!r}; choose one of {', '.join(VECTOR_KINDS)}")
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
    if vector == "image_radial_v1":
        kind = "image_radial_v1" if factor is not None else "image_radial_px_v1"
        return scalars, kind, radial_profile(p, ky, kx, _K_NM if factor is not None else _K_PX)
    pixel_nm = None if factor is None else abs(axis_scale(img, "x")) * factor
    kind = "image_radial_v2" if factor is not None else "image_radial_px_v2"
    return scalars, kind, image_vector_v2(np.asarray(img.values, dtype=np.float64), pixel_nm)


def phase_count(img: xr.DataArray) -> dict[str, float]:
    """``n_phases``: distinct local lattices (phases or grain orientations) from windowed FFTs.

    See :func:`atomine.catalog._phase_count.count_phases` (~30 ms per 512^2 image on one core);
    {} when the image has no lattice or too few windows. BLAS is held to one thread: the
    small PCA is slower threaded, and ingest may run next to other work.
    """
    from threadpoolctl import threadpool_limits

    from ._phase_count import count_phases

    with threadpool_limits(limits=1):
        found = count_phases(np.asarray(img.values, dtype=np.float64))
    return {"n_phases": float(found["n_phases"])} if "n_phases" in found else {}


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


def describe(da: xr.DataArray, *, phases: bool = True, image_vector: str = "image_radial_v2",
             ) -> tuple[dict[str, float], list[str], str | None, np.ndarray | None]:
    """(descriptors, elements found, vector kind, vector) for any signal; empty for kinds without one.

    ``image_vector``: "image_radial_v2" (default) or "image_radial_v1" for images (see the module doc).
    """
    kind = signal_kind(da)
    if kind == "image":
        s, vk, v = image_descriptors(da, phases=phases, vector=image_vector)
        return s, [], vk, v
    signal = str(da.attrs.get("signal", "")).upper()
    if kind == "cits":
        return cits_descriptors(da)
    if kind in ("spectrum_image", "spectrum"):
        return eds_descriptors(da) if signal in ("EDS", "EDX", "XEDS") else eels_descriptors(da)
    return {}, [], None, None
