"""Figures of the correlation report: registration overlay, link maps with their scatter, CCA loadings.

Each function takes a :class:`~atomine.workflows.correlate.CorrelateResult` (or its parts) and
returns a ``matplotlib.figure.Figure`` with physical axes (nm), titles and labelled colour bars.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from ..data import axis_scale
from ._draw import axis_label, draw_image, extent, new_figure, robust_limits

_OUTLINE = "#ffd21f"
# The overlay resamples the registered ADF onto the image grid; a grid this long on its side is enough to
# see a misalignment of a fraction of a spectral pixel (spectral pixels are several image pixels wide).
_OVERLAY_MAX_PX = 512
_HEXBIN_ABOVE = 3000  # pixels: above this a scatter becomes a density plot


def pixel_size(da: xr.DataArray) -> float:
    """Spectral pixel pitch (nm, the x step; 1.0 for a single column)."""
    return float(abs(axis_scale(da, "x"))) if da.sizes["x"] > 1 else 1.0


def field_outline(grid: xr.DataArray, transform) -> tuple[np.ndarray, np.ndarray]:
    """Image-frame (x, y) in nm of the spectral grid's outer pixel edges (closed polygon of 5 points)."""
    x0, x1, y1, y0 = extent(grid)  # extent puts y reversed for imshow
    xs = np.array([x0, x1, x1, x0, x0])
    ys = np.array([y0, y0, y1, y1, y0])
    return transform(xs, ys)


def calibrated(da: xr.DataArray, like: xr.DataArray | None = None) -> xr.DataArray:
    """``da`` with length units on its y/x coordinates (taken from ``like``, else nm: the workflow's
    descriptor grids are in nm) and the dimensionless unit ``1`` written as ``unitless``."""
    coords = {}
    for d in ("y", "x"):
        if d in da.coords and not da.coords[d].attrs.get("units"):
            ref = like.coords[d].attrs if like is not None and d in like.coords else {}
            coords[d] = da.coords[d].copy(data=da.coords[d].values)
            coords[d].attrs = {**ref, "units": ref.get("units") or "nm"}
    out = da.assign_coords(coords) if coords else da.copy(deep=False)
    if str(out.attrs.get("units", "")) in ("1", ""):
        out.attrs = {**out.attrs, "units": "unitless"}
    return out


def _unit(values: np.ndarray) -> np.ndarray:
    lo, hi = robust_limits(values, robust=True) if np.isfinite(values).any() else (0.0, 1.0)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def registration_figure(result):
    """Left: the image with the spectrum image's field of view; right: red/cyan composite of the image
    (smoothed to the spectral pixel) and the registered simultaneous channel."""
    from ..correlate import to_image

    image = result.image
    stride = max(1, int(np.ceil(max(image.sizes["y"], image.sizes["x"]) / _OVERLAY_MAX_PX)))
    shown = image.isel(y=slice(None, None, stride), x=slice(None, None, stride))
    grid = result.adf if result.adf is not None else next(iter(result.spectra.data_vars.values()))
    ox, oy = field_outline(grid, result.transform)
    fig = new_figure(10.4, 4.4)
    ax_img, ax_mix = fig.subplots(1, 2)
    draw_image(fig, ax_img, shown, title=f"{image.name or 'image'} and the spectral field of view")
    ax_img.plot(ox, oy, "-", color=_OUTLINE, lw=1.4, label="spectrum image field of view")
    # mark the spectral frame's first pixel so a flip or a 180 deg turn would show
    cx, cy = result.transform(*(np.asarray(grid.coords[d].values[0], float) for d in ("x", "y")))
    ax_img.plot([cx], [cy], "o", color=_OUTLINE, ms=4, label="spectral pixel (0, 0)")
    ax_img.legend(loc="upper right", fontsize=7, framealpha=0.8)
    _limits(ax_img, shown, ox, oy)
    if result.adf is None:
        ax_mix.set_axis_off()
        ax_mix.set_title("no simultaneous channel to overlay")
        return fig
    reg = to_image(result.adf, result.transform, shown)
    values = np.asarray(shown.values, dtype=np.float64)
    sigma = pixel_size(result.adf) / max(abs(axis_scale(shown, "x")), 1e-12) / 2.0
    smooth = ndimage.gaussian_filter(values, sigma) if sigma > 0.5 else values
    inside = np.isfinite(reg.values)
    red = _unit(np.where(inside, smooth, np.nan)) if inside.any() else _unit(smooth)
    red = np.where(np.isfinite(red), red, _unit(smooth))
    cyan = np.where(inside, _unit(np.asarray(reg.values, dtype=np.float64)), 0.0)
    rgb = np.stack([red, cyan, cyan], axis=-1)
    ax_mix.imshow(rgb, extent=extent(shown), origin="upper", interpolation="nearest")
    ax_mix.plot(ox, oy, "-", color="white", lw=0.8)
    ax_mix.set_xlabel(axis_label(shown, "x"))
    ax_mix.set_ylabel(axis_label(shown, "y"))
    ax_mix.set_aspect("equal")
    ax_mix.set_title(f"red: {image.name or 'image'} (smoothed), cyan: registered {result.adf.name or 'ADF'}")
    _limits(ax_mix, shown, ox, oy)
    return fig


