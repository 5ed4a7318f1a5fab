"""PNG thumbnails (at most 256 px a side) for the catalog's result grid.

Images: block-averaged to <= 256 px, contrast stretched between the 1st and 99th
percentiles (robust to hot pixels and dead pixels), grey. Spectrum images and CITS grids:
the map of the signal summed over the spectral axis, shown the same way (a map tells
datasets apart in a grid better than a spectrum does). Single spectra: a small line plot of
the spectrum. Written with matplotlib's Agg backend (a core dependency); no display needed.
"""

from __future__ import annotations

import io

import numpy as np
import xarray as xr

from ..data import signal_kind

MAX_PX = 256


def _block_mean(a: np.ndarray, max_px: int) -> np.ndarray:
    """Average f x f blocks so the longer side is <= max_px (crops the ragged edge).

    Large reductions first take every s-th pixel (a strided view, no copy), leaving 2 x 2
    to 3 x 3 blocks to average: a 4k image costs what a 512 one does, and the averaging still
    suppresses shot noise and hot pixels in the picture.
    """
    f = int(np.ceil(max(a.shape) / max_px))
    if f <= 1:
        return np.asarray(a, dtype=np.float64)
    stride = max(1, f // 2)
    if stride > 1:
        a = a[::stride, ::stride]
        f = int(np.ceil(max(a.shape) / max_px))
    ny, nx = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    return np.asarray(a[:ny, :nx], dtype=np.float64).reshape(ny // f, f, nx // f, f).mean(axis=(1, 3))


def _stretch(a: np.ndarray) -> np.ndarray:
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros_like(a, dtype=float)
    lo, hi = np.percentile(a[finite], [1.0, 99.0])
    if hi <= lo:  # flat image: mid grey rather than a division by zero
        return np.full(a.shape, 0.5)
    return np.clip((np.where(finite, a, lo) - lo) / (hi - lo), 0.0, 1.0)


def image_png(a: np.ndarray, max_px: int = MAX_PX) -> bytes:
    """Grey 8-bit PNG of a 2-D array, <= ``max_px`` a side, 1-99 % percentile contrast."""
    from PIL import Image  # Pillow comes with matplotlib, a core dependency

    small = _stretch(_block_mean(np.asarray(a), max_px))
    buf = io.BytesIO()
    # one grey channel at a fast zlib level: a quarter of the bytes of an RGBA colormap image
    # and ~10x faster to encode; thumbnails are re-made from the file, so size is no concern
    Image.fromarray(np.round(small * 255.0).astype(np.uint8), mode="L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def spectrum_png(x: np.ndarray, y: np.ndarray, xlabel: str = "") -> bytes:
    """A 256 x 160 px line plot of one spectrum."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.56, 1.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.16, 0.96, 0.82))
    ax.plot(x, y, lw=0.8, color="k")
    ax.set_yticks([])
    ax.tick_params(labelsize=6, pad=1)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=6, labelpad=1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def thumbnail(da: xr.DataArray, max_px: int = MAX_PX) -> bytes | None:
    """PNG bytes for one signal, or None for shapes without a sensible picture (e.g. 1 x 1, 4-D)."""
    kind = signal_kind(da)
    if kind == "image":
        if min(da.shape) < 2:
            return None
        return image_png(np.asarray(da.values), max_px)
    if kind in ("spectrum_image", "cits"):
        return image_png(np.asarray(da.sum(da.dims[-1]).values), max_px)
    if kind == "spectrum":
        x = np.asarray(da.coords["energy"].values) if "energy" in da.coords else np.arange(da.size)
        return spectrum_png(x, np.asarray(da.values, dtype=float), f"energy ({da.coords['energy'].attrs.get('units', '')})"
                            if "energy" in da.coords else "")
    if da.ndim == 2 and min(da.shape) >= 2:  # 2-D signals with other dim names: still a picture
        return image_png(np.asarray(da.values), max_px)
    return None
