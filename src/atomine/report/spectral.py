"""Figures of spectral cubes: EELS/EDS spectrum images and CITS grids.

Each figure has three panels: a calibrated map, the spatially averaged (or summed)
curve, and the curves at a few pixels that are marked on the map in the same colour.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..errors import InputError
from ._draw import axis_label, draw_image, new_figure

_CURRENT_UNITS = {"a", "ma", "ua", "µa", "na", "pa", "fa"}
_PIXEL_COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4"]


def _check_cube(da, dims: tuple[str, str, str], what: str) -> None:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} needs an xarray.DataArray, got {type(da).__name__}")
    if tuple(da.dims) != dims:
        raise InputError(f"{what} needs dims {dims}, got {tuple(da.dims)}")
    if da.size == 0:
        raise InputError(f"{what}: the data are empty")


def _computed(x: xr.DataArray) -> xr.DataArray:
    return x.compute() if hasattr(x.data, "compute") and not isinstance(x.data, np.ndarray) else x


def _pick_pixels(score: xr.DataArray, pixels) -> list[tuple[int, int]]:
    """Given (row, col) pixels checked against the grid, or by default the highest, lowest and central pixel."""
    ny, nx = score.sizes["y"], score.sizes["x"]
    if pixels is not None:
        picked = [(int(i), int(j)) for i, j in pixels]
        for i, j in picked:
            if not (0 <= i < ny and 0 <= j < nx):
                raise InputError(f"pixel (row {i}, column {j}) is outside the {ny} x {nx} grid")
        if not picked:
            raise InputError("give at least one (row, column) pixel, or None for the default picks")
        return picked
    v = np.asarray(score.values, dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.nanmedian(v))
    hi = np.unravel_index(int(np.argmax(v)), v.shape)
    lo = np.unravel_index(int(np.argmin(v)), v.shape)
    picks = [(int(hi[0]), int(hi[1])), (int(lo[0]), int(lo[1])), (ny // 2, nx // 2)]
    return list(dict.fromkeys(picks))  # drop duplicates on tiny grids, keep order


def _mark_pixels(ax, m: xr.DataArray, picks: list[tuple[int, int]]) -> None:
    xs = m.coords["x"].values[[j for _, j in picks]]
    ys = m.coords["y"].values[[i for i, _ in picks]]
    ax.scatter(xs, ys, s=60, marker="s", facecolors="none",
               edgecolors=[_PIXEL_COLORS[k % len(_PIXEL_COLORS)] for k in range(len(picks))], linewidths=1.6)


def _plot_pixel_curves(ax, cube: xr.DataArray, dim: str, picks, ylabel: str) -> None:
    rows = xr.DataArray([i for i, _ in picks], dims="pick")
    cols = xr.DataArray([j for _, j in picks], dims="pick")
    curves = _computed(cube.isel(y=rows, x=cols))  # one vectorised gather for all picks
    axis = np.asarray(cube.coords[dim].values)
    for k, (i, j) in enumerate(picks):
        ax.plot(axis, np.asarray(curves.isel(pick=k).values), color=_PIXEL_COLORS[k % len(_PIXEL_COLORS)],
                lw=1.0, label=f"pixel (row {i}, col {j})")
    ax.set_xlabel(axis_label(cube, dim))
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    ax.set_title("spectra at marked pixels" if dim == "energy" else "curves at marked pixels")


def spectral_centroid(da: xr.DataArray) -> xr.DataArray:
    """Per-pixel mean energy of the (non-negative part of the) spectrum, in eV.

    It shows where spectral weight moves (edges appearing, shifting) even where the
    total counts are flat, as in a spectrum image normalised per pixel.
    """
    w = da.clip(min=0)
    total = w.sum("energy")
    c = (w * da.coords["energy"]).sum("energy") / total.where(total > 0)
    c = _computed(c)
    c.attrs = {"signal": "spectral centroid", "units": str(da.coords["energy"].attrs.get("units", "eV"))}
    return c.rename("centroid")


def plot_spectrum_image(da: xr.DataArray, *, pixels=None, title: str | None = None) -> Figure:
    """Maps of the summed signal and the spectral centroid, the summed spectrum, and spectra at a few pixels.

    Parameters
    ----------
    da : xarray.DataArray, dims ("y", "x", "energy")
        Spectrum image; energy in eV.
    pixels : sequence of (row, column), optional
        Pixels whose spectra are shown; by default those with the highest and lowest
        spectral centroid (the most different spectra) and the central one.
    """
    _check_cube(da, ("y", "x", "energy"), "plot_spectrum_image")
    signal = str(da.attrs.get("signal", "") or da.name)
    units = str(da.attrs.get("units", "") or "")
    total = _computed(da.sum("energy"))
    total.attrs = {"signal": f"summed {signal}", "units": units}
    centroid = spectral_centroid(da)
    spectrum = _computed(da.sum(("y", "x")))
    picks = _pick_pixels(centroid, pixels)
    fig = new_figure(11.0, 8.4)
    (ax_map, ax_cen), (ax_sum, ax_pix) = fig.subplots(2, 2)
    draw_image(fig, ax_map, total, cmap="inferno", title="signal summed over energy")
    draw_image(fig, ax_cen, centroid, cmap="viridis", title="spectral centroid")
    for ax in (ax_map, ax_cen):
        _mark_pixels(ax, total, picks)
    ax_sum.plot(np.asarray(da.coords["energy"].values), np.asarray(spectrum.values), color="k", lw=1.0)
    ax_sum.set_xlabel(axis_label(da, "energy"))
    ax_sum.set_ylabel(f"summed {signal} ({units})" if units else f"summed {signal}")
    ax_sum.set_title("spectrum summed over all pixels")
    _plot_pixel_curves(ax_pix, da, "energy", picks, f"{signal} ({units})" if units else signal)
    fig.suptitle(title or str(da.name))
    return fig


def didv(da: xr.DataArray) -> tuple[xr.DataArray, str]:
    """dI/dV along bias and its units; data that are already a conductance are returned unchanged."""
    units = str(da.attrs.get("units", "") or "")
    if units.strip().lower() in _CURRENT_UNITS:
        g = da.differentiate("bias")
        return g, f"{units}/V"
    return da, units


def plot_cits(da: xr.DataArray, *, bias: float | None = None, pixels=None, title: str | None = None) -> Figure:
    """Mean curve, dI/dV map at one bias, and dI/dV curves at a few pixels of a CITS grid.

    Parameters
    ----------
    da : xarray.DataArray, dims ("y", "x", "bias")
        Tunnelling current I(V) in a current unit (A, pA, ...) or already dI/dV; bias in V.
    bias : float, optional
        Sample bias (V) of the map; by default the bias where dI/dV varies most across the grid.
    pixels : sequence of (row, column), optional
        Pixels whose curves are shown; by default the highest, lowest and central one at that bias.
    """
    _check_cube(da, ("y", "x", "bias"), "plot_cits")
    b = np.asarray(da.coords["bias"].values, dtype=np.float64)
    if b.size < 2:
        raise InputError("plot_cits needs at least two bias points to show dI/dV")
    g, g_units = didv(da)
    if bias is None:
        spread = np.asarray(_computed(g.std(("y", "x"))).values, dtype=np.float64)
        k = int(np.nanargmax(np.where(np.isfinite(spread), spread, -np.inf)))
    else:
        if not np.isfinite(bias) or not (b.min() <= bias <= b.max()):
            raise InputError(f"bias {bias} V is outside the measured range {b.min():g} .. {b.max():g} V")
        k = int(np.argmin(np.abs(b - bias)))
    gmap = _computed(g.isel(bias=k))
    gmap.attrs = {"signal": "dI/dV", "units": g_units}
    picks = _pick_pixels(gmap, pixels)
    mean = _computed(da.mean(("y", "x")))
    units = str(da.attrs.get("units", "") or "")
    fig = new_figure(15.0, 4.3)
    ax_mean, ax_map, ax_pix = fig.subplots(1, 3, width_ratios=[1, 1.1, 1])
    ax_mean.plot(b, np.asarray(mean.values), color="k", lw=1.0)
    ax_mean.axvline(b[k], color="0.6", ls="--", lw=0.8)
    ax_mean.set_xlabel(axis_label(da, "bias"))
    ax_mean.set_ylabel(f"mean {da.attrs.get('signal', 'I')} ({units})" if units else "mean")
    ax_mean.set_title("mean curve over the grid")
    draw_image(fig, ax_map, gmap.drop_vars("bias"), cmap="viridis", title=f"dI/dV at {b[k]:.3g} V")
    _mark_pixels(ax_map, gmap, picks)
    _plot_pixel_curves(ax_pix, g, "bias", picks, f"dI/dV ({g_units})" if g_units else "dI/dV")
    fig.suptitle(title or str(da.name))
    return fig