def _limits(ax, da, ox, oy) -> None:
    """Show the whole image and the whole outline (a field of view partly outside the image stays visible)."""
    x0, x1, y1, y0 = extent(da)
    ax.set_xlim(min(x0, ox.min()), max(x1, ox.max()))
    ax.set_ylim(max(y1, oy.max()), min(y0, oy.min()))


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return None
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    return float(slope), float(intercept)


def _label(da: xr.DataArray, name: str) -> str:
    units = str(da.attrs.get("units", "") or "")
    return f"{name} ({'unitless' if units in ('', '1') else units})"


def link_figure(structure: xr.DataArray, prop: xr.DataArray, row: dict, like: xr.DataArray | None = None):
    """The structure map and the property map on the spectral grid, and property vs structure per pixel
    (``like``: a map whose y/x coordinates carry the grid's length units)."""
    structure, prop = calibrated(structure, like), calibrated(prop, like)
    s_name, p_name = str(row["structure"]), str(row["property"])
    fig = new_figure(12.6, 3.7)
    ax_s, ax_p, ax_xy = fig.subplots(1, 3, width_ratios=(1, 1, 1.05))
    for ax, da, name, cmap in ((ax_s, structure, s_name, "viridis"), (ax_p, prop, p_name, "magma")):
        title = str(da.attrs.get("long_name") or name)
        draw_image(fig, ax, da.rename(name), cmap=cmap, robust=True, colorbar_label=_label(da, name))
        ax.set_title(name if title == name else f"{name}:\n{title[:48]}", fontsize="small")
    x = np.asarray(structure.values, dtype=np.float64).ravel()
    y = np.asarray(prop.values, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() > _HEXBIN_ABOVE:
        ax_xy.hexbin(x[ok], y[ok], gridsize=40, cmap="Greys", mincnt=1)
    else:
        ax_xy.plot(x[ok], y[ok], ".", ms=3, alpha=max(0.15, min(0.8, 300.0 / max(ok.sum(), 1))), color="#1f5f99")
    fit = _ols(x, y)
    if fit is not None:
        xl = np.array([np.min(x[ok]), np.max(x[ok])])
        ax_xy.plot(xl, fit[1] + fit[0] * xl, "-", color="#d62728", lw=1.4, label=f"OLS slope {fit[0]:.3g}")
        ax_xy.legend(fontsize=7, loc="best")
    ax_xy.set_xlabel(_label(structure, s_name))
    ax_xy.set_ylabel(_label(prop, p_name))
    ax_xy.set_title(f"r = {row['r']:.3f}, q = {row['q']:.2g}, CV R2 = {row['cv_r2']:.2f} ({int(ok.sum())} px)",
                    fontsize="medium")
    return fig


def cca_figure(cca: dict):
    """Loadings of the first canonical pair: structural and spectral descriptors."""
    xl, yl = cca.get("x_loadings", {}), cca.get("y_loadings", {})
    n = max(len(xl), len(yl), 1)
    fig = new_figure(10.0, 0.25 * n + 1.5)
    axes = fig.subplots(1, 2)
    for ax, load, what, color in ((axes[0], xl, "structural", "#1f77b4"), (axes[1], yl, "spectral", "#d62728")):
        names = list(load)
        vals = np.array([load[k] for k in names], dtype=float)
        yy = np.arange(len(names))
        ax.barh(yy, vals, color=color)
        ax.set_yticks(yy, names, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="0.3", lw=0.6)
        ax.set_xlabel("loading (correlation with the canonical variate)")
        ax.set_title(f"{what} descriptors", fontsize="medium")
    fig.suptitle(f"first canonical pair: r = {cca.get('r', np.nan):.3f}, block-CV r = {cca.get('cv_r', np.nan):.3f}")
    return fig


def descriptor_figure(ds: xr.Dataset, title: str, *, like: xr.DataArray | None = None, ncols: int = 4):
    """Every (y, x) descriptor of ``ds`` as a small calibrated panel with its units."""
    from .figures import plot_maps

    maps = []
    for name, da in ds.data_vars.items():
        m = calibrated(da.transpose("y", "x").rename(str(name)), like)
        if not np.isfinite(np.asarray(m.values, dtype=np.float64)).any():
            continue  # nothing to draw (the links table notes excluded descriptors)
        maps.append(m)
    if not maps:
        return None
    return plot_maps(maps, title=title, ncols=ncols)


__all__ = ["calibrated", "cca_figure", "descriptor_figure", "field_outline", "link_figure", "pixel_size", "registration_figure"]
