"""Abundance fields for the spectral simulators: where each component (phase) sits.

Every function returns abundances as an ``xarray.DataArray`` with dims
``("y", "x", "component")``, spatial coords in nm at pixel centres, and values that
are non-negative and sum to one at every pixel (float64):

- :func:`layered_phases` -- a layer stack (heterostructure) with smooth interfaces;
- :func:`domain_phases` -- Voronoi domains around seed points with smooth walls;
- :func:`random_fields` -- smooth random fields strictly inside the simplex;
- :func:`from_structural_map` -- abundances as a given function of a structural map
  (strain, dopant density, ...) resampled to the coarser spectral grid by
  :func:`resample_area`.

Interfaces follow a logistic (tanh) profile across the interface; ``interface_width_nm``
is its 10 %-90 % rise distance (``w = 2 ln(9) / lam`` for ``1 / (1 + exp(-lam * s))``).
Abundances are sampled at pixel centres (a focused probe), not averaged over the pixel.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import scipy.fft
import scipy.special
import xarray as xr

from ..data import check_values, linear_coord, length_factor_to_nm
from ..errors import CalibrationError, InputError

# Sums off by more than this are a caller's mistake, not rounding.
SUM_TOLERANCE = 1e-6


def _check_grid(shape, pixel_size_nm) -> tuple[int, int, float]:
    try:
        ny, nx = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be (ny, nx), got {shape!r}") from None
    if ny < 1 or nx < 1 or ny * nx > 16384**2:
        raise InputError(f"shape must be (ny, nx) with both at least 1 (and not absurdly large), got {shape!r}")
    px = float(pixel_size_nm)
    if not np.isfinite(px) or px <= 0:
        raise InputError(f"pixel_size_nm must be a positive number, got {pixel_size_nm!r}")
    return ny, nx, px


def _check_width(width_nm: float) -> float:
    w = float(width_nm)
    if not np.isfinite(w) or w <= 0:
        raise InputError(f"interface_width_nm must be positive (10-90 % rise distance in nm), got {width_nm!r}")
    return w


def _names(names, k: int) -> list[str]:
    if names is None:
        return [f"phase {i}" for i in range(k)]
    names = [str(n) for n in names]
    if len(names) != k or len(set(names)) != k:
        raise InputError(f"need {k} distinct component names, got {names!r}")
    return names


def abundance_array(values: np.ndarray, pixel_size_nm: float, names: Sequence[str],
                    origin_nm: tuple[float, float] = (0.0, 0.0)) -> xr.DataArray:
    """Wrap a ``(ny, nx, k)`` abundance array as a calibrated ``("y", "x", "component")`` DataArray."""
    ny, nx, k = values.shape
    coords = {"y": linear_coord(ny, pixel_size_nm, origin_nm[0], "nm", "y"),
              "x": linear_coord(nx, pixel_size_nm, origin_nm[1], "nm", "x"),
              "component": list(names)}
    return xr.DataArray(values, dims=("y", "x", "component"), coords=coords, name="abundances",
                        attrs={"units": "", "long_name": "abundance (fraction)"})


def check_abundances(abundances, n_components: int | None = None, what: str = "abundances") -> np.ndarray:
    """Validate abundances ``(ny, nx, k)``: finite, non-negative, summing to one; returns a float64 copy.

    Raises
    ------
    InputError
        Wrong dimensionality, wrong number of components, NaN, negative values, or sums
        that differ from one by more than ``SUM_TOLERANCE``.
    """
    if isinstance(abundances, xr.DataArray) and set(abundances.dims) == {"y", "x", "component"}:
        abundances = abundances.transpose("y", "x", "component")
    a = np.asarray(abundances.values if isinstance(abundances, xr.DataArray) else abundances)
    check_values(a, what, 3, 3)
    a = a.astype(np.float64, copy=True)
    if n_components is not None and a.shape[2] != n_components:
        raise InputError(f"{what} have {a.shape[2]} components but {n_components} spectra/DOS were given; "
                         "give one abundance map per component")
    if a.min() < -SUM_TOLERANCE:
        raise InputError(f"{what} must be non-negative, found {a.min():.3g}; clip or renormalise them")
    dev = np.abs(a.sum(axis=2) - 1.0)
    if dev.max() > SUM_TOLERANCE:
        iy, ix = np.unravel_index(int(np.argmax(dev)), dev.shape)
        raise InputError(f"{what} must sum to one at every pixel; the sum is off by {dev.max():.3g} at "
                         f"(y={iy}, x={ix}); divide by their sum first")
    return np.clip(a, 0.0, None)


def _smooth_partition(signed_distance: np.ndarray, width_nm: float) -> np.ndarray:
    """Softmax over components of beta * signed distance to each region's boundary.

    Across a boundary between regions i and j the signed distances are +s and -s, so
    a_i = 1 / (1 + exp(-2 beta s)); beta = ln(9) / w makes w the 10-90 % distance.
    """
    beta = np.log(9.0) / width_nm
    z = beta * signed_distance
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _pixel_centres(ny: int, nx: int, px: float, origin_nm) -> tuple[np.ndarray, np.ndarray]:
    y = origin_nm[0] + np.arange(ny) * px
    x = origin_nm[1] + np.arange(nx) * px
    return np.meshgrid(y, x, indexing="ij")


def layered_phases(shape, pixel_size_nm: float, boundaries_nm: Sequence[float], interface_width_nm: float, *,
                   angle_deg: float = 0.0, names: Sequence[str] | None = None,
                   origin_nm: tuple[float, float] = (0.0, 0.0)) -> xr.DataArray:
    """A stack of ``len(boundaries_nm) + 1`` layers with logistic (tanh) interfaces.

    Parameters
    ----------
    shape : (int, int)
        Spectral grid (ny, nx).
    pixel_size_nm : float
        Pixel size (nm), the same along y and x.
    boundaries_nm : sequence of float
        Interface positions (nm) along the layer normal, strictly increasing.
    interface_width_nm : float
        10 %-90 % width of each interface profile (nm).
    angle_deg : float
        Direction of the layer normal: 0 is +y (layers stacked down the image, horizontal
        interfaces); positive angles rotate it counter-clockwise as displayed.
    names : sequence of str, optional
        One name per layer (default ``"phase 0"``, ...).
    origin_nm : (float, float)
        Physical (y, x) of pixel (0, 0); distances along the normal are measured from (0, 0) nm.

    Returns
    -------
    xarray.DataArray
        Abundances, dims ``("y", "x", "component")``.
    """
    ny, nx, px = _check_grid(shape, pixel_size_nm)
    width = _check_width(interface_width_nm)
    b = np.asarray(boundaries_nm, dtype=np.float64).ravel()
    if b.size == 0 or not np.all(np.isfinite(b)) or np.any(np.diff(b) <= 0):
        raise InputError("boundaries_nm must be one or more finite, strictly increasing positions, "
                         f"got {boundaries_nm!r}")
    theta = np.deg2rad(float(angle_deg))
    yy, xx = _pixel_centres(ny, nx, px, origin_nm)
    s = xx * np.sin(theta) + yy * np.cos(theta)
    # fraction of material beyond interface i: a logistic with 10-90 % distance w; layer k
    # is what lies beyond interface k-1 but not beyond interface k, so layers sum to one
    # and each interface keeps the exact profile however thin the layers are
    beyond = scipy.special.expit((2.0 * np.log(9.0) / width) * (s[..., None] - b))
    ones, zeros = np.ones_like(s)[..., None], np.zeros_like(s)[..., None]
    cum = np.concatenate([ones, beyond, zeros], axis=-1)
    a = np.clip(cum[..., :-1] - cum[..., 1:], 0.0, None)
    return abundance_array(a, px, _names(names, b.size + 1), origin_nm)


def domain_phases(shape, pixel_size_nm: float, seeds_nm: Sequence[Sequence[float]], interface_width_nm: float, *,
                  names: Sequence[str] | None = None, origin_nm: tuple[float, float] = (0.0, 0.0)) -> xr.DataArray:
    """Voronoi domains around ``seeds_nm`` (one component per seed) with logistic walls.

    Parameters
    ----------
    seeds_nm : sequence of (x, y)
        Domain seed points (nm); the domain of seed i is where it is the nearest seed.
    interface_width_nm : float
        10 %-90 % width of each wall profile (nm), exact for straight walls between two domains.

    Other parameters are as in :func:`layered_phases`.
    """
    ny, nx, px = _check_grid(shape, pixel_size_nm)
    width = _check_width(interface_width_nm)
    c = np.asarray(seeds_nm, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] < 1 or not np.all(np.isfinite(c)):
        raise InputError(f"seeds_nm must be a list of finite (x, y) points, got shape {c.shape}")
    k = c.shape[0]
    if k > 1 and np.min(np.linalg.norm(c[:, None] - c[None], axis=-1)[~np.eye(k, dtype=bool)]) <= 0:
        raise InputError("seeds_nm contains the same point twice; give distinct seeds")
    yy, xx = _pixel_centres(ny, nx, px, origin_nm)
    r = np.stack([xx, yy], axis=-1)[..., None, :]  # (ny, nx, 1, 2)
    d2 = ((r - c) ** 2).sum(-1)  # (ny, nx, k)
    if k == 1:
        return abundance_array(np.ones((ny, nx, 1)), px, _names(names, 1), origin_nm)
    sep = np.linalg.norm(c[:, None] - c[None], axis=-1)  # (k, k)
    # signed distance to the bisector of seeds i and j: positive on i's side
    h = (d2[..., None, :] - d2[..., :, None]) / (2.0 * np.where(sep > 0, sep, 1.0))
    h = np.where(np.eye(k, dtype=bool), np.inf, h)
    sd = h.min(axis=-1)  # distance to the nearest wall of domain i (exact inside a convex cell)
    return abundance_array(_smooth_partition(sd, width), px, _names(names, k), origin_nm)


def _gaussian_random_field(rng: np.random.Generator, n_fields: int, ny: int, nx: int, corr_px: float) -> np.ndarray:
    """Standardised Gaussian random fields: white noise smoothed by a Gaussian of s.d. ``corr_px``.

    The correlation function is ``exp(-r^2 / (4 corr_px^2))``. Generated on a grid padded
    by three kernel widths and cropped, so the field is not periodic across the image.
    """
    pad = int(np.ceil(3 * corr_px))
    my, mx = ny + 2 * pad, nx + 2 * pad
    noise = rng.standard_normal((n_fields, my, mx))
    ky = scipy.fft.fftfreq(my)[:, None]
    kx = scipy.fft.rfftfreq(mx)[None, :]
    kernel = np.exp(-2.0 * (np.pi * corr_px) ** 2 * (kx**2 + ky**2))
    f = scipy.fft.irfft2(scipy.fft.rfft2(noise, axes=(1, 2)) * kernel, s=(my, mx), axes=(1, 2))
    f = f[:, pad:pad + ny, pad:pad + nx]
    f -= f.mean(axis=(1, 2), keepdims=True)
    sd = f.std(axis=(1, 2), keepdims=True)
    return f / np.where(sd > 0, sd, 1.0)


# the '*-mixed' abundances: softmax fields strictly inside the simplex whose purest pixels reach > 0.99 of
# every phase (seeds 0-4). Why not a floor of 0.02: then no pixel is pure, the data's hull lies inside
# the true simplex, and no unmixing without reference spectra can identify the pure spectra
MIXED_CONTRAST, MIXED_FLOOR = 4.0, 1e-4


def random_fields(shape, pixel_size_nm: float, n_components: int, correlation_length_nm: float, *,
                  contrast: float = 2.0, min_abundance: float = 0.02, names: Sequence[str] | None = None,
                  seed: int = 0, origin_nm: tuple[float, float] = (0.0, 0.0)) -> xr.DataArray:
    """Smooth random abundances strictly inside the simplex.

    ``a = m + (1 - k m) softmax(contrast * g)`` with ``g`` independent standardised
    Gaussian random fields (white noise smoothed by a Gaussian of standard deviation
    ``correlation_length_nm``; correlation ``exp(-r^2 / (4 ell^2))``), so every abundance
    lies in ``[m, 1 - (k - 1) m]`` with ``m = min_abundance > 0``.

    Parameters
    ----------
    n_components : int
        Number of components k (at least 2).
    correlation_length_nm : float
        Standard deviation ell (nm) of the Gaussian that smooths the white noise.
    contrast : float
        Standard deviation of the softmax logits: larger gives purer regions.
    min_abundance : float
        Floor of every abundance, 0 < m < 1/k.
    seed : int
        Random seed.
    """
    ny, nx, px = _check_grid(shape, pixel_size_nm)
    k = int(n_components)
    if k < 2:
        raise InputError(f"random_fields needs at least 2 components, got {n_components!r}")
    ell = float(correlation_length_nm)
    if not np.isfinite(ell) or ell <= 0:
        raise InputError(f"correlation_length_nm must be positive, got {correlation_length_nm!r}")
    m = float(min_abundance)
    if not (0.0 < m < 1.0 / k):
        raise InputError(f"min_abundance must be in (0, 1/{k}) to stay strictly inside the simplex, "
                         f"got {min_abundance!r}")
    c = float(contrast)
    if not np.isfinite(c) or c < 0:
        raise InputError(f"contrast must be a non-negative number, got {contrast!r}")
    g = _gaussian_random_field(np.random.default_rng(seed), k, ny, nx, ell / px)
    z = c * np.moveaxis(g, 0, -1)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    a = m + (1.0 - k * m) * e / e.sum(axis=-1, keepdims=True)
    return abundance_array(a, px, _names(names, k), origin_nm)


def _overlap_matrix(n_fine: int, step_fine: float, start_fine: float, n_coarse: int, step_coarse: float) -> np.ndarray:
    """(n_coarse, n_fine) lengths of overlap between coarse and fine pixel intervals, along one axis."""
    f_lo = start_fine + np.arange(n_fine) * step_fine
    c_lo = start_fine + np.arange(n_coarse) * step_coarse
    lo = np.maximum(c_lo[:, None], f_lo[None, :])
    hi = np.minimum(c_lo[:, None] + step_coarse, f_lo[None, :] + step_fine)
    return np.clip(hi - lo, 0.0, None)


def resample_area(structural: xr.DataArray, pixel_size_nm: float) -> xr.DataArray:
    """Area-weighted average of a ``("y", "x")`` map onto a coarser grid of ``pixel_size_nm`` pixels.

    The coarse grid starts at the fine map's field-of-view corner and holds every whole
    coarse pixel that fits; each coarse value is the mean of the fine map over the
    coarse pixel's area (partial fine pixels weighted by their overlap), so the area
    mean over the covered region is conserved exactly.

    Parameters
    ----------
    structural : xarray.DataArray
        Map with dims ``("y", "x")`` and linear spatial coords in a length unit.
    pixel_size_nm : float
        Coarse pixel size (nm), at least the fine pixel size.

    Returns
    -------
    xarray.DataArray
        The resampled map (float64) with nm coords at the coarse pixel centres.
    """
    if not isinstance(structural, xr.DataArray) or tuple(structural.dims) != ("y", "x"):
        raise InputError("the structural map must be an xarray.DataArray with dims ('y', 'x')")
    check_values(structural.values, "structural map", 2, 2)
    steps, starts = [], []
    for d in ("y", "x"):
        if d not in structural.coords or structural.sizes[d] < 2:
            raise InputError(f"the structural map needs a calibrated {d} axis with at least 2 pixels")
        unit = structural.coords[d].attrs.get("units", "")
        try:
            factor = length_factor_to_nm(unit)
        except CalibrationError:
            raise CalibrationError(f"the structural map's {d} axis is in {unit!r}, not a length; "
                                   "calibrate it in nm") from None
        c = np.asarray(structural.coords[d].values, dtype=np.float64) * factor
        step = (c[-1] - c[0]) / (c.size - 1)
        if step <= 0 or not np.allclose(np.diff(c), step, rtol=1e-6, atol=1e-12 * abs(step)):
            raise CalibrationError(f"the structural map's {d} axis must be linear and increasing; fix its calibration")
        steps.append(step)
        starts.append(c[0] - step / 2.0)
    P = float(pixel_size_nm)
    if not np.isfinite(P) or P <= 0:
        raise InputError(f"pixel_size_nm must be positive, got {pixel_size_nm!r}")
    if P < max(steps) * (1 - 1e-9):
        raise InputError(f"spectral pixel size {P} nm is finer than the structural map's pixels "
                         f"({max(steps):.4g} nm); area averaging only coarsens")
    fine = structural.values.astype(np.float64)
    n_coarse = [int(np.floor(fine.shape[i] * steps[i] / P + 1e-9)) for i in range(2)]
    if min(n_coarse) < 1:
        raise InputError(f"the structural map ({fine.shape[0] * steps[0]:.3g} x {fine.shape[1] * steps[1]:.3g} nm) "
                         f"is smaller than one {P} nm spectral pixel")
    wy = _overlap_matrix(fine.shape[0], steps[0], starts[0], n_coarse[0], P)
    wx = _overlap_matrix(fine.shape[1], steps[1], starts[1], n_coarse[1], P)
    out = (wy @ fine @ wx.T) / (P * P)
    coords = {"y": linear_coord(n_coarse[0], P, starts[0] + P / 2, "nm", "y"),
              "x": linear_coord(n_coarse[1], P, starts[1] + P / 2, "nm", "x")}
    return xr.DataArray(out, dims=("y", "x"), coords=coords, name=structural.name or "structural_map",
                        attrs={"units": structural.attrs.get("units", ""),
                               "long_name": "structural map, area-averaged onto the spectral grid"})


def linear_mapping(n_components: int = 2, min_abundance: float = 0.0) -> Callable[[np.ndarray], np.ndarray]:
    """A mapping for :func:`from_structural_map`: the map's range, linearly onto a two-end mixture.

    The map's minimum gives component 0 at ``1 - min_abundance``, its maximum gives
    component ``n_components - 1`` at ``1 - min_abundance``; with more than two
    components the value is placed piecewise-linearly along the chain 0 -> 1 -> ... -> k-1.
    """
    k = int(n_components)
    m = float(min_abundance)
    if k < 2 or not (0.0 <= m < 1.0 / k):
        raise InputError(f"linear_mapping needs n_components >= 2 and 0 <= min_abundance < 1/k, got {k}, {m}")

    def mapping(values: np.ndarray) -> np.ndarray:
        lo, hi = float(values.min()), float(values.max())
        t = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        # hat functions on the chain 0..k-1 sum to one for any position in [0, k-1]
        hats = np.clip(1.0 - np.abs(t[..., None] * (k - 1) - np.arange(k)), 0.0, None)
        return m + (1.0 - k * m) * hats

    return mapping


def from_structural_map(structural: xr.DataArray, pixel_size_nm: float,
                        mapping: Callable[[np.ndarray], np.ndarray] | None = None, *,
                        names: Sequence[str] | None = None) -> tuple[xr.DataArray, xr.DataArray]:
    """Abundances as a given function of a structural map, on the coarser spectral grid.

    Parameters
    ----------
    structural : xarray.DataArray
        Any ``("y", "x")`` map in nm (local strain, dopant density, a simulated image, ...).
    pixel_size_nm : float
        Spectral pixel size (nm); the map is area-averaged onto it (:func:`resample_area`).
    mapping : callable, optional
        ``f(resampled values (ny, nx)) -> abundances (ny, nx, k)``, each pixel on the simplex.
        Default :func:`linear_mapping` with two components.
    names : sequence of str, optional
        Component names.

    Returns
    -------
    abundances : xarray.DataArray
        Dims ``("y", "x", "component")`` on the spectral grid.
    resampled : xarray.DataArray
        The area-averaged structural map on the same grid (the truth the abundances follow).
    """
    resampled = resample_area(structural, pixel_size_nm)
    fn = mapping if mapping is not None else linear_mapping(2)
    if not callable(fn):
        raise InputError("mapping must be a function of the resampled map returning (ny, nx, k) abundances")
    a = np.asarray(fn(resampled.values.copy()), dtype=np.float64)
    if a.ndim != 3 or a.shape[:2] != resampled.shape:
        raise InputError(f"mapping returned shape {a.shape}; it must return (ny, nx, k) = {resampled.shape + ('k',)}")
    a = check_abundances(a, what="abundances returned by mapping")
    origin = (float(resampled.y.values[0]), float(resampled.x.values[0]))
    return abundance_array(a, float(pixel_size_nm), _names(names, a.shape[2]), origin), resampled


__all__ = ["SUM_TOLERANCE", "abundance_array", "check_abundances", "domain_phases", "from_structural_map",
           "layered_phases", "linear_mapping", "random_fields", "resample_area"]
