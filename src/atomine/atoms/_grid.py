"""Pixel geometry of an input image: the array plus its (offset, scale) per axis.

Every atoms function accepts a calibrated ``xarray.DataArray`` with dims ``("y", "x")``
or a plain 2-D numpy / dask array (pixel units: scale 1, offset 0, units ``"px"``).
Inside, all work is in pixel indices; tables carry both pixel and physical columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..data import axis_offset, axis_scale, axis_units
from ..errors import InputError


@dataclass(frozen=True)
class Grid:
    """An image's values and its pixel -> physical mapping (physical = offset + index * scale)."""

    data: object  # numpy or dask array (y, x)
    scale_y: float
    scale_x: float
    offset_y: float
    offset_x: float
    units: str

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self.data.shape)

    @property
    def lazy(self) -> bool:
        return hasattr(self.data, "__dask_graph__")

    def to_phys(self, x_px, y_px):
        return self.offset_x + np.asarray(x_px) * self.scale_x, self.offset_y + np.asarray(y_px) * self.scale_y

    def to_px(self, x, y):
        return (np.asarray(x) - self.offset_x) / self.scale_x, (np.asarray(y) - self.offset_y) / self.scale_y

    @property
    def scale(self) -> float:
        """Geometric-mean pixel size (physical units per px), for isotropic lengths."""
        return float(np.sqrt(abs(self.scale_x * self.scale_y)))


def image_grid(image, what: str = "image") -> Grid:
    """The :class:`Grid` of ``image``; InputError for anything that is not a real 2-D image."""
    if isinstance(image, xr.DataArray):
        if tuple(image.dims) != ("y", "x"):
            raise InputError(f"{what} must have dims ('y', 'x'), got {tuple(image.dims)}")
        data = image.data
        sy, sx = axis_scale(image, "y"), axis_scale(image, "x")
        oy, ox = axis_offset(image, "y"), axis_offset(image, "x")
        units = axis_units(image, "x") or "px"
        if not (np.isfinite([sy, sx, oy, ox]).all() and sy != 0 and sx != 0):
            raise InputError(f"{what} has an unusable calibration (pixel size {sy}, {sx}); fix its coordinates")
    else:
        data, sy, sx, oy, ox, units = image, 1.0, 1.0, 0.0, 0.0, "px"
        if not hasattr(data, "__dask_graph__"):
            data = np.asarray(data)
    if data.ndim != 2:
        raise InputError(f"{what} must be a 2-D image (y, x), got {data.ndim} dimensions (shape {data.shape})")
    if np.dtype(data.dtype).kind not in "biuf":
        raise InputError(f"{what} must be real-valued, got dtype {data.dtype}")
    if min(data.shape) < 8:
        raise InputError(f"{what} is {data.shape[0]} x {data.shape[1]} px; atoms need at least 8 x 8 px")
    return Grid(data, float(sy), float(sx), float(oy), float(ox), units)


def finite_array(data, what: str = "image") -> np.ndarray:
    """``data`` as float64 numpy, InputError when it holds NaN or inf."""
    arr = np.asarray(data.compute() if hasattr(data, "compute") else data, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"{what} holds NaN or inf; mask or interpolate them before locating atoms")
    return arr


def check_table(table, columns=("x_px", "y_px"), what: str = "table"):
    """InputError unless ``table`` is a DataFrame with finite ``columns``."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame of atoms, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{what} lacks columns {missing}; pass the table from find_seeds / refine_centroid")
    values = table[list(columns)].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"{what} holds NaN or inf in {list(columns)}; drop those rows first")
    return values
