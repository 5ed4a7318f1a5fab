"""Drift and line-wise scan-distortion correction of image series.

:func:`correct_series` (1) aligns every frame rigidly by phase correlation
against a reference that is refined iteratively (first frame, then the mean of
the aligned frames), (2) optionally measures each fast-scan row's extra x
offset by 1-D normalised cross-correlation against the same row of the
reference (sub-pixel by parabola, refined once), regularises those offsets by
empirical-Bayes shrinkage towards their running median over neighbouring rows
(so estimation noise does not become jitter while well-measured jitter is
kept), and (3) returns the corrected mean and a table of the shifts.

Convention: a frame's content at reference pixel ``(y, x)`` was recorded at
raw pixel ``(y + dy_px, x + dx_px + line_dx_px[row])``, where ``row`` is the
raw scan line; the correction samples the raw frame there (cubic spline).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from ..errors import InputError

_REFERENCES = ("first", "mean")


def _check(frames) -> np.ndarray:
    if not isinstance(frames, xr.DataArray) or set(frames.dims) != {"frame", "y", "x"}:
        raise InputError("frames must be a DataArray with dims ('frame', 'y', 'x'); got "
                         f"{getattr(frames, 'dims', type(frames).__name__)}")
    frames = frames.transpose("frame", "y", "x")
    if frames.sizes["frame"] < 2:
        raise InputError(f"need at least 2 frames to correct drift, got {frames.sizes['frame']}; "
                         "pass the whole series")
    if frames.sizes["y"] < 16 or frames.sizes["x"] < 16:
        raise InputError(f"frames of {frames.sizes['y']} x {frames.sizes['x']} px are too small to correlate; "
                         "need at least 16 x 16 px")
    values = np.asarray(frames.values, dtype=float)
    if not np.all(np.isfinite(values)):
        raise InputError("frames hold NaN or inf; fill or crop them before correcting drift")
    if np.any(np.ptp(values.reshape(len(values), -1), axis=1) <= 0):
        raise InputError("a frame is flat (no contrast to correlate); drop it from the series")
    return values


def _pixel_nm(frames, d: str) -> float | None:
    """Pixel size (nm) along ``d`` when the coordinate is calibrated in nm, else None."""
    if d not in frames.coords or frames.coords[d].attrs.get("units") != "nm":
        return None
    c = np.asarray(frames.coords[d].values, dtype=float)
    return float(c[1] - c[0])


def _rigid(stack: np.ndarray, reference: np.ndarray, upsample: int) -> np.ndarray:
    """(F, 2) content displacement (dy, dx) px of each frame against ``reference`` by phase correlation."""
    from skimage.registration import phase_cross_correlation

    out = np.empty((len(stack), 2))
    for f, img in enumerate(stack):  # one FFT correlation per frame, not per pixel
        shift, _, _ = phase_cross_correlation(reference, img, upsample_factor=upsample, normalization="phase")
        out[f] = -np.asarray(shift)  # skimage returns the shift that registers img onto reference
    return out


def _apply(stack: np.ndarray, shifts: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Corrected frames (NaN where the raw frame has no data) from rigid ``shifts`` and per-line x offsets."""
    nf, h, w = stack.shape
    yy, xx = np.mgrid[:h, :w].astype(float)
    out = np.empty_like(stack)
    for f in range(nf):
        # lines first, each by its own offset along x (interpolating across rows would mix rows that were
        # scanned at different offsets), then the rigid shift of the de-jittered frame
        lcols = xx + lines[f][:, None]
        unlined = ndimage.map_coordinates(stack[f], [yy, lcols], order=3, mode="nearest")
        rows, cols = yy + shifts[f, 0], xx + shifts[f, 1]
        vals = ndimage.map_coordinates(unlined, [rows, cols], order=3, mode="nearest")
        lin_ok = (lcols >= -0.01) & (lcols <= w - 0.99)
        inside = (rows >= -0.01) & (rows <= h - 0.99) & (cols >= -0.01) & (cols <= w - 0.99)
        inside &= ndimage.map_coordinates(lin_ok.astype(float), [rows, cols], order=0, mode="nearest") > 0
        vals[~inside] = np.nan
        out[f] = vals
    return out


def _mean(corrected: np.ndarray) -> np.ndarray:
    """Mean over frames where they have data; pixels no frame covers take their nearest covered neighbour."""
    valid = np.isfinite(corrected)
    n = valid.sum(0)
    avg = np.where(n > 0, np.where(valid, corrected, 0.0).sum(0) / np.maximum(n, 1), 0.0)
    if np.all(n > 0):
        return avg
    idx = ndimage.distance_transform_edt(n == 0, return_distances=False, return_indices=True)
    return avg[tuple(idx)]


