"""Dislocation cores and grain boundaries as coordinate tables.

Dislocations are phase singularities of the geometric phase (see :mod:`.gpa`): around
a closed loop enclosing a core the phase P_i of reflection g_i winds by 2 pi s_i
(s_i integer). With P_i = -2 pi g_i . u, the closure failure of the displacement is
B = loop integral of du, g_i . B = -s_i, hence

    B = -(s_1 a_1 + s_2 a_2),

with a_i dual to g_i. Loops are walked clockwise as displayed (y down: from +x toward
+y), so B is the Burgers vector in the convention of :class:`atomine.simulate.defects.
EdgeDislocation`: a Burgers circuit walked clockwise as displayed fails to close by +b.

Grain boundaries are where the local lattice rotation jumps between neighbouring
samples of a rotation map; each jump is reported at the midpoint of the two samples.

Every table has the columns ``kind`` ("dislocation" or "grain_boundary"), ``x``, ``y``
(nm), ``bx``, ``by``, ``b_nm`` (Burgers vector and its length, nm; NaN for boundaries).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from scipy.signal import fftconvolve

from ..errors import InputError

COLUMNS = ("kind", "x", "y", "bx", "by", "b_nm")


def find_dislocations(gpa_result: xr.Dataset, *, loop_radius_nm: float | None = None,
                      border_nm: float | None = None, min_amplitude: float = 0.5) -> pd.DataFrame:
    """Dislocation cores and their Burgers vectors from the two GPA phase maps.

    Parameters
    ----------
    gpa_result : xarray.Dataset
        Output of :func:`~.gpa.gpa` (``phase1``, ``phase2`` on (y, x); attrs ``a``, rows a_i in nm).
    loop_radius_nm : float, optional
        Radius of the circuit around every point; its winding (the sum of the 2x2-plaquette
        windings inside, by Stokes) counts the cores it encloses, and vortex pairs from
        noise smaller than the loop cancel. Default 1.5 x the GPA resolution ``sigma_nm``.
    border_nm : float, optional
        Cores closer than this to the image edge are ignored (the FFT's periodic wrap
        corrupts phases there); default 3 x ``sigma_nm``.
    min_amplitude : float
        Cores are kept only where both reflections' amplitude (averaged over twice the
        loop) reaches this fraction of its 90th percentile over the image: elsewhere the
        lattice of these g vectors is absent and its phase is meaningless.

    Returns
    -------
    pandas.DataFrame
        One row per core, columns :data:`COLUMNS`, ``kind == "dislocation"``; ``x, y`` the
        centroid of the pixels whose loop encloses the core.
    """
    p1, p2, y, x, a, sigma, amplitude = _check_gpa(gpa_result)
    sy, sx = float(y[1] - y[0]), float(x[1] - x[0])
    radius = 1.5 * sigma if loop_radius_nm is None else float(loop_radius_nm)
    border = max(3.0 * sigma if border_nm is None else float(border_nm), radius)  # loops must not wrap around
    if not np.isfinite(radius) or radius < 1.5 * max(abs(sy), abs(sx)):
        raise InputError(f"loop_radius_nm must be at least 1.5 pixels ({1.5 * max(abs(sy), abs(sx)):.3g} nm)")
    if not np.isfinite(min_amplitude) or min_amplitude < 0:
        raise InputError(f"min_amplitude must be a fraction >= 0, got {min_amplitude!r}")
    footprint = _disk(radius / abs(sy), radius / abs(sx))
    q1, q2 = _plaquette_charges(p1), _plaquette_charges(p2)
    # by Stokes, the winding around the edge of a disk is the sum of the plaquette charges inside it
    s1, s2 = _disk_sum(q1, footprint), _disk_sum(q2, footprint)
    keep = np.zeros(q1.shape, dtype=bool)
    by_, bx_ = int(np.ceil(border / abs(sy))), int(np.ceil(border / abs(sx)))
    keep[by_:q1.shape[0] - by_, bx_:q1.shape[1] - bx_] = True
    level = _lattice_level(amplitude, footprint)
    charged = ((s1 != 0) | (s2 != 0)) & keep
    labels, n = ndimage.label(charged, structure=np.ones((3, 3)))
    hy, hx = footprint.shape[0] // 2, footprint.shape[1] // 2
    rows = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):  # a loop over the few cores found
        # the net charge of everything the cluster's disks enclose: nearby singularities of one
        # core (a winding of 2 splits into two of 1) add up, noise vortex pairs cancel
        y0, x0 = max(box[0].start - hy, 0), max(box[1].start - hx, 0)
        win = (slice(y0, box[0].stop + hy), slice(x0, box[1].stop + hx))
        sel = labels[win] == k
        iy, ix = np.nonzero(sel)
        # the cheap test first: clusters where the lattice of g is absent (other grains and phases,
        # vortex noise over large areas) are skipped before their costly dilation
        if level[y0 + int(iy.mean()), x0 + int(ix.mean())] < min_amplitude:
            continue
        region = ndimage.binary_dilation(sel, structure=footprint)
        w1, w2 = int(q1[win][region].sum()), int(q2[win][region].sum())
        if w1 == 0 and w2 == 0:
            continue
        b = -(w1 * a[0] + w2 * a[1])
        # plaquette (i, j) is centred half a pixel beyond pixel (i, j)
        rows.append({"kind": "dislocation", "x": float(x[0] + sx * (x0 + ix.mean() + 0.5)),
                     "y": float(y[0] + sy * (y0 + iy.mean() + 0.5)),
                     "bx": float(b[0]), "by": float(b[1]), "b_nm": float(np.hypot(*b))})
    return _table(rows)


def _check_gpa(ds):
    if not isinstance(ds, xr.Dataset) or not {"phase1", "phase2"} <= set(ds.data_vars) or "a" not in ds.attrs:
        raise InputError("find_dislocations needs the Dataset returned by atomine.fourier.gpa "
                         "(phase1, phase2, attrs a)")
    p1, p2 = (np.asarray(ds[k].values, dtype=np.float64) for k in ("phase1", "phase2"))
    if p1.ndim != 2 or min(p1.shape) < 8:
        raise InputError(f"the phase maps must be 2-D with at least 8 pixels a side, got shape {p1.shape}")
    if not (np.all(np.isfinite(p1)) and np.all(np.isfinite(p2))):
        raise InputError("the phase maps contain NaN or inf")
    a = np.asarray(ds.attrs["a"], dtype=np.float64)  # rows a1, a2
    sigma = float(ds.attrs.get("sigma_nm", 1.0 / np.min(np.linalg.norm(np.linalg.inv(a.T), axis=1))))
    amplitude = [np.asarray(ds[k].values, dtype=np.float64) if k in ds else np.ones_like(p1)
                 for k in ("amplitude1", "amplitude2")]
    return p1, p2, ds["y"].values, ds["x"].values, a, sigma, amplitude


def _lattice_level(amplitude, footprint: np.ndarray) -> np.ndarray:
    """Per plaquette: the weaker reflection's amplitude, averaged over twice the loop, over its 90th percentile.

    Where a reflection is absent (another grain or phase, amorphous areas, the edge of a
    grain) its phase is noise full of vortices. A core only dips the amplitude locally,
    so the wide average stays near 1 there.
    """
    size = (2 * footprint.shape[0] + 1, 2 * footprint.shape[1] + 1)
    level = np.minimum(*(ndimage.uniform_filter(a, size=size, mode="nearest") for a in amplitude))
    level = level / max(float(np.percentile(level, 90)), 1e-300)
    return level[:-1, :-1]


def _disk(ry: float, rx: float) -> np.ndarray:
    """Boolean elliptical footprint with semi-axes (ry, rx) pixels."""
    hy, hx = int(np.ceil(ry)), int(np.ceil(rx))
    yy, xx = np.mgrid[-hy:hy + 1, -hx:hx + 1]
    return (yy / ry) ** 2 + (xx / rx) ** 2 <= 1.0


def _plaquette_charges(phase: np.ndarray) -> np.ndarray:
    """Winding (integer) of ``phase`` around every 2x2 plaquette, walked clockwise as displayed."""
    z = np.exp(1j * phase)
    corners = (z[:-1, :-1], z[:-1, 1:], z[1:, 1:], z[1:, :-1])  # +x, then +y (down): clockwise as displayed
    total = sum(np.angle(corners[(k + 1) % 4] * np.conj(corners[k])) for k in range(4))
    return np.rint(total / (2 * np.pi)).astype(np.int64)


def _disk_sum(q: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Sum of the integer charges inside the footprint centred on every plaquette."""
    return np.rint(fftconvolve(q.astype(np.float64), footprint.astype(np.float64), mode="same")).astype(np.int64)


