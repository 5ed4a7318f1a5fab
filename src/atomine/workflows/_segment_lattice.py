"""Order parameters and line/point defects for :func:`~.segment.segment_phases`.

Every phase gets its own reference lattice: the two strongest Bragg peaks of the mean
spectrum of its windows, and the median lattice of those windows (so strain in a phase
is measured against that phase, not against another structure). Rotation is reported
against one orientation for the whole image: each phase's reference orientation is the
direction of its shortest reciprocal vector modulo the lattice's rotational symmetry
(90 degrees square, 60 hexagonal), compared with that of the largest phase, plus the
local rotation inside the phase. Grains of one structure are then told apart by their
misorientation, and an inclusion of another structure by its orientation relationship.

Dislocation cores come from the geometric phase of the largest phase's lattice (GPA),
run on overlapping tiles of at most 2048 px so large images stay within memory; cores
are kept only in each tile's interior, so none is counted twice.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ..fourier import defect_table, find_dislocations, find_grain_boundaries, find_lattice_peaks, gpa, local_lattice

_TILE = 2048           # GPA tile side (px)
_MIN_WINDOWS = 4       # a phase needs this many windows for a reference lattice
_PRIMITIVE_SNR = 6.0   # a peak at a half lattice vector counts above this multiple of the median magnitude
LATTICE_VARS = ("rotation", "exx", "eyy", "exy", "a1", "a2")


def reduced_basis(g: np.ndarray) -> np.ndarray:
    """Lagrange-Gauss reduction of a 2-D basis: the two shortest independent vectors of its lattice."""
    u, v = np.array(g[0], float), np.array(g[1], float)
    if u @ u > v @ v:
        u, v = v, u
    for _ in range(64):
        m = np.rint((u @ v) / (u @ u))
        v = v - m * u
        if v @ v >= u @ u:
            break
        u, v = v, u
    return np.array([u, v])


def symmetry_period(g: np.ndarray) -> float:
    """Rotational symmetry (degrees) of the lattice with reduced basis ``g``: 90 square, 60 hexagonal, else 180."""
    n1, n2 = np.linalg.norm(g, axis=1)
    angle = np.degrees(np.arccos(np.clip(abs(g[0] @ g[1]) / (n1 * n2), 0, 1)))
    if abs(n1 - n2) <= 0.03 * max(n1, n2):
        if abs(angle - 90) <= 3:
            return 90.0
        if abs(angle - 60) <= 3:
            return 60.0
    return 180.0


def orientation_deg(g: np.ndarray, period: float) -> float:
    """Direction of the shortest reciprocal vector, counter-clockwise as displayed (y down), modulo ``period``."""
    gx, gy = reduced_basis(g)[0]
    return float(np.degrees(np.arctan2(-gy, gx)) % period)


def _wrap(angle: float, period: float) -> float:
    return float((angle + 0.5 * period) % period - 0.5 * period)


def phase_peaks(stack: xr.DataArray, labels: np.ndarray, k: int) -> dict[int, np.ndarray]:
    """Two Bragg peaks (rows gx, gy; 1/nm) of the mean spectrum of each phase's windows (phases with too few skipped)."""
    counts = np.bincount(labels.ravel(), minlength=k)
    flat = labels.ravel()
    sums = np.zeros((k,) + stack.shape[2:], dtype=np.float64)
    data = stack.data
    rows = max(1, 8192 // max(stack.sizes["wx"], 1))
    for start in range(0, stack.sizes["wy"], rows):  # slabs: a dask stack is never loaded whole
        block = data[start:start + rows]
        block = np.asarray(block.compute() if hasattr(block, "compute") else block, dtype=np.float64)
        lab = flat[start * stack.sizes["wx"]:(start + block.shape[0]) * stack.sizes["wx"]]
        block = block.reshape(-1, *block.shape[2:])
        for p in np.unique(lab):
            sums[p] += block[lab == p].sum(axis=0)
    peaks = {}
    for p in range(k):
        if counts[p] < _MIN_WINDOWS:
            continue
        mean = xr.DataArray(sums[p] / counts[p], dims=("ky", "kx"), coords={"ky": stack.ky, "kx": stack.kx})
        try:
            g = reduced_basis(find_lattice_peaks(mean ** 2, n=2))
        except InputError:  # this phase shows no lattice in these windows (amorphous): no order parameters
            continue
        peaks[p] = primitive_basis(mean, g)
    return peaks


def _magnitude_at(mean: xr.DataArray, k: np.ndarray) -> float:
    """Largest magnitude in the 3 x 3 bins around k (mirrored onto the kx >= 0 half plane)."""
    kx, ky = (k if k[0] >= 0 else -k)
    iy = int(np.argmin(np.abs(mean.ky.values - ky)))
    ix = int(np.argmin(np.abs(mean.kx.values - kx)))
    return float(mean.values[max(0, iy - 1):iy + 2, max(0, ix - 1):ix + 2].max())


def _cross(u, v) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def primitive_basis(mean: xr.DataArray, g: np.ndarray, snr: float = _PRIMITIVE_SNR) -> np.ndarray:
    """The primitive reciprocal basis when the two strongest peaks span only a superlattice of it.

    In HAADF images of perovskites the (110) reflections outshine (100), so the strongest two
    peaks describe a centred cell a / sqrt(2). Where the spectrum also shows clear peaks at
    half of g1 + g2, g1 - g2, g1 or g2, those belong to the lattice and the basis is reduced
    again to include them; lattice constants and orientations then refer to the true cell.
    """
    noise = float(np.median(mean.values[mean.values > 0])) if np.any(mean.values > 0) else 0.0
    for _ in range(2):  # at most two halvings (index 4)
        for h in (0.5 * (g[0] + g[1]), 0.5 * (g[0] - g[1]), 0.5 * g[0], 0.5 * g[1]):
            if np.hypot(*h) * 2 < np.hypot(*g[0]) * 0.5:
                continue
            if _magnitude_at(mean, h) > snr * noise:
                other = g[1] if abs(_cross(h, g[1])) > abs(_cross(h, g[0])) else g[0]
                g = reduced_basis(np.array([h, other]))
                break
        else:
            break
    return g


def lattice_order(stack: xr.DataArray, labels: np.ndarray, k: int) -> tuple[xr.Dataset, dict]:
    """Per-window rotation, strain, lattice constants and their errors, each phase against its own reference.

    Returns the Dataset on (wy, wx) of ``stack`` and a summary per phase (peaks, orientation offset).
    """
    peaks = phase_peaks(stack, labels, k)
    shape = (stack.sizes["wy"], stack.sizes["wx"])
    names = list(LATTICE_VARS) + [f"{v}_err" for v in LATTICE_VARS]
    out = {v: np.full(shape, np.nan, dtype=np.float32) for v in names}
    counts = np.bincount(labels.ravel(), minlength=k)
    info: dict = {"phases": {}}
    if not peaks:
        info["reference_phase"] = None
    else:
        ref = max(peaks, key=lambda p: counts[p])
        period = symmetry_period(peaks[ref])
        ref_orient = [orientation_deg(peaks[ref], period)]
        info.update(reference_phase=int(ref), symmetry_period_deg=period)
        for p in sorted(peaks, key=lambda q: q != ref):  # the reference phase first: it sets the zero of rotation
            g = peaks[p]
            mask = labels == p
            ds = local_lattice(stack, g, reference=mask)
            own_period = symmetry_period(g)
            # the phase's orientation from its windows' refined peaks (the mean spectrum's are bin-coarse)
            g_med = np.array([[np.nanmedian(ds[f"g{i}{c}"].values[mask]) for c in "xy"] for i in (1, 2)])
            g_orient = g_med if np.all(np.isfinite(g_med)) else g
            offset = _wrap(orientation_deg(g_orient, own_period) - ref_orient[0], min(period, own_period))
            if p == ref:
                ref_orient[0] = orientation_deg(g_orient, own_period)
                offset = 0.0
            for v in LATTICE_VARS:
                value = ds[v].values + (offset if v == "rotation" else 0.0)
                out[v][mask] = value[mask]
                out[f"{v}_err"][mask] = ds[f"{v}_err"].values[mask]
            info["phases"][int(p)] = {"g_per_nm": g.tolist(), "orientation_offset_deg": offset,
                                      "symmetry_period_deg": own_period,
                                      "a1_nm": float(np.nanmedian(ds["a1"].values[mask])),
                                      "a2_nm": float(np.nanmedian(ds["a2"].values[mask]))}
    units = {"rotation": "deg", "exx": "1", "eyy": "1", "exy": "1", "a1": str(stack.wx.attrs.get("units", "nm")),
             "a2": str(stack.wx.attrs.get("units", "nm"))}
    dims = ("wy", "wx")
    ds = xr.Dataset({v: (dims, out[v], {"units": units[v.removesuffix("_err")]}) for v in names},
                    coords={"wy": stack.wy, "wx": stack.wx})
    return ds, info


def dislocations(image: xr.DataArray, g: np.ndarray, *, tile: int = _TILE) -> pd.DataFrame:
    """Dislocation cores (defect table rows) from GPA of ``g`` on overlapping tiles of the image."""
    ny, nx = image.shape
    sy = abs(float(image.y[1] - image.y[0])) if ny > 1 else 1.0
    sigma_nm = 1.0 / float(np.min(np.linalg.norm(g, axis=1)))
    halo = int(np.ceil(8 * sigma_nm / sy))  # > the finder's default border (3 sigma) and loop (1.5 sigma)
    found = []
    for y0 in range(0, ny, tile):
        for x0 in range(0, nx, tile):
            ys, xs = slice(max(0, y0 - halo), min(ny, y0 + tile + halo)), slice(max(0, x0 - halo), min(nx, x0 + tile + halo))
            sub = image[ys, xs]
            if min(sub.shape) < 16:
                continue
            sub = sub.copy(data=np.asarray(sub.data.compute() if hasattr(sub.data, "compute") else sub.data))
            cores = find_dislocations(gpa(sub, g, sigma_nm=sigma_nm, maps="phases"))
            y_lo, y_hi = float(image.y[y0]), float(image.y[min(ny, y0 + tile) - 1])
            x_lo, x_hi = float(image.x[x0]), float(image.x[min(nx, x0 + tile) - 1])
            keep = ((cores.y >= min(y_lo, y_hi) - 0.5 * sy) & (cores.y < max(y_lo, y_hi) + 0.5 * sy)
                    & (cores.x >= min(x_lo, x_hi) - 0.5 * sy) & (cores.x < max(x_lo, x_hi) + 0.5 * sy))
            found.append(cores[keep])
    return defect_table(*found)


def phase_boundaries(labels: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> pd.DataFrame:
    """Midpoints between neighbouring windows of different phase (kind ``phase_boundary``)."""
    iy, ix = np.nonzero(labels[:, 1:] != labels[:, :-1])
    jy, jx = np.nonzero(labels[1:, :] != labels[:-1, :])
    x = np.concatenate([0.5 * (wx[ix] + wx[ix + 1]), wx[jx]])
    y = np.concatenate([wy[iy], 0.5 * (wy[jy] + wy[jy + 1])])
    nan = np.full(x.size, np.nan)
    table = pd.DataFrame({"kind": np.full(x.size, "phase_boundary"), "x": x, "y": y, "bx": nan, "by": nan,
                          "b_nm": nan})
    return table.astype({"kind": str, "x": float, "y": float, "bx": float, "by": float, "b_nm": float})


def grain_boundaries(lattice: xr.Dataset, period: float | None, threshold_deg: float) -> pd.DataFrame:
    """Rotation jumps of at least ``threshold_deg`` between neighbouring lattice windows.

    The rotation map is first median-filtered over 3 x 3 windows: a boundary is a step between
    two regions, which the filter keeps, while the rotation dipole around a dislocation core
    (falling off as 1 / r) is a local extremum the filter flattens, so cores do not pass for
    boundary segments.
    """
    rot = lattice["rotation"]
    r = np.pad(rot.values.astype(np.float64), 1, mode="edge")
    ny, nx = rot.shape
    shifted = np.stack([r[i:i + ny, j:j + nx] for i in range(3) for j in range(3)])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods stay NaN
        smooth = np.nanmedian(shifted, axis=0)
    smooth[~np.isfinite(rot.values)] = np.nan
    table = find_grain_boundaries(rot.copy(data=smooth), threshold_deg=threshold_deg,
                                  period_deg=period if period and period > 2 * threshold_deg else None)
    if len(table) < 2:
        return table.iloc[:0]
    # a boundary is a line of jumps; a jump with no other within 1.5 window steps is a point defect's field
    from scipy.spatial import cKDTree

    spacing = 1.5 * max(abs(float(np.diff(rot[rot.dims[0]].values[:2])[0])) if ny > 1 else 0.0,
                        abs(float(np.diff(rot[rot.dims[1]].values[:2])[0])) if nx > 1 else 0.0)
    xy = table[["x", "y"]].to_numpy()
    neighbours = cKDTree(xy).query_ball_point(xy, spacing, return_length=True) - 1
    return table[neighbours >= 1].reset_index(drop=True)


__all__ = ["LATTICE_VARS", "dislocations", "grain_boundaries", "lattice_order", "orientation_deg", "phase_boundaries",
           "phase_peaks", "reduced_basis", "symmetry_period"]