def _row_ncc(stack, coef, shifts, base, lags, margin) -> tuple[np.ndarray, np.ndarray]:
    """NCC of each raw row with the reference row sampled at x offset ``base + lag``, and the row offset's variance.

    Returns (len(lags), F, H) NCC values and, at lag 0, the Cramer-Rao variance (px^2) of the row's offset:
    residual variance / sum of squared reference gradient over the row.
    """
    nf, h, w = stack.shape
    cols = np.arange(margin, w - margin, dtype=float)
    a = stack[:, :, margin: w - margin]
    a = a - a.mean(-1, keepdims=True)
    an = np.sqrt((a * a).sum(-1))
    rows = np.arange(h, dtype=float)[None, :, None] - shifts[:, 0, None, None]
    ncc, crb = [], None
    for k in lags:  # a handful of lags; everything else is vectorised over frames, rows and columns
        c = cols[None, None, :] - shifts[:, 1, None, None] - base[:, :, None] - k
        r = ndimage.map_coordinates(coef, [np.broadcast_to(rows, c.shape), c], order=3, mode="nearest",
                                    prefilter=False)
        rc = r - r.mean(-1, keepdims=True)
        rn = np.sqrt((rc * rc).sum(-1))
        ncc.append((a * rc).sum(-1) / np.maximum(an * rn, 1e-300))
        if k == 0:
            # least-squares gain and residual of the row against the reference row
            g = (a * rc).sum(-1) / np.maximum(rn * rn, 1e-300)
            res = a - g[..., None] * rc
            grad = np.gradient(r, axis=-1) * g[..., None]
            crb = (res * res).mean(-1) / np.maximum((grad * grad).sum(-1), 1e-300)
    return np.stack(ncc), crb


