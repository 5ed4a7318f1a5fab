"""``locate_atoms``: seeds -> centre of mass -> Gaussian fits, whole image or in tiles with a halo.

Large or dask-backed images are cut into tiles; each tile is read with a halo wide enough
that every atom whose seed lies in the tile's core sees the same seeds, centroid disk and
fit patch (with neighbours) as in a whole-image run. An atom belongs to the one tile whose
core holds its seed, so atoms on tile edges are neither lost nor counted twice. The
separation and the detection threshold are fixed once for the whole image (from its
central crop), so every tile applies the same rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError
from ._grid import finite_array, image_grid
from .centroid import refine_centroid
from .gaussian import NOISE_MODELS, fit_gaussians
from .seeds import (MIN_SEPARATION_PX, check_separation, default_separation_px, find_seeds,
                    resolve_threshold)

#: Images with more pixels than this (or dask-backed ones) go through tiles.
MAX_WHOLE_PIXELS = 4096 * 4096
DEFAULT_TILE_PX = 1024
_CROP = 1024


def _central(grid) -> np.ndarray:
    ny, nx = grid.shape
    cy, cx = min(ny, _CROP), min(nx, _CROP)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    return finite_array(grid.data[y0:y0 + cy, x0:x0 + cx])


def locate_atoms(image, separation_nm=None, *, threshold=None, invert: bool = False, noise: str = "poisson",
                 joint: bool = True, fit: bool = True, tile_px: int | None = None, progress=None) -> pd.DataFrame:
    """Find every atom column and fit it: :func:`find_seeds`, :func:`refine_centroid`, :func:`fit_gaussians`.

    Parameters
    ----------
    image : xarray.DataArray (y, x) or 2-D numpy / dask array
        Calibrated image (or plain array in pixel units). Poisson fits need counts.
    separation_nm, threshold, invert
        See :func:`find_seeds` (defaults from the image's own lattice and noise).
    noise, joint
        See :func:`fit_gaussians`.
    fit : bool
        False stops after the centre of mass (no Gaussian columns, no uncertainties).
    tile_px : int, optional
        Tile side (px). Default: tiles of 1024 px for dask-backed images or images over
        4096 x 4096 px, else the whole image at once.
    progress : callable, optional
        ``progress(done, total, message)`` after each tile.

    Returns
    -------
    pandas.DataFrame
        The atom table of :func:`fit_gaussians` (``x``, ``y``, ``x_px``, ``y_px``, ``x_err``,
        ``y_err``, ``pos_err``, ``amplitude``, ``sigma_x``, ``sigma_y``, ``theta``, ``background``,
        ``intensity``, ``fit_ok``) plus ``peak`` from the seeds, sorted by (y_px, x_px), with a
        fresh index. Empty (with these columns) when no column stands out of the noise.

    Raises
    ------
    InputError
        Not a finite 2-D image, no lattice periodicity to take the separation from (blank or
        featureless image; give ``separation_nm``), absurd parameters.
    """
    if noise not in NOISE_MODELS:
        raise InputError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
    grid = image_grid(image)
    ny, nx = grid.shape
    if tile_px is None:
        tiled = grid.lazy or ny * nx > MAX_WHOLE_PIXELS
        tile_px = DEFAULT_TILE_PX
    else:
        if not isinstance(tile_px, (int, np.integer)) or isinstance(tile_px, bool) or tile_px < 16:
            raise InputError(f"tile_px must be an integer >= 16, got {tile_px!r}")
        tiled = tile_px < max(ny, nx)
    sign = -1.0 if invert else 1.0
    crop = sign * _central(grid)
    sep = default_separation_px(crop) if separation_nm is None else check_separation(separation_nm, grid)
    thr = resolve_threshold(threshold, crop, sep)
    sep_nm = sep * grid.scale
    if not tiled:
        table = _run(image, sep_nm, thr, invert, noise, joint, fit)
        if progress is not None:
            progress(1, 1, "atoms located")
    else:
        table = _tiles(grid, sep, thr, invert, noise, joint, fit, int(tile_px), progress)
    table = table.drop(columns=["seed_x_px", "seed_y_px"])
    return table.sort_values(["y_px", "x_px"], kind="stable").reset_index(drop=True)


def _run(image, sep_nm, thr, invert, noise, joint, fit) -> pd.DataFrame:
    seeds = find_seeds(image, sep_nm, threshold=thr, invert=invert)
    seeds = seeds.assign(seed_x_px=seeds["x_px"], seed_y_px=seeds["y_px"])
    table = refine_centroid(image, seeds, invert=invert)
    if fit:
        table = fit_gaussians(image, table, noise=noise, joint=joint, invert=invert)
    return table


def _halo_px(sep: float) -> int:
    """Halo (px) that makes every core atom's seeds, disks and fit patches whole-image exact.

    Seed maxima look 2 separations wide (background minimum filter) plus the smoothing
    support; a patch reaches half a neighbour distance and its neighbours' models a few
    widths further. Neighbour distances are not known before seeding, so the halo assumes
    they are at most 4 separations (8 x the smallest lattice half-period).
    """
    return int(np.ceil(14.0 * max(sep, MIN_SEPARATION_PX))) + 8


def _tiles(grid, sep, thr, invert, noise, joint, fit, tile, progress) -> pd.DataFrame:
    ny, nx = grid.shape
    halo = _halo_px(sep)
    starts = [(i, j) for i in range(0, ny, tile) for j in range(0, nx, tile)]
    sep_nm = sep * grid.scale
    parts = []
    for done, (i0, j0) in enumerate(starts, 1):
        a0, a1 = max(0, i0 - halo), min(ny, i0 + tile + halo)
        b0, b1 = max(0, j0 - halo), min(nx, j0 + tile + halo)
        values = finite_array(grid.data[a0:a1, b0:b1])  # only this tile + halo is read
        # the block keeps the image's calibration, so physical columns come out right
        block = xr.DataArray(values, dims=("y", "x"), coords={
            "y": ("y", grid.offset_y + grid.scale_y * np.arange(a0, a1), {"units": grid.units}),
            "x": ("x", grid.offset_x + grid.scale_x * np.arange(b0, b1), {"units": grid.units})})
        part = _run(block, sep_nm, thr, invert, noise, joint, fit)
        part = part.assign(x_px=part["x_px"] + b0, y_px=part["y_px"] + a0,
                           seed_x_px=part["seed_x_px"] + b0, seed_y_px=part["seed_y_px"] + a0)
        # ownership by the seed (a whole pixel): exactly one tile's core holds it
        own = ((part["seed_x_px"] >= j0) & (part["seed_x_px"] < j0 + tile)
               & (part["seed_y_px"] >= i0) & (part["seed_y_px"] < i0 + tile))
        parts.append(part[own])
        if progress is not None:
            progress(done, len(starts), "atoms located in tile")
    return pd.concat(parts, ignore_index=True)


__all__ = ["locate_atoms"]
