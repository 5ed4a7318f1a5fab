"""Figures of images: calibrated image, a stack of maps, atom positions over an image.

Every function returns a ``matplotlib.figure.Figure`` with calibrated axes (e.g.
``x (nm)``), a colour bar labelled with the value units and a scale bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from ..data import axis_units, is_length_unit, length_factor_to_nm
from ..errors import InputError
from ._draw import axis_label, check_image_like, draw_image, extent, new_figure, value_label

# Marker per atom class; the colour says the sublattice (or the class when there is no sublattice).
_CLASS_MARKERS = {"host": "o", "dopant": "*", "vacancy": "X", "unknown": "^"}
_MAX_GRID = 6


def plot_image(da: xr.DataArray, *, title: str | None = None, cmap: str = "gray", robust: bool = True,
               scalebar: bool = True) -> Figure:
    """An image with physical axes, colour bar (value units) and scale bar.

    Parameters
    ----------
    da : xarray.DataArray, dims ("y", "x")
        Calibrated image (lengths in nm; pixel units are shown as ``px``).
    title : str, optional
        Defaults to the DataArray's name.
    cmap : str
        Matplotlib colour map.
    robust : bool
        Colour limits at the 0.5 and 99.5 percentiles instead of min/max.
    scalebar : bool
        Draw a scale bar in the lower right.
    """
    check_image_like(da, "plot_image")
    fig = new_figure(5.2, 4.4)
    ax = fig.add_subplot()
    draw_image(fig, ax, da, cmap=cmap, robust=robust, scalebar=scalebar, title=title or str(da.name))
    return fig


def plot_maps(maps, *, titles=None, title: str | None = None, cmap: str = "viridis", ncols: int = 3) -> Figure:
    """Several (y, x) maps as small calibrated panels of one figure, each with its own colour bar.

    Parameters
    ----------
    maps : sequence of xarray.DataArray, each with dims ("y", "x")
        Colour bars show each map's name and value units.
    titles : sequence of str, optional
        Panel titles (default: the maps' names).
    title : str, optional
        Figure title.
    ncols : int
        Panels per row.
    """
    maps = list(maps)
    if not maps:
        raise InputError("plot_maps needs at least one map")
    if ncols < 1:
        raise InputError(f"ncols must be at least 1, got {ncols}")
    for m in maps:
        check_image_like(m, "plot_maps")
    titles = [str(m.name) for m in maps] if titles is None else [str(t) for t in titles]
    if len(titles) != len(maps):
        raise InputError(f"{len(titles)} titles given for {len(maps)} maps")
    cols = min(len(maps), ncols)
    rows = -(-len(maps) // cols)
    fig = new_figure(4.0 * cols, 3.5 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, m, t in zip(axes, maps, titles):
        draw_image(fig, ax, m, cmap=cmap, robust=False, title=t, colorbar_label=value_label(m, str(m.name)))
    for ax in axes[len(maps):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def plot_image_grid(da: xr.DataArray, dim: str, *, title: str | None = None, cmap: str = "viridis",
                    max_panels: int = _MAX_GRID) -> Figure:
    """One calibrated panel per index along ``dim`` (e.g. the components of an abundance map).

    ``da`` must have dims ``("y", "x")`` plus ``dim``; at most ``max_panels`` are drawn.
    """
    if not isinstance(da, xr.DataArray):
        raise InputError(f"plot_image_grid needs an xarray.DataArray, got {type(da).__name__}")
    if set(da.dims) != {"y", "x", dim} or da.ndim != 3:
        raise InputError(f"plot_image_grid needs dims ('y', 'x', {dim!r}), got {tuple(da.dims)}")
    if max_panels < 1:
        raise InputError(f"max_panels must be at least 1, got {max_panels}")
    panels, titles = [], []
    for k in range(min(int(da.sizes[dim]), max_panels)):
        panel = da.isel({dim: k}).transpose("y", "x")
        label = panel.coords[dim].values.item() if dim in panel.coords else k
        panels.append(panel)
        titles.append(f"{dim} = {label}")
    return plot_maps(panels, titles=titles, title=title, cmap=cmap)


def plot_profiles(profiles, *, title: str | None = None) -> Figure:
    """1-D curves (e.g. per-scan-line shifts) against their calibrated coordinate, one axes per dimension."""
    profiles = list(profiles)
    if not profiles:
        raise InputError("plot_profiles needs at least one profile")
    for p in profiles:
        if not isinstance(p, xr.DataArray) or p.ndim != 1 or p.size == 0:
            raise InputError("plot_profiles needs non-empty 1-D xarray.DataArrays")
    dims = list(dict.fromkeys(p.dims[0] for p in profiles))
    fig = new_figure(5.5 * len(dims), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(dims))).ravel()
    for ax, d in zip(axes, dims):
        along = [p for p in profiles if p.dims[0] == d]
        for p in along:
            x = np.asarray(p.coords[d].values) if d in p.coords else np.arange(p.size)
            ax.plot(x, np.asarray(p.values, dtype=np.float64), lw=1.0, label=value_label(p, str(p.name)))
        ax.set_xlabel(axis_label(along[0], d))
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(da: xr.DataArray, *, title: str | None = None, max_curves: int = 12) -> Figure:
    """Each row of a 2-D DataArray as a curve against its longer axis (e.g. endmember spectra per component).

    Parameters
    ----------
    da : xarray.DataArray, 2-D
        E.g. dims ``("component", "energy")``; the longer dim is the abscissa (with its units).
    max_curves : int
        At most this many curves are drawn.
    """
    if not isinstance(da, xr.DataArray) or da.ndim != 2 or da.size == 0:
        raise InputError("plot_curves needs a non-empty 2-D xarray.DataArray")
    along = max(da.dims, key=lambda d: da.sizes[d])
    other = next(d for d in da.dims if d != along)
    x = np.asarray(da.coords[along].values) if along in da.coords else np.arange(da.sizes[along])
    labels = da.coords[other].values if other in da.coords else np.arange(da.sizes[other])
    fig = new_figure(5.5, 3.8)
    ax = fig.add_subplot()
    curves = np.asarray(da.transpose(other, along).values, dtype=np.float64)
    for k in range(min(da.sizes[other], max_curves)):
        ax.plot(x, curves[k], lw=1.0, label=f"{other} = {labels[k]}")
    ax.set_xlabel(axis_label(da, along))
    ax.set_ylabel(value_label(da, str(da.name)))
    ax.legend(fontsize="small")
    ax.set_title(title or str(da.name))
    return fig


def _positions(da: xr.DataArray, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Atom positions in the image's axis units (nm tables; pixel columns for uncalibrated images)."""
    units = axis_units(da, "x")
    if units in ("", "px"):
        if not {"x_px", "y_px"} <= set(table.columns):
            raise InputError("the image is uncalibrated (px) and the table has no x_px, y_px columns to place atoms")
        x, y = table["x_px"], table["y_px"]
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if not is_length_unit(units):
        raise InputError(f"image x axis is in {units!r}, not a length; cannot place atoms given in nm")
    to_axis = 1.0 / length_factor_to_nm(units)
    return (np.asarray(table["x"], dtype=np.float64) * to_axis, np.asarray(table["y"], dtype=np.float64) * to_axis)


def plot_atoms_overlay(da: xr.DataArray, table: pd.DataFrame, *, by: str | None = None, title: str | None = None,
                       cmap: str = "gray", marker_size: float | None = None) -> Figure:
    """Atom (column) positions from ``table`` drawn over the image ``da``.

    Parameters
    ----------
    da : xarray.DataArray
        Image with dims ("y", "x"); a spectrum image or CITS grid is shown summed over its last axis.
    table : pandas.DataFrame
        One row per atom with ``x``, ``y`` in nm (``x_px``, ``y_px`` for an uncalibrated image).
    by : str, optional
        Column that sets the colour (default ``"sublattice"`` if present, else ``"cls"``).
        When the table has a ``cls`` column, the marker shape shows the class
        (host o, dopant *, vacancy X, unknown ^).
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"plot_atoms_overlay needs a pandas DataFrame of atoms, got {type(table).__name__}")
    if isinstance(da, xr.DataArray) and da.ndim == 3 and tuple(da.dims[:2]) == ("y", "x"):
        summed = da.sum(da.dims[2])
        summed.attrs = {**da.attrs, "signal": f"summed {da.attrs.get('signal', '')}".strip()}
        da = summed.rename(da.name)
    check_image_like(da, "plot_atoms_overlay")
    if not {"x", "y"} <= set(table.columns):
        raise InputError(f"the atom table needs x and y columns (nm); it has {list(table.columns)}")
    if by is None:
        by = "sublattice" if "sublattice" in table.columns else ("cls" if "cls" in table.columns else None)
    elif by not in table.columns:
        raise InputError(f"the atom table has no column {by!r} to colour by; it has {list(table.columns)}")
    x, y = _positions(da, table)
    if not (np.isfinite(x).any() and np.isfinite(y).any()):
        raise InputError("the atom table has no finite positions")
    fig = new_figure(5.6, 4.6)
    ax = fig.add_subplot()
    draw_image(fig, ax, da, cmap=cmap, title=title or f"{da.name}: {len(table)} atoms")
    size = marker_size or float(np.clip(4000.0 / max(len(table), 1), 4.0, 40.0))
    groups = table[by].astype(str).to_numpy() if by else np.full(len(table), "atoms")
    classes = table["cls"].astype(str).to_numpy() if "cls" in table.columns and by != "cls" else None
    colors = _palette()
    for gi, g in enumerate(pd.unique(groups)):
        in_group = groups == g
        kinds = pd.unique(classes[in_group]) if classes is not None else [None]
        for c in kinds:
            sel = in_group if c is None else in_group & (classes == c)
            marker = _CLASS_MARKERS.get(c if c is not None else str(g), "o")
            label = f"{by} {g}" if by else g
            if c is not None and c != "host":
                label += f" ({c})"
            ax.scatter(x[sel], y[sel], s=size * (2.5 if marker == "*" else 1.0), marker=marker,
                       facecolors="none" if marker == "o" else colors[gi % len(colors)],
                       edgecolors=colors[gi % len(colors)], linewidths=0.9, label=label)
    x0, x1, y0, y1 = extent(da)
    ax.set_xlim(x0, x1)  # atoms outside the field of view must not rescale the image
    ax.set_ylim(y0, y1)
    ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    return fig


def _palette() -> list[str]:
    return ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45"]
