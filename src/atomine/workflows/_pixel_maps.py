"""Maps on a window grid brought back to image pixels (bilinear), in memory or block by block with dask.

A window-grid value belongs to the window's centre; every image pixel gets the bilinear
interpolation of the four surrounding centres, and pixels outside the outermost centres
(the margin of half a window a 'valid' sliding FFT leaves) take the nearest edge value.
For a dask-backed image the maps are built lazily in the image's own blocks, so a map
the size of an 8192 x 8192 image is never held whole: it is written chunk by chunk.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_BLOCK = 2048  # pixels per side of a lazy output block


def _fractional_index(coords: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Position of each coordinate on the (uniform) grid of window centres, in grid steps."""
    if centres.size == 1:
        return np.zeros_like(coords, dtype=np.float64)
    return (coords - centres[0]) / (centres[1] - centres[0])


def _interp_block(grid: np.ndarray, fy: np.ndarray, fx: np.ndarray, order: int) -> np.ndarray:
    yy, xx = np.meshgrid(fy, fx, indexing="ij")
    pts = np.stack([yy.ravel(), xx.ravel()])
    out = np.empty((grid.shape[0], fy.size, fx.size), dtype=np.float32)
    for c in range(grid.shape[0]):  # a handful of components
        out[c] = ndimage.map_coordinates(grid[c], pts, order=order, mode="nearest", prefilter=False).reshape(
            fy.size, fx.size)
    return out


def to_pixels(grid: np.ndarray, wy: np.ndarray, wx: np.ndarray, y: np.ndarray, x: np.ndarray, *,
              lazy: bool = False, nearest: bool = False):
    """Interpolate ``grid`` (c, nwy, nwx) at window centres (wy, wx) to pixels (y, x): (c, ny, nx) float32.

    NaN in the grid spreads to the pixels whose four neighbours include it (no value is
    invented where the lattice could not be measured). ``nearest`` takes the nearest
    window instead (for labels). With ``lazy`` a dask array in blocks of 2048 px is returned.
    """
    grid = np.asarray(grid, dtype=np.float64)
    fy = _fractional_index(np.asarray(y, np.float64), np.asarray(wy, np.float64))
    fx = _fractional_index(np.asarray(x, np.float64), np.asarray(wx, np.float64))
    order = 0 if nearest else 1
    if nearest:
        fy, fx = np.rint(fy), np.rint(fx)
    if not lazy:
        return _interp_block(grid, fy, fx, order)
    import dask
    import dask.array as dsa

    rows = []
    grid_d = dask.delayed(grid)  # one copy of the small grid shared by every block task
    for y0 in range(0, fy.size, _BLOCK):
        row = []
        for x0 in range(0, fx.size, _BLOCK):
            by, bx = fy[y0:y0 + _BLOCK], fx[x0:x0 + _BLOCK]
            block = dask.delayed(_interp_block)(grid_d, by, bx, order)
            row.append(dsa.from_delayed(block, shape=(grid.shape[0], by.size, bx.size), dtype=np.float32))
        rows.append(dsa.concatenate(row, axis=2))
    return dsa.concatenate(rows, axis=1)


__all__ = ["to_pixels"]