def find_grain_boundaries(rotation: xr.DataArray, *, threshold_deg: float = 2.0,
                          period_deg: float | None = None) -> pd.DataFrame:
    """Points on the lines where the local lattice rotation jumps.

    Parameters
    ----------
    rotation : xarray.DataArray
        A rotation map in degrees on (wy, wx) (from :func:`~.lattice.local_lattice`) or
        (y, x) (from :func:`~.gpa.gpa`), coordinates in nm. NaN samples are skipped.
    threshold_deg : float
        Smallest rotation difference between neighbouring samples taken as a boundary.
    period_deg : float, optional
        Rotational symmetry of the lattice (90 for square, 60 for hexagonal): differences
        are taken modulo it, so +44 and -44 degrees of a square lattice are 2 degrees apart.

    Returns
    -------
    pandas.DataFrame
        One row per jump between horizontal or vertical neighbours, at their midpoint,
        ``kind == "grain_boundary"``, columns :data:`COLUMNS` (Burgers columns NaN).
    """
    if not isinstance(rotation, xr.DataArray) or rotation.ndim != 2:
        raise InputError("rotation must be a 2-D DataArray on (wy, wx) or (y, x), in degrees")
    thr = float(threshold_deg)
    if not np.isfinite(thr) or thr <= 0:
        raise InputError(f"threshold_deg must be a positive angle in degrees, got {threshold_deg!r}")
    if period_deg is not None and not (np.isfinite(period_deg) and period_deg > 2 * thr):
        raise InputError(f"period_deg must be a symmetry angle in degrees above 2 x threshold_deg, got {period_deg!r}")
    dy_name, dx_name = rotation.dims
    yc = np.asarray(rotation[dy_name].values, dtype=np.float64)
    xc = np.asarray(rotation[dx_name].values, dtype=np.float64)
    r = np.asarray(rotation.values, dtype=np.float64)

    def jumps(axis):
        d = np.diff(r, axis=axis)
        if period_deg is not None:
            d = (d + 0.5 * period_deg) % period_deg - 0.5 * period_deg
        return np.nonzero(np.abs(d) >= thr)  # NaN compares False: no boundary next to missing samples

    iy, ix = jumps(1)
    jy, jx = jumps(0)
    x = np.concatenate([0.5 * (xc[ix] + xc[ix + 1]), xc[jx]])
    y = np.concatenate([yc[iy], 0.5 * (yc[jy] + yc[jy + 1])])
    nan = np.full(x.size, np.nan)
    return _table({"kind": np.full(x.size, "grain_boundary"), "x": x, "y": y, "bx": nan, "by": nan, "b_nm": nan})


def defect_table(*tables: pd.DataFrame) -> pd.DataFrame:
    """Dislocation and grain-boundary tables stacked into one (for ``defects.parquet``)."""
    parts = [t for t in tables if t is not None and len(t)]
    for t in parts:
        if list(t.columns[:len(COLUMNS)]) != list(COLUMNS):
            raise InputError(f"defect tables must have the columns {COLUMNS}, got {tuple(t.columns)}")
    return _table([]) if not parts else pd.concat(parts, ignore_index=True)


def _table(rows) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["kind"] = table["kind"].astype(str)
    for c in COLUMNS[1:]:
        table[c] = table[c].astype(np.float64)
    return table


__all__ = ["COLUMNS", "defect_table", "find_dislocations", "find_grain_boundaries"]
