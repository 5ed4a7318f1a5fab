"""Moving maps between the spectral frame and the image frame of a registration."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from ..errors import InputError
from .grid import map_to_grid
from .registration import _grid
from .transform import AffineTransform


def _like(values, grid_da, name):
    out = xr.DataArray(values.astype(np.float32 if values.dtype == np.float32 else float),
                       dims=("y", "x"), coords={"y": grid_da.coords["y"], "x": grid_da.coords["x"]}, name=name)
    return out


def _plane(grid):
    """The (y, x) plane of a grid DataArray that may carry extra dims (e.g. a spectrum image's energy)."""
    if not isinstance(grid, xr.DataArray):
        raise InputError(f"the target grid must be a DataArray with 'y' and 'x' coords, got {type(grid).__name__}")
    return grid.isel({d: 0 for d in grid.dims if d not in ("y", "x")}).transpose("y", "x")


def to_image(map_spectral, transform: AffineTransform, image_grid) -> xr.DataArray:
    """Resample a map in the spectral frame onto the image-frame grid of ``image_grid`` (bilinear; NaN outside)."""
    image_grid = _plane(image_grid)
    src = _grid(map_spectral, "map_spectral")
    dst = _grid(image_grid, "image_grid", need_values=False)
    xi, yi = (np.asarray(image_grid.coords["x"].values, float), np.asarray(image_grid.coords["y"].values, float))
    xx, yy = np.meshgrid(xi, yi)
    xs, ys = transform.inverse()(xx, yy)
    r, c = src.to_px(xs, ys)
    vals = ndimage.map_coordinates(src.values, [r, c], order=1, mode="nearest")
    vals[~src.inside(xs, ys)] = np.nan
    del dst
    return _like(vals, image_grid.transpose("y", "x"), map_spectral.name)


def to_spectral(map_image, transform: AffineTransform, spectral_grid, *, area_weighted: bool = True,
                supersample: int = 5) -> xr.DataArray:
    """Resample an image-frame map onto the spectral grid of ``spectral_grid``.

    With ``area_weighted`` each spectral pixel gets the mean over its footprint
    (``supersample**2`` points per pixel, bilinear: :func:`~atomine.correlate.grid.map_to_grid`),
    else the value at its centre. Pixels whose footprint leaves the image are NaN.
    """
    return map_to_grid(map_image, _plane(spectral_grid), transform, supersample=supersample if area_weighted else 1)


def apply_transform(map_da, transform: AffineTransform, onto, *, direction: str = "to_image") -> xr.DataArray:
    """Resample ``map_da`` onto the grid of ``onto``: ``direction='to_image'`` (spectral -> image, :func:`to_image`)
    or ``'to_spectral'`` (image -> spectral, area weighted, :func:`to_spectral`)."""
    if direction == "to_image":
        return to_image(map_da, transform, onto)
    if direction == "to_spectral":
        return to_spectral(map_da, transform, onto)
    raise InputError(f"direction must be 'to_image' or 'to_spectral', got {direction!r}")


__all__ = ["apply_transform", "to_image", "to_spectral"]
