"""Sliding-window Fourier transforms: one local spectrum per overlapping window of an image.

The whole stack is computed as a few batched FFTs over a strided view of the image
(``numpy.lib.stride_tricks.sliding_window_view``): no Python loop per window and no
copy of the windows beyond one batch at a time. Per window the mean is removed and a
2-D taper applied before the FFT. Two identities keep that nearly free: the ky-centring
(fftshift) of an even window is a checkerboard sign folded into the taper, and for tapers
whose own spectrum is sparse (none, Hann, Hamming, Blackman) FFT((x - m) t) = FFT(x t) -
m FFT(t) removes the mean in a few bins after the FFT (window means come from strided box
sums), so the windows are gathered and tapered in a single pass. Dask-backed images are
cut into blocks of whole windows, each with the halo of ``window - step`` pixels it needs,
and transformed block by block, so memory stays bounded.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import scipy.fft
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view

from ..data import array_hash, axis_offset, axis_scale, axis_units, step as _prov_step
from ..errors import InputError
from .taper import MAIN_LOBE_BINS, taper_2d, taper_spec

OUTPUTS = ("magnitude", "power", "log", "complex")
EDGES = ("valid", "pad")
_VALUE_UNITS = {"magnitude": "a.u.", "power": "a.u.^2", "log": "log1p(a.u.)", "complex": "a.u."}
# Default batch: about 4 MiB of float32 window data per FFT call (1024 windows of 32 px),
# large enough to amortise the call overhead and small enough to stay in cache.
_BATCH_BYTES = 4 << 20
# Dask blocks: about 64 MiB of output each.
_DASK_BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class _Plan:
    """Everything the per-block transform needs; picklable, so dask can ship it to workers."""

    window: int
    step: int
    taper: np.ndarray          # (w, w) float32, with the centring sign folded in where possible
    output: str
    ky_index: object           # slice or int array selecting (and ordering) the kept ky bins
    kx_index: object
    zero: np.ndarray | None    # (nky, nkx) bool: bins set to 0 (DC mask, outside |k| <= k_max)
    batch: int                 # windows per FFT call
    mean_fix: tuple | None     # (iy, ix, FFT(taper) there): mean removal after the FFT, or None
    threads: int = 1           # threads running whole batches in parallel (1 inside dask tasks)

    @property
    def dtype(self):
        return np.complex64 if self.output == "complex" else np.float32

    @property
    def k_shape(self) -> tuple[int, int]:
        return _index_len(self.ky_index, self.window), _index_len(self.kx_index, self.window)


def _index_len(index, window: int) -> int:
    return len(range(window)[index]) if isinstance(index, slice) else len(index)


def window_centres_px(n: int, window: int, step: int, edges: str = "valid") -> np.ndarray:
    """Pixel positions (float) of the window centres along an axis of ``n`` pixels.

    The block of pixels ``[i0, i0 + window)`` has its centre at ``i0 + (window - 1) / 2``.
    With ``edges="pad"`` the image is reflect-padded by ``window // 2`` on each side first,
    so the first centre is at ``(window - 1) / 2 - window // 2`` (0 or -0.5).
    """
    pad = window // 2 if edges == "pad" else 0
    count = (n + 2 * pad - window) // step + 1
    return np.arange(count) * float(step) - pad + (window - 1) / 2.0


def _whole(value, what: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise InputError(f"{what} must be a whole number of pixels, got {value!r}")
    if not np.isfinite(value) or value != int(value) or int(value) < minimum:
        raise InputError(f"{what} is {value!r}; it must be a whole number of pixels >= {minimum}")
    return int(value)


def _read_image(image):
    """(data, (dy, dx), (oy, ox), units, name, attrs) of a 2-D DataArray or array."""
    if isinstance(image, xr.DataArray):
        if image.ndim != 2 or tuple(image.dims) != ("y", "x"):
            raise InputError(f"sliding_fft needs a 2-D image with dims ('y', 'x'), got dims {tuple(image.dims)} "
                             f"(shape {image.shape}); select one image or channel first")
        if all(d in image.coords for d in ("y", "x")) and all(image.sizes[d] > 1 for d in ("y", "x")):
            scale = (axis_scale(image, "y"), axis_scale(image, "x"))
            offset = (axis_offset(image, "y"), axis_offset(image, "x"))
            units = axis_units(image, "x") or "px"
        else:
            scale, offset, units = (1.0, 1.0), (0.0, 0.0), "px"
        return image.data, scale, offset, units, image.name, dict(image.attrs)
    data = image if hasattr(image, "__dask_graph__") else np.asarray(image)
    if data.ndim != 2:
        raise InputError(f"sliding_fft needs a 2-D image (y, x), got {data.ndim} dimensions (shape {data.shape})")
    return data, (1.0, 1.0), (0.0, 0.0), "px", None, {}


def _k_axes(window: int, scale: tuple[float, float], output: str, taper_name: str, mask_dc, k_max):
    """Indices of the kept bins, their k coordinates (cycles per length unit) and the zero mask."""
    full = output == "complex"
    even = window % 2 == 0
    dky, dkx = (1.0 / (window * abs(s)) for s in scale)
    ky_all = np.fft.fftshift(np.fft.fftfreq(window, d=abs(scale[0])))
    kx_all = np.fft.fftshift(np.fft.fftfreq(window, d=abs(scale[1]))) if full else \
        np.fft.rfftfreq(window, d=abs(scale[1]))
    keep_y = np.ones(window, bool) if k_max is None else np.abs(ky_all) <= k_max * (1 + 1e-9)
    keep_x = np.ones(kx_all.size, bool) if k_max is None else np.abs(kx_all) <= k_max * (1 + 1e-9)
    if k_max is not None and k_max < max(dky, dkx):
        raise InputError(f"k_max={k_max} keeps no frequency bin but k = 0 (bin size {max(dky, dkx):.4g} "
                         "cycles per length unit); make it larger")

    def index(keep, shifted):
        sel = np.flatnonzero(keep)
        if not shifted:  # bins already in centred order (sign folded into the taper, or rfft x-axis)
            return slice(int(sel[0]), int(sel[-1]) + 1)
        return np.fft.fftshift(np.arange(window))[sel]  # odd windows: gather in centred order

    ky_index = index(keep_y, not even)
    kx_index = index(keep_x, full and not even)
    ky, kx = ky_all[keep_y], kx_all[keep_x]
    zero = np.zeros((ky.size, kx.size), bool)
    if k_max is not None:
        zero |= np.hypot(ky[:, None], kx[None, :]) > k_max * (1 + 1e-9)
    if mask_dc is not False and mask_dc is not None:
        if mask_dc is True:
            radius_bins = MAIN_LOBE_BINS[taper_name]
            zero |= np.hypot(ky[:, None] / dky, kx[None, :] / dkx) < radius_bins
        else:
            zero |= np.hypot(ky[:, None], kx[None, :]) < mask_dc
    return ky_index, kx_index, ky, kx, (zero if zero.any() else None)


def _window_means(arr: np.ndarray, window: int, step: int, nwy: int, nwx: int) -> np.ndarray:
    """Mean of every window as two separable strided box sums: O(image x window / step)."""
    # Summing strided views (numpy reduces them in cache-friendly order) is several times
    # faster than a cumulative sum down the image's columns.
    band = sliding_window_view(arr, window, axis=0)[::step].sum(axis=-1, dtype=np.float64)  # (nwy, nx)
    box = sliding_window_view(band, window, axis=1)[:, ::step].sum(axis=-1)  # (nwy, nwx)
    return box[:nwy, :nwx] / float(window * window)


def _mean_correction(taper: np.ndarray, output: str, max_bins: int = 64):
    """Where and by how much a window's mean shows in its tapered spectrum, if that is sparse.

    FFT((x - m) t) = FFT(x t) - m FFT(t). For no taper and the Hann, Hamming and Blackman
    tapers FFT(t) is non-zero in only a few bins around k = 0, so the mean is removed there
    after the FFT, for free, instead of in a pass over every pixel of every window.
    Returns ``(iy, ix, values)`` in the FFT's own bin order, or None when FFT(t) is spread
    out (tukey, gaussian: the mean is then subtracted before the FFT).
    """
    t = np.asarray(taper, np.float64)
    spec = np.fft.fft2(t) if output == "complex" else np.fft.rfft2(t)
    # The float32 taper's rounding puts ~1e-8 relative power everywhere: below float32 precision.
    support = np.abs(spec) > 1e-6 * np.abs(spec).max()
    if support.sum() > max_bins:
        return None
    iy, ix = np.nonzero(support)
    return iy, ix, spec[iy, ix].astype(np.complex64)


def _finish(spec: np.ndarray, plan: _Plan, dest: np.ndarray) -> None:
    """Select the kept bins of a batch of spectra and write the requested output into ``dest``."""
    sub = spec[..., plan.ky_index, :][..., plan.kx_index]
    if plan.output == "complex":
        dest[...] = sub
    else:
        np.abs(sub, out=dest)
        if plan.output == "power":
            np.square(dest, out=dest)
        elif plan.output == "log":
            np.log1p(dest, out=dest)
    if plan.zero is not None:
        dest[..., plan.zero] = 0


def _transform(arr: np.ndarray, plan: _Plan, progress=None) -> np.ndarray:
    """Local spectra of every window of a 2-D block: (nwy, nwx, nky, nkx)."""
    arr = np.asarray(arr)
    # Centring on the block mean before anything else keeps float32 precision when the
    # mean is large against the contrast (HAADF counts); per-window means are then small
    # residuals. Wide inputs are centred in float64, before they are rounded to float32.
    centre = arr.mean(dtype=np.float64)
    wide = arr.dtype.itemsize > 4 and arr.dtype.kind == "f"
    arr = (arr - centre).astype(np.float32) if wide else np.subtract(arr, np.float32(centre), dtype=np.float32)
    if not np.isfinite(arr).all():
        raise InputError("sliding_fft: the image holds NaN or inf; mask or interpolate them before the FFT")
    w, s = plan.window, plan.step
    nwy, nwx = (arr.shape[0] - w) // s + 1, (arr.shape[1] - w) // s + 1
    out = np.empty((nwy, nwx) + plan.k_shape, plan.dtype)
    view = sliding_window_view(arr, (w, w))[::s, ::s]
    means = _window_means(arr, w, s, nwy, nwx).astype(np.float32)
    rows = max(1, min(nwy, plan.batch // nwx))
    fft = scipy.fft.fft2 if plan.output == "complex" else scipy.fft.rfft2
    local = threading.local()

    def batch(r0: int) -> int:
        r1 = min(nwy, r0 + rows)
        if not hasattr(local, "buf"):
            local.buf = np.empty((rows, nwx, w, w), np.float32)  # one per thread, reused: no page faults
        blk = local.buf[: r1 - r0]
        if plan.mean_fix is None:
            np.subtract(view[r0:r1], means[r0:r1, :, None, None], out=blk)  # gathers the windows too
            blk *= plan.taper
        else:
            np.multiply(view[r0:r1], plan.taper, out=blk)  # gather and taper in one pass
        spec = fft(blk, axes=(-2, -1), workers=1, overwrite_x=True)
        if plan.mean_fix is not None:
            iy, ix, values = plan.mean_fix
            spec[..., iy, ix] -= means[r0:r1, :, None] * values
        _finish(spec, plan, out[r0:r1])
        return r1

    # Whole batches (gather, taper, FFT, magnitude) run in parallel threads: numpy and pocketfft
    # release the GIL, so the gather and finishing passes are spread over the cores as well as the
    # FFT (a multi-threaded FFT per batch would leave them on one core). Inside dask tasks
    # plan.threads is 1: dask already runs blocks in parallel.
    starts = range(0, nwy, rows)
    threads = min(plan.threads, len(starts))
    if threads <= 1:
        for r0 in starts:
            r1 = batch(r0)
            if progress is not None:
                progress(r1 * nwx, nwy * nwx, "sliding FFT")
        return out
    done = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for r1 in pool.map(batch, starts):
            done += 1
            if progress is not None:  # from this thread, in order: callbacks need not be thread-safe
                progress(min(nwy, done * rows) * nwx, nwy * nwx, "sliding FFT")
    return out


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _transform_dask(darr, plan: _Plan, nwy: int, nwx: int):
    """The stack as a dask array: blocks of whole windows, each computed from its own slab plus halo."""
    import dask.array as da

    w, s = plan.window, plan.step
    nky, nkx = plan.k_shape
    per_block = max(plan.batch, _DASK_BLOCK_BYTES // (nky * nkx * np.dtype(plan.dtype).itemsize))
    side = max(1, int(np.sqrt(per_block)))
    by, bx = min(nwy, side), min(nwx, max(1, per_block // min(nwy, side)))
    rows = []
    for a in range(0, nwy, by):
        b = min(nwy, a + by)
        row = []
        for c in range(0, nwx, bx):
            d = min(nwx, c + bx)
            slab = darr[a * s:(b - 1) * s + w, c * s:(d - 1) * s + w]
            slab = slab.rechunk(slab.shape)  # one chunk: the block's windows plus their halo
            row.append(slab.map_blocks(_transform, plan=plan, dtype=plan.dtype, new_axis=[2, 3],
                                       chunks=((b - a,), (d - c,), (nky,), (nkx,)),
                                       meta=np.empty((0, 0, 0, 0), plan.dtype)))
        rows.append(da.concatenate(row, axis=1))
    return da.concatenate(rows, axis=0)


def sliding_fft(image, window, step=None, *, taper="hann", output="magnitude", mask_dc=False, k_max=None,
                edges="valid", chunk_windows=None, progress=None) -> xr.DataArray:
    """Local Fourier spectra of overlapping square windows of an image.

    Parameters
    ----------
    image : xarray.DataArray (y, x) or 2-D array
        Calibrated image (coords in a length unit, normally nm) or a plain array (pixel
        units). May be dask-backed: the result is then dask-backed too.
    window : int
        Window side in pixels (2 .. the smaller image side).
    step : int, optional
        Distance between window origins in pixels (default ``window // 4``, at least 1).
    taper : str, None or (str, float)
        ``"hann"`` (default), ``"hamming"``, ``"blackman"``, ``"tukey"``, ``"gaussian"`` or
        None; applied to each window after removing its mean and before the FFT.
    output : {"magnitude", "power", "log", "complex"}
        ``|F|``, ``|F|^2``, ``log1p(|F|)`` (float32, rfft half-plane kx >= 0, since these are
        centrosymmetric), or the full complex plane (complex64).
    mask_dc : bool or float
        True zeros the bins within the taper's main lobe around k = 0 (where the residual of
        the mean removal leaks); a number zeros ``|k| < mask_dc`` (cycles per length unit).
    k_max : float, optional
        Band limit in cycles per length unit: the ky/kx axes are cropped to ``|k| <= k_max``
        and bins outside the disc are zeroed (fewer features for unmixing).
    edges : {"valid", "pad"}
        "valid": only windows fully inside the image. "pad": the image is reflect-padded by
        ``window // 2`` so that the window centres cover the whole image.
    chunk_windows : int, optional
        Windows per batched FFT (default: about 4 MiB of float32 window data).
    progress : callable, optional
        ``progress(done, total, message)`` after each batch (numpy input only; dask input
        is lazy and reports through dask's own diagnostics).

    Returns
    -------
    xarray.DataArray
        dims ``("wy", "wx", "ky", "kx")``; ``wy``, ``wx`` are the window centres (image
        length units), ``ky``, ``kx`` frequencies in cycles per length unit (units
        ``"1/nm"`` for nm images), ky centred and ascending. attrs record window, step,
        taper, output, pixel size and a provenance step.

    Raises
    ------
    InputError
        Not a 2-D image, NaN/inf values, window larger than the image, step < 1, unknown
        taper/output/edges, or a k_max that keeps no bin.
    """
    data, scale, offset, units, name, attrs = _read_image(image)
    if np.dtype(data.dtype).kind not in "biuf":
        raise InputError(f"sliding_fft needs a real-valued image, got dtype {data.dtype}")
    if data.size == 0:
        raise InputError(f"sliding_fft: the image is empty (shape {data.shape})")
    w = _whole(window, "window", 2)
    ny, nx = (int(n) for n in data.shape)
    if w > min(ny, nx):
        raise InputError(f"window {w} px is larger than the image ({ny} x {nx} px); use a window <= {min(ny, nx)}")
    s = max(1, w // 4) if step is None else _whole(step, "step", 1)
    if output not in OUTPUTS:
        raise InputError(f"unknown output {output!r}; use one of {', '.join(OUTPUTS)}")
    if edges not in EDGES:
        raise InputError(f"unknown edges {edges!r}; use 'valid' or 'pad'")
    taper_name, taper_param = taper_spec(taper)
    mask_dc = False if mask_dc is None else bool(mask_dc) if isinstance(mask_dc, np.bool_) else mask_dc
    for what, value in (("k_max", k_max), ("mask_dc", None if isinstance(mask_dc, (bool, np.bool_)) else mask_dc)):
        if value is not None and (not isinstance(value, (int, float, np.number)) or not np.isfinite(value)
                                  or value <= 0):
            raise InputError(f"{what}={value!r}; give a positive number in cycles per {units}")
    batch = max(1, _BATCH_BYTES // (4 * w * w)) if chunk_windows is None else _whole(chunk_windows, "chunk_windows", 1)

    ky_index, kx_index, ky, kx, zero = _k_axes(w, scale, output, taper_name, mask_dc, k_max)
    even = w % 2 == 0
    taper2d = taper_2d((taper_name, taper_param), w, shift_y=even, shift_x=even and output == "complex")
    plan = _Plan(window=w, step=s, output=output, ky_index=ky_index, kx_index=kx_index, zero=zero, batch=batch,
                 taper=taper2d, mean_fix=_mean_correction(taper2d, output))
    pad = w // 2 if edges == "pad" else 0
    lazy = hasattr(data, "__dask_graph__")
    if not lazy:
        plan = replace(plan, threads=_usable_cores())
    if lazy:
        import dask.array as da

        arr = da.pad(data, pad, mode="reflect") if pad else data
        nwy, nwx = (ny + 2 * pad - w) // s + 1, (nx + 2 * pad - w) // s + 1
        values = _transform_dask(arr, plan, nwy, nwx)
        input_hash = None  # hashing would read the whole (possibly larger than memory) image
    else:
        arr = np.asarray(data)  # centred, cast to float32 and checked for NaN/inf in _transform
        input_hash = array_hash(np.asarray(data))
        values = _transform(np.pad(arr, pad, mode="reflect") if pad else arr, plan, progress)

    k_units = f"1/{units}"
    coords = {
        "wy": ("wy", offset[0] + scale[0] * window_centres_px(ny, w, s, edges), {"units": units}),
        "wx": ("wx", offset[1] + scale[1] * window_centres_px(nx, w, s, edges), {"units": units}),
        "ky": ("ky", ky, {"units": k_units, "long_name": "spatial frequency (cycles per length)"}),
        "kx": ("kx", kx, {"units": k_units, "long_name": "spatial frequency (cycles per length)"}),
    }
    params = {"window": w, "step": s, "taper": taper_name, "taper_parameter": taper_param, "output": output,
              "mask_dc": bool(mask_dc) if isinstance(mask_dc, (bool, np.bool_)) else float(mask_dc),
              "k_max": None if k_max is None else float(k_max), "edges": edges}
    out_attrs = {
        "signal": "sliding_fft",
        "units": _VALUE_UNITS[output],
        **params,
        "pixel_size": [float(scale[0]), float(scale[1])],
        "space_units": units,
        "image": None if name is None else str(name),
        "image_signal": attrs.get("signal"),
        "metadata": attrs.get("metadata", {}),
        "provenance": list(attrs.get("provenance", [])) + [_prov_step("sliding_fft", params, input_hash)],
    }
    return xr.DataArray(values, dims=("wy", "wx", "ky", "kx"), coords=coords,
                        name=f"{name}_sliding_fft" if name else "sliding_fft", attrs=out_attrs)


__all__ = ["sliding_fft", "window_centres_px", "OUTPUTS", "EDGES"]
