"""Lattice order parameters from Fourier peaks: Bragg peaks, local lattice vectors, rotation and strain.

Conventions (see DESIGN.md): x to the right, y downward, in nm; a reciprocal vector
g = (gx, gy) in cycles/nm is where the FFT of ``cos(2 pi g.r)`` peaks; real-space
lattice vectors a_i are the dual basis (a_i . g_j = delta_ij). Rotation is in degrees,
counter-clockwise as displayed (a vector along +x turns toward -y). Strain is the
symmetric stretch of the polar decomposition of F = A A_ref^-1 (A: columns a1, a2),
so large rigid rotations (grains) give no spurious strain; tensile is positive.

Peak positions are refined per axis from the peak bin and its two neighbours with a
three-point log-magnitude interpolation calibrated against the window's own taper
(its exact discrete transform), which is unbiased for a single lattice fringe.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..data import with_step
from ..errors import InputError
from .peaks import _RAYLEIGH_MEDIAN, _calibration, _Grid, _offset, find_lattice_peaks, power_spectrum  # noqa: F401
from .taper import taper_spec


_STACK_DIMS = ("wy", "wx", "ky", "kx")
_SLAB_WINDOWS = 8192  # windows per slab of a dask-backed stack: bounded memory


def local_lattice(stack: xr.DataArray, reference_peaks, *, reference="median", reference_vectors=None,
                  max_rotation_deg: float | None = None, max_strain: float = 0.1, min_snr: float = 4.0) -> xr.Dataset:
    """Per-window lattice vectors, lattice constants, rotation and strain from a sliding-FFT stack.

    In every window, the peak of reflection g_i is the strongest bin whose |k| lies within
    ``max_strain`` of |g_i| and whose direction lies within ``max_rotation_deg`` of g_i
    (magnitudes on the rfft half plane are mirrored, |F(-k)| = |F(k)|); it is located to
    a fraction of a bin by taper-calibrated three-point interpolation per axis.

    Parameters
    ----------
    stack : xarray.DataArray (wy, wx, ky, kx)
        Output of ``sliding_fft`` (magnitude, power, log or complex), k in cycles/nm.
    reference_peaks : array_like, shape (2, 2)
        Rows g1, g2 = (gx, gy) in cycles/nm, e.g. from :func:`find_lattice_peaks`.
    reference : "median", boolean mask (wy, wx), or box (x0, x1, y0, y1) in nm
        Windows whose median lattice is the unstrained, unrotated reference.
    reference_vectors : array_like, shape (2, 2), optional
        Rows a1, a2 (nm) of an explicit reference lattice (e.g. the nominal cell); overrides
        ``reference``. The reference peaks are indexed on it and the search is centred on
        those reflections, so rotation and strain are absolute (relative to this lattice).
    max_rotation_deg : float, optional
        Half-width of the angular search sector; default half the acute angle between g1 and
        g2 (45 degrees for a square lattice), i.e. the lattice's rotational ambiguity.
    max_strain : float
        Relative radial search tolerance around |g_i|.
    min_snr : float
        Windows where either peak is weaker than this multiple of the spectrum's noise
        floor get NaN (no lattice there: amorphous, another phase, a boundary). So do the
        windows of an ``edges="pad"`` stack that reach into the padding (a mirrored lattice).

    Returns
    -------
    xarray.Dataset on (wy, wx)
        ``g1x, g1y, g2x, g2y`` (1/nm), ``a1x, a1y, a2x, a2y`` and ``a1, a2`` (lattice
        constants |a_i|, nm), ``rotation`` (degrees, counter-clockwise as displayed),
        ``exx, eyy, exy`` (strain, dimensionless, tensile positive) relative to the
        reference; each with ``<name>_err`` (1 sigma); ``snr1, snr2``.

    Notes
    -----
    Accuracy: the peak fit is exact for one fringe; leakage from the other peaks of the
    window scatters single windows by ~0.1 degree and ~1e-3 in strain with ``hann`` or
    ``hamming`` tapers and 64-px windows holding ~4 lattice periods (more with larger
    windows: ~0.3 % strain at 96 px). Tapers with high sidelobes (``None``, ``tukey``)
    leak several times more; ``blackman`` and ``gaussian`` lie in between.

    Uncertainties: the noise floor of each window's spectrum is its median magnitude
    divided by sqrt(2 ln 2) (Rayleigh statistics of complex Gaussian noise), which sets
    the error of each log-magnitude used in the three-point fit; this is propagated to
    the peak position to first order (bins treated as independent) and from the four
    peak coordinates to every derived quantity through a numerical Jacobian. The
    reference's own scatter and systematic leakage between peaks are not included.
    """
    grid, nwin_shape, g_ref, taper, window = _check_stack(stack, reference_peaks)
    half_angle = _default_sector(g_ref) if max_rotation_deg is None else float(max_rotation_deg)
    if not 0 < half_angle <= 90 or not 0 < float(max_strain) < 1:
        raise InputError("max_rotation_deg must lie in (0, 90] and max_strain in (0, 1)")
    # with an explicit lattice the search is centred on its indexed reflections, so rotations are
    # measured from that lattice and are unambiguous up to +-max_rotation_deg from it
    indexed = None if reference_vectors is None else _indexed_reference(g_ref, reference_vectors)
    centres = g_ref if indexed is None else indexed
    search = [_search_bins(grid, g, half_angle, float(max_strain)) for g in centres]
    table = _calibration(taper[0], window, taper[1])
    g, g_err, snr = _fit_stack(stack, grid, search, table)
    bad = (np.min(snr, axis=-1) < float(min_snr)) | _padded_windows(stack).ravel()
    g[bad] = np.nan
    g_err[bad] = np.nan
    g_ref_local = indexed if indexed is not None else _reference_lattice(g, stack, reference)
    values, errors = _derived_with_errors(g, g_err, g_ref_local)
    return _as_dataset(stack, nwin_shape, g, g_err, snr, values, errors, g_ref_local,
                       {"reference": _describe_reference(reference, reference_vectors), "max_rotation_deg": half_angle,
                        "max_strain": float(max_strain), "min_snr": float(min_snr),
                        "reference_peaks": np.asarray(g_ref).tolist()})


def _check_stack(stack, reference_peaks):
    if not isinstance(stack, xr.DataArray) or tuple(stack.dims) != _STACK_DIMS:
        dims = tuple(stack.dims) if isinstance(stack, xr.DataArray) else type(stack).__name__
        raise InputError(f"stack must be a sliding-FFT DataArray with dims {_STACK_DIMS}, got {dims}")
    grid = _Grid(stack.coords["ky"].values, stack.coords["kx"].values)
    g_ref = np.asarray(reference_peaks, dtype=np.float64)
    if g_ref.shape != (2, 2) or not np.all(np.isfinite(g_ref)):
        raise InputError(f"reference_peaks must be two finite (gx, gy) rows in cycles/nm, got shape {g_ref.shape}")
    norms = np.linalg.norm(g_ref, axis=1)
    if np.any(norms == 0) or abs(np.linalg.det(g_ref)) < 1e-6 * np.prod(norms):
        raise InputError("reference_peaks are collinear or zero; give two non-collinear Bragg peaks")
    bins = np.hypot(g_ref[:, 0] / grid.dkx, g_ref[:, 1] / grid.dky)
    if np.min(bins) < 2.0:
        raise InputError(f"the weakest-frequency reference peak lies only {np.min(bins):.1f} bins from k = 0 in these "
                         "windows: too few lattice periods per window; use a window of >= "
                         f"{int(np.ceil(2.5 * stack.sizes['ky'] / np.min(bins)))} px")
    if (np.max(np.abs(g_ref[:, 0])) > (grid.nx - 2) * grid.dkx
            or np.max(np.abs(g_ref[:, 1])) > (grid.ny / 2 - 2) * grid.dky):
        raise InputError("a reference peak lies outside (or on the edge of) the stack's k range; use a smaller k_max "
                         "band limit or pick lower-order peaks")
    output = str(stack.attrs.get("output", "magnitude"))
    if output not in ("magnitude", "power", "log", "complex"):
        raise InputError(f"unknown stack output {output!r}; expected magnitude, power, log or complex")
    window = int(stack.attrs.get("window", stack.sizes["ky"]))
    taper = (taper_spec(stack.attrs.get("taper", "hann"))[0], stack.attrs.get("taper_parameter"))
    return grid, (stack.sizes["wy"], stack.sizes["wx"]), g_ref, taper, window


def _padded_windows(stack) -> np.ndarray:
    """(wy, wx) mask of windows reaching into the reflect padding of ``edges="pad"`` stacks.

    Those windows hold a mirror image of the lattice (a mirrored rotation), not the specimen's.
    """
    shape = (stack.sizes["wy"], stack.sizes["wx"])
    if stack.attrs.get("edges") != "pad":
        return np.zeros(shape, dtype=bool)
    w, step = int(stack.attrs["window"]), int(stack.attrs["step"])
    pad = w // 2
    masks = []
    for n in shape:
        k = np.arange(n) * step  # window start in the padded image
        size = (n - 1) * step + w - 2 * pad  # the smallest image size giving n windows (conservative)
        masks.append((k < pad) | (k - pad + w > size))
    return masks[0][:, None] | masks[1][None, :]


def _default_sector(g_ref) -> float:
    cosang = abs(np.dot(g_ref[0], g_ref[1])) / np.prod(np.linalg.norm(g_ref, axis=1))
    return 0.5 * float(np.degrees(np.arccos(np.clip(cosang, 0.0, 1.0))))


def _search_bins(grid: _Grid, g, half_angle: float, tol: float):
    """Full-plane bins (m, n) within the radial and angular tolerance of g, with room for a 3x3 fit."""
    m, n = grid.full_bins()
    ky, kx = m * grid.dky, n * grid.dkx
    kmag, gmag = np.hypot(kx, ky), np.hypot(*g)
    cosang = (kx * g[0] + ky * g[1]) / np.maximum(kmag * gmag, 1e-300)
    inside = (np.abs(kmag / gmag - 1) <= tol) & (cosang >= np.cos(np.deg2rad(half_angle)))
    # the 3x3 refinement needs both neighbours inside the plane
    inside &= (np.abs(m) < grid.ny // 2 - 1) & (np.abs(n) < (grid.nx - 2 if grid.half else grid.nx // 2 - 1))
    if not np.any(inside):
        raise InputError("no k bins fall inside the search region around a reference peak; increase the window "
                         "or max_strain")
    return m[inside], n[inside]


def _magnitude(block: np.ndarray, output: str) -> np.ndarray:
    if output == "power":
        return np.sqrt(np.maximum(block, 0))
    if output == "log":
        return np.expm1(block)
    if output == "complex":
        return np.abs(block)
    return block


def _fit_stack(stack, grid, search, table):
    """Peak positions (nwin, 2 peaks, (gx, gy)), their errors and SNRs, slab by slab for dask stacks."""
    output = str(stack.attrs.get("output", "magnitude"))
    nwy, nwx = stack.sizes["wy"], stack.sizes["wx"]
    flat_search = [grid.flat(m, n) for m, n in search]
    parts = []
    rows = max(1, _SLAB_WINDOWS // max(nwx, 1))
    for start, stop in _slabs(stack.data, nwy, rows):
        # slabs of window rows keep dask inputs' memory bounded (a dask slab is whole chunks, computed once)
        block = stack.data[start:stop]
        block = np.asarray(block.compute() if hasattr(block, "compute") else block)
        for r0 in range(0, block.shape[0], rows):  # the float64 work in pieces of ~_SLAB_WINDOWS windows
            mag = _magnitude(block[r0:r0 + rows], output).reshape(-1, grid.ny * grid.nx).astype(np.float64)
            if not np.all(np.isfinite(mag)):
                raise InputError("the stack contains NaN or inf; recompute the sliding FFT from a finite image")
            parts.append(_fit_block(mag, grid, search, flat_search, table))
    g, g_err, snr = (np.concatenate(p) for p in zip(*parts))
    return g, g_err, snr


def _slabs(data, n: int, rows: int):
    """(start, stop) row ranges of about ``rows`` rows; for dask arrays, whole chunks (none computed twice)."""
    if not hasattr(data, "chunks") or data.chunks is None or not hasattr(data, "dask"):
        return [(s, min(s + rows, n)) for s in range(0, n, rows)]
    edges = np.cumsum((0,) + tuple(data.chunks[0]))
    out, start = [], 0
    for stop in edges[1:]:
        if stop - start >= rows or stop == n:
            out.append((int(start), int(stop)))
            start = stop
    return out


def _fit_block(mag, grid, search, flat_search, table):
    noise = np.median(mag, axis=1) / _RAYLEIGH_MEDIAN + 1e-30
    g = np.empty((mag.shape[0], 2, 2))
    g_err = np.empty_like(g)
    snr = np.empty((mag.shape[0], 2))
    for i, ((m, n), flat) in enumerate(zip(search, flat_search)):  # the two peaks
        best = np.argmax(mag[:, flat], axis=1)
        m0, n0 = m[best], n[best]
        dm, dn = np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij")
        idx = grid.flat(m0[:, None] + dm.ravel()[None, :], n0[:, None] + dn.ravel()[None, :])
        near = np.take_along_axis(mag, idx, axis=1).reshape(-1, 3, 3)
        near = np.maximum(near, 1e-12 * near[:, 1, 1, None, None] + 1e-300)
        logs = np.log(near)
        sig = noise[:, None, None] / near
        dx, ex = _offset(logs[:, 1, 0], logs[:, 1, 1], logs[:, 1, 2], table, (sig[:, 1, 0], sig[:, 1, 1], sig[:, 1, 2]))
        dy, ey = _offset(logs[:, 0, 1], logs[:, 1, 1], logs[:, 2, 1], table, (sig[:, 0, 1], sig[:, 1, 1], sig[:, 2, 1]))
        g[:, i, 0] = (n0 + dx) * grid.dkx
        g[:, i, 1] = (m0 + dy) * grid.dky
        g_err[:, i, 0] = ex * grid.dkx
        g_err[:, i, 1] = ey * grid.dky
        snr[:, i] = near[:, 1, 1] / noise
    return g, g_err, snr


# --- reference, derived quantities ---------------------------------------------------------------
def _indexed_reference(g_peaks, reference_vectors) -> np.ndarray:
    """The reflections of an explicit lattice (rows a1, a2 in nm) nearest to the reference peaks."""
    a = np.asarray(reference_vectors, dtype=np.float64)
    if a.shape != (2, 2) or not np.all(np.isfinite(a)) or abs(np.linalg.det(a)) < 1e-12:
        raise InputError("reference_vectors must be two finite, non-collinear rows a1, a2 in nm")
    b = np.linalg.inv(a).T  # rows b_i: the reciprocal basis, a_i . b_j = delta_ij
    # index each reference peak on the given lattice, so any basis of it may be given
    hkl = np.rint(g_peaks @ a.T)
    if np.any(np.all(hkl == 0, axis=1)) or abs(np.linalg.det(hkl)) < 0.5:
        raise InputError("the reference peaks are not reflections of reference_vectors (their indices round to "
                         "zero or coincide); give the real-space lattice of the measured peaks")
    return hkl @ b


def _reference_lattice(g, stack, reference) -> np.ndarray:
    """Reference reciprocal basis (2 peaks, (gx, gy)) in cycles/nm: the median over the reference windows."""
    nwy, nwx = stack.sizes["wy"], stack.sizes["wx"]
    if isinstance(reference, str):
        if reference != "median":
            raise InputError(f"reference must be 'median', a boolean (wy, wx) mask or a box (x0, x1, y0, y1) in nm, "
                             f"got {reference!r}")
        sel = np.ones(nwy * nwx, dtype=bool)
    else:
        ref = np.asarray(reference.values if isinstance(reference, xr.DataArray) else reference)
        if ref.shape == (nwy, nwx) and ref.dtype == bool:
            sel = ref.ravel()
        elif ref.shape == (4,) and ref.dtype.kind in "iuf":
            x0, x1, y0, y1 = ref.astype(float)
            wx = stack.coords["wx"].values[None, :]
            wy = stack.coords["wy"].values[:, None]
            sel = ((wx >= min(x0, x1)) & (wx <= max(x0, x1)) & (wy >= min(y0, y1)) & (wy <= max(y0, y1))).ravel()
        else:
            raise InputError(f"reference must be 'median', a boolean mask of shape {(nwy, nwx)} or a box "
                             f"(x0, x1, y0, y1) in nm; got an array of shape {ref.shape}")
    good = sel & np.all(np.isfinite(g.reshape(len(g), -1)), axis=1)
    if not np.any(good):
        raise InputError("no window with a measurable lattice lies in the reference region; choose another region")
    return np.median(g[good], axis=0)


def _derived(g, g_ref) -> np.ndarray:
    """Columns a1x, a1y, a2x, a2y, a1, a2, rotation (deg), exx, eyy, exy from bases g (..., 2, 2)."""
    with np.errstate(invalid="ignore"):
        det = g[..., 0, 0] * g[..., 1, 1] - g[..., 0, 1] * g[..., 1, 0]
        # A = G^-1: its columns are a1, a2
        a = np.stack([np.stack([g[..., 1, 1], -g[..., 0, 1]], -1), np.stack([-g[..., 1, 0], g[..., 0, 0]], -1)], -2)
        a = a / det[..., None, None]
        f = a @ g_ref  # F = A A_ref^-1 = A G_ref: maps reference vectors onto local ones
        theta = np.arctan2(f[..., 0, 1] - f[..., 1, 0], f[..., 0, 0] + f[..., 1, 1])
        c, s = np.cos(theta), np.sin(theta)
        # U = R^T F with R = [[c, s], [-s, c]] (counter-clockwise as displayed): the pure stretch
        uxx = c * f[..., 0, 0] - s * f[..., 1, 0]
        uxy = c * f[..., 0, 1] - s * f[..., 1, 1]
        uyx = s * f[..., 0, 0] + c * f[..., 1, 0]
        uyy = s * f[..., 0, 1] + c * f[..., 1, 1]
        a1, a2 = a[..., :, 0], a[..., :, 1]
        return np.stack([a1[..., 0], a1[..., 1], a2[..., 0], a2[..., 1],
                         np.hypot(a1[..., 0], a1[..., 1]), np.hypot(a2[..., 0], a2[..., 1]),
                         np.degrees(theta), uxx - 1, uyy - 1, 0.5 * (uxy + uyx)], -1)


_DERIVED = ("a1x", "a1y", "a2x", "a2y", "a1", "a2", "rotation", "exx", "eyy", "exy")


def _derived_with_errors(g, g_err, g_ref):
    values = _derived(g, g_ref)
    var = np.zeros_like(values)
    for i in range(2):  # first-order propagation through a numerical Jacobian, one g coordinate at a time
        for j in range(2):
            h = 1e-6 * np.nanmax(np.abs(g_ref))
            gp = g.copy()
            gp[:, i, j] += h
            var += ((_derived(gp, g_ref) - values) / h * g_err[:, i, j, None]) ** 2
    return values, np.sqrt(var)


def _describe_reference(reference, reference_vectors):
    if reference_vectors is not None:
        return {"vectors_nm": np.asarray(reference_vectors, dtype=float).tolist()}
    if isinstance(reference, str):
        return reference
    ref = np.asarray(reference.values if isinstance(reference, xr.DataArray) else reference)
    return {"box_nm": ref.astype(float).tolist()} if ref.shape == (4,) else {"mask_windows": int(ref.sum())}


def _as_dataset(stack, shape, g, g_err, snr, values, errors, g_ref, params) -> xr.Dataset:
    dims = ("wy", "wx")
    units = {"a1x": "nm", "a1y": "nm", "a2x": "nm", "a2y": "nm", "a1": "nm", "a2": "nm", "rotation": "deg",
             "exx": "1", "eyy": "1", "exy": "1"}
    data = {}
    for i in range(2):
        for j, comp in enumerate("xy"):
            name = f"g{i + 1}{comp}"
            data[name] = (dims, g[:, i, j].reshape(shape), {"units": "1/nm"})
            data[name + "_err"] = (dims, g_err[:, i, j].reshape(shape), {"units": "1/nm"})
    for k, name in enumerate(_DERIVED):
        data[name] = (dims, values[:, k].reshape(shape), {"units": units[name]})
        data[name + "_err"] = (dims, errors[:, k].reshape(shape),
                               {"units": units[name], "long_name": f"1-sigma error of {name}"})
    data["snr1"] = (dims, snr[:, 0].reshape(shape), {"long_name": "peak 1 magnitude / noise floor"})
    data["snr2"] = (dims, snr[:, 1].reshape(shape), {"long_name": "peak 2 magnitude / noise floor"})
    a_ref = np.linalg.inv(g_ref)  # columns a1, a2
    ds = xr.Dataset(data, coords={"wy": stack.coords["wy"], "wx": stack.coords["wx"]},
                    attrs={"reference_g": g_ref.tolist(), "reference_a_nm": a_ref.T.tolist(),
                           "rotation_convention": "degrees, counter-clockwise as displayed (y down)",
                           "strain_convention": "symmetric stretch of F = A A_ref^-1, tensile positive",
                           "provenance": list(stack.attrs.get("provenance", []))})
    return with_step(ds, "fourier.local_lattice", params)


__all__ = ["find_lattice_peaks", "local_lattice", "power_spectrum"]
