"""One HyperSpy-style signal dict (``data``, ``axes``, ``metadata``, ``original_metadata``, ``mapping``)
-> one calibrated DataArray made by the atomine constructors.

rosettasciio readers return such dicts and a HyperSpy signal is easily turned into
one, so the EM file readers (``atomine.io.rsciio_reader``) and
``atomine.data.hyperspy.from_hyperspy`` share this conversion. Axis rules live in
:mod:`atomine.data._hs_axes`, metadata rules in :mod:`atomine.data._hs_metadata`.
"""

from __future__ import annotations

import mmap
import warnings

import numpy as np
import xarray as xr

from . import _hs_axes as ax
from . import _hs_metadata as meta
from .constructors import UncalibratedWarning, cits_grid, generic, image, spectrum, spectrum_image


def to_dataarray(sig: dict, *, lazy: bool, provenance: list, what: str, spectral: int | None = None) -> xr.DataArray | None:
    """The DataArray for one signal dict, or None (with a warning) when it holds no numbers.

    Parameters
    ----------
    sig : dict
        ``data`` (numpy or dask), ``axes`` (list of axis dicts in array order or with
        ``index_in_array``), optional ``metadata``, ``original_metadata`` and ``mapping``.
    lazy : bool
        Keep the data dask-backed (numpy inputs are wrapped); else an owned, writable numpy array.
    provenance : list
        Provenance steps to attach.
    what : str
        How to name the source in messages (e.g. "file.dm3: signal 2").
    spectral : int, optional
        Array index of an axis known to be spectral (see :func:`atomine.data._hs_axes.layout`).
    """
    data = sig.get("data")
    if np.dtype(data.dtype).kind == "O":
        warnings.warn(f"{what}: skipped: it holds Python objects, not numbers", UserWarning, stacklevel=3)
        return None
    axes = ax.parse_axes(list(sig.get("axes") or []), tuple(data.shape))
    lay = ax.layout(axes, spectral)
    data = ax.arrange(_plain_data(data, lazy), lay)
    if not lazy:
        data = np.ascontiguousarray(data)  # a transposed view would make per-spectrum access strided
    tree = meta.metadata_tree(sig)
    original = sig.get("original_metadata") or {}
    energy_step = next((_step(a) for a in lay.axes if a.role == "energy"), None)  # None: channels only
    label = meta.signal_label(tree, original, lay.kind, lay.dims, energy_step)
    common = dict(signal=label, value_units=meta.value_units(tree), name=label,
                  metadata=meta.normalised(tree, original), original_metadata=original, provenance=provenance)
    rgb, channels = _unstructure(data)
    if rgb is not None:
        return _generic(rgb, lay, common, extra=("channel", channels))
    return _build(data, lay, common)


def _step(a: ax.Axis) -> float:
    if a.values is None:
        return a.scale
    # The mean step, as (last - first) / (n - 1): one rounded step must not decide the spectrum kind.
    return float((a.values[-1] - a.values[0]) / (a.values.size - 1)) if a.values.size > 1 else 0.0


def _plain_data(data, lazy: bool):
    """dask when lazy (wrapping readers that read eagerly); else numpy, owned and writable."""
    if lazy:
        if not hasattr(data, "compute"):
            import dask.array as da

            data = da.from_array(np.asarray(data), chunks="auto")
        return data
    if hasattr(data, "compute"):
        data = data.compute()
    # Memory maps and read-only buffers would tie the array to the file or fail in-place maths.
    if _file_backed(data) or not np.asarray(data).flags.writeable:
        return np.array(data)
    return np.asarray(data)


def _file_backed(data) -> bool:
    node = data
    while node is not None:
        if isinstance(node, (np.memmap, mmap.mmap)):
            return True
        node = getattr(node, "base", None)
    return False


def _unstructure(data):
    """RGB(A) records (DM/TIFF colour images) -> a trailing channel axis; (None, None) when not records."""
    names = data.dtype.names
    if not names:
        return None, None
    from numpy.lib.recfunctions import structured_to_unstructured

    if hasattr(data, "map_blocks"):
        out = data.map_blocks(structured_to_unstructured, dtype=np.dtype(data.dtype[0]), new_axis=data.ndim,
                              chunks=data.chunks + ((len(names),),))
        return out, list(names)
    return structured_to_unstructured(np.asarray(data)), list(names)


def _calibrated_pair(y: ax.Axis, x: ax.Axis) -> bool:
    return y.role == "length" and x.role == "length"


def _build(data, lay: ax.Layout, common: dict) -> xr.DataArray:
    spatial_uniform = all(a.values is None for a in lay.axes[:2])
    if lay.kind == ax.IMAGE and spatial_uniform:
        y, x = lay.axes
        if _calibrated_pair(y, x):
            return image(data, (y.scale, x.scale), origin=(y.offset, x.offset), units="nm", **common)
        return image(data, None, **common)  # the constructor warns: pixel units
    if lay.kind in (ax.SPECTRUM_IMAGE, ax.CITS) and spatial_uniform:
        y, x, s = lay.axes
        cal = _calibrated_pair(y, x)
        size = (y.scale, x.scale) if cal else None
        origin = (y.offset, x.offset) if cal else None
        if lay.kind == ax.CITS:
            return cits_grid(data, size, origin=origin, units="nm", bias=s.values, bias_scale=s.scale,
                             bias_offset=s.offset, **common)
        return spectrum_image(data, size, origin=origin, units="nm", energy=s.values, energy_scale=s.scale,
                              energy_offset=s.offset, **common)
    if lay.kind == ax.SPECTRUM:
        (e,) = lay.axes
        return spectrum(data, energy=e.values, energy_scale=e.scale, energy_offset=e.offset, **common)
    return _generic(data, lay, common)


def _generic(data, lay: ax.Layout, common: dict, extra: tuple[str, list] | None = None) -> xr.DataArray:
    coords = {dim: ax.coord(a, dim) for a, dim in zip(lay.axes, lay.dims)}
    dims = list(lay.dims)
    if extra is not None:
        dims.append(extra[0])
        coords[extra[0]] = xr.Variable((extra[0],), np.asarray(extra[1]))
    pixels = [dim for a, dim in zip(lay.axes, lay.dims) if a.role == "none" and dim != "frame"]
    channels = [dim for a, dim in zip(lay.axes, lay.dims) if a.role == "channel"]
    if pixels or channels:
        text = f"axes {pixels} are in pixels (units 'px')" if pixels else ""
        if channels:
            text += ("; " if text else "") + f"{channels} counts channels (units 'channel')"
        warnings.warn(f"{common['signal']} data have no calibration: {text}", UncalibratedWarning, stacklevel=4)
    if lay.kind == ax.STACK and lay.axes[0].role == "none":
        coords["frame"] = xr.Variable(("frame",), np.arange(lay.axes[0].size), {"units": ""})
    return generic(data, dims, coords, **common)