def _parabola(ncc: np.ndarray, lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel lag of the maximum (over axis 0) and whether it is interior (a bounded peak)."""
    i = np.argmax(ncc, axis=0)
    interior = (i > 0) & (i < len(lags) - 1)
    ic = np.clip(i, 1, len(lags) - 2)
    a, b, c = (np.take_along_axis(ncc, (ic + o)[None], 0)[0] for o in (-1, 0, 1))
    d = a - 2 * b + c
    delta = np.where(d < 0, 0.5 * (a - c) / np.where(d < 0, d, -1.0), 0.0)
    return lags[ic] + np.clip(delta, -0.5, 0.5), interior & (d < 0)


def _lines(stack, reference, shifts, max_shift: int, window: int) -> np.ndarray:
    """Regularised per-line x offsets (F, H) px of the raw frames against ``reference``."""
    nf, h, w = stack.shape
    margin = int(np.ceil(np.abs(shifts[:, 1]).max() + max_shift + 2))
    if w - 2 * margin < 16:
        raise InputError(f"frames {w} px wide leave too few columns after a {margin}-px margin for line-wise "
                         "correction; use linewise=False or lower max_line_shift_px")
    coef = ndimage.spline_filter(reference, order=3)
    base = np.zeros((nf, h))
    lags = np.arange(-max_shift, max_shift + 1)
    ncc, _ = _row_ncc(stack, coef, shifts, base, lags, margin)
    coarse, ok = _parabola(ncc, lags.astype(float))
    # refine around the first estimate: the parabola is unbiased only near its vertex
    fine_lags = np.array([-1.0, 0.0, 1.0])
    ncc, crb = _row_ncc(stack, coef, shifts, coarse, fine_lags, margin)
    delta, ok2 = _parabola(ncc, fine_lags)
    raw = coarse + delta
    ok &= ok2 & np.isfinite(crb)
    return _without_common_mode(_regularise(raw, np.where(ok, crb, np.inf), window), shifts[:, 0])


def common_mode(lines: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Mean over frames of the line offsets at each reference row ``y`` (raw row ``y + dy_f`` of frame ``f``).

    A series cannot tell an x offset that every frame has at the same sample row from the sample's own
    shape: the reference (their mean) absorbs it. The offsets are therefore reported with this common
    mode removed (a gauge choice, like fixing the first frame's rigid shift); iterating without the gauge
    lets it random-walk.
    """
    nf, h = lines.shape
    rows = np.arange(h, dtype=float)
    return np.mean([np.interp(rows + dy[f], rows, lines[f]) for f in range(nf)], axis=0)


def _without_common_mode(lines: np.ndarray, dy: np.ndarray) -> np.ndarray:
    c = common_mode(lines, dy)
    rows = np.arange(lines.shape[1], dtype=float)
    return lines - np.array([np.interp(rows - dy[f], rows, c) for f in range(len(lines))])


def _regularise(raw: np.ndarray, var: np.ndarray, window: int) -> np.ndarray:
    """Shrink each row's offset towards the running median of its neighbours by its measured precision.

    Empirical Bayes per frame: the deviations from the running median have variance tau^2 (true line jitter)
    plus each row's estimation variance ``var``; a row keeps the fraction tau^2 / (tau^2 + var) of its
    deviation. Noise alone (tau ~ 0) gives the smooth median; precise rows keep real line-to-line jitter.
    Rows whose correlation peak was not bounded (``var`` inf) take the median.
    """
    good = np.isfinite(var)
    filled = np.where(good, raw, np.nan)
    # median over neighbouring rows, ignoring failed rows (NaN-aware via a generic filter on a small window)
    med = ndimage.generic_filter(np.nan_to_num(filled, nan=np.inf), _nanmedian_inf, size=(1, window),
                                 mode="nearest")
    med = np.where(np.isfinite(med), med, 0.0)
    dev = np.where(good, raw - med, 0.0)
    out = med.copy()
    for f in range(raw.shape[0]):  # one scalar per frame
        g = good[f]
        if g.sum() < 3:
            continue
        tau2 = max(float(np.mean(dev[f, g] ** 2) - np.mean(var[f, g])), 0.0)
        w = np.where(g, tau2 / (tau2 + np.where(g, var[f], 1.0)), 0.0) if tau2 > 0 else np.zeros_like(raw[f])
        out[f] = med[f] + w * dev[f]
    return out


def _nanmedian_inf(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.inf


def correct_series(frames, *, linewise: bool = True, reference: str = "first", upsample: int = 20,
                   n_iter: int = 3, max_line_shift_px: int = 4, line_window: int = 7):
    """Correct rigid drift and (optionally) line-wise x jitter of an image series; return the mean and the shifts.

    Parameters
    ----------
    frames : xarray.DataArray (frame, y, x)
        The series, coords in nm (or px). Not modified.
    linewise : bool
        Also estimate and correct an x offset per fast-scan row of every frame.
    reference : {"first", "mean"}
        Gauge of the shifts: relative to the first frame (its rigid shift is 0 and the
        output lies in its frame) or to the mean position (the rigid shifts average to 0).
        Either way the reference image is refined iteratively from the aligned mean.
    upsample : int
        Phase-correlation upsampling factor: rigid shifts are resolved to ``1/upsample`` px.
    n_iter : int
        Rounds of align-to-reference / re-average.
    max_line_shift_px : int
        Largest per-line x offset searched (px) on top of the rigid shift.
    line_window : int
        Rows in the running median that the per-line offsets are shrunk towards.

    Returns
    -------
    average : xarray.DataArray (y, x)
        Mean of the corrected frames on the frames' grid (pixels no frame covers take their
        nearest covered neighbour).
    shifts : pandas.DataFrame
        One row per (frame, line): ``frame``, ``line`` (raw scan row), ``dy_px``, ``dx_px`` (the
        frame's rigid content displacement), ``line_dx_px`` (extra x offset of that line, mean 0
        over a frame's lines and 0 in the mean over frames at each sample row, see :func:`common_mode`;
        0 when ``linewise`` is False) and ``dy``, ``dx`` (nm; NaN when the
        coords are not in nm).
    """
    if reference not in _REFERENCES:
        raise InputError(f"reference must be one of {_REFERENCES}, got {reference!r}")
    if int(upsample) < 1 or int(n_iter) < 1 or int(max_line_shift_px) < 1 or int(line_window) < 1:
        raise InputError("upsample, n_iter, max_line_shift_px and line_window must be positive integers")
    stack = _check(frames)
    frames = frames.transpose("frame", "y", "x")
    nf, h, w = stack.shape
    lines = np.zeros((nf, h))
    shifts = _rigid(stack, stack[0], upsample)
    for _ in range(int(n_iter)):
        ref = _mean(_apply(stack, shifts, lines))
        shifts = _rigid(stack, ref, upsample)
    if linewise:
        for _ in range(2):  # lines against the rigid mean, then rigid and lines against the sharper mean
            lines = _lines(stack, ref, shifts, int(max_line_shift_px), int(line_window))
            ref = _mean(_apply(stack, shifts, lines))
            # the rigid shift of the line-corrected frame: measure it with the lines undone
            unlined = _apply(stack, np.zeros_like(shifts), lines)
            shifts = _rigid(np.where(np.isfinite(unlined), unlined, stack), ref, upsample)
        lines = _lines(stack, ref, shifts, int(max_line_shift_px), int(line_window))
        # the rigid shift carries each frame's mean line offset
        shifts[:, 1] += lines.mean(1)
        lines -= lines.mean(1, keepdims=True)
    shifts -= shifts[0] if reference == "first" else shifts.mean(0)
    avg = _mean(_apply(stack, shifts, lines))

    out = xr.DataArray(avg, dims=("y", "x"), coords={d: frames.coords[d] for d in ("y", "x") if d in frames.coords},
                       attrs=dict(frames.attrs), name=frames.name)
    py, px = _pixel_nm(frames, "y"), _pixel_nm(frames, "x")
    table = pd.DataFrame({
        "frame": np.repeat(np.arange(nf), h), "line": np.tile(np.arange(h), nf),
        "dy_px": np.repeat(shifts[:, 0], h), "dx_px": np.repeat(shifts[:, 1], h), "line_dx_px": lines.ravel()})
    table["dy"] = table["dy_px"] * py if py is not None else np.nan
    table["dx"] = table["dx_px"] * px if px is not None else np.nan
    return out, table


__all__ = ["correct_series"]
