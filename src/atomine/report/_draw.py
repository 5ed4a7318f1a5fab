"""Drawing helpers shared by the figure functions: calibrated image display, scale bar, labels.

Figures are built with ``matplotlib.figure.Figure`` directly (rendered by Agg when
saved), never through pyplot, so no global backend state is touched.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ..data import axis_scale, axis_units
from ..errors import InputError

# Images larger than this (pixels on the long side) are shown strided: a report figure
# is ~500 px wide, and reading a whole large (possibly lazy) image only to shrink it is waste.
MAX_DISPLAY_PX = 1024


def new_figure(width_in: float, height_in: float) -> Figure:
    return Figure(figsize=(width_in, height_in), layout="constrained")


def axis_label(da: xr.DataArray, dim: str) -> str:
    """``"x (nm)"``-style label from the coordinate's long name (or dim) and units."""
    name = dim
    if dim in da.coords:
        name = str(da.coords[dim].attrs.get("long_name", dim))
    units = axis_units(da, dim)
    return f"{name} ({units})" if units else name


def value_label(da: xr.DataArray, what: str | None = None) -> str:
    """Colour-bar / y-axis label: signal name and value units."""
    name = what or str(da.attrs.get("signal") or da.name or "value")
    units = str(da.attrs.get("units", "") or "")
    return f"{name} ({units})" if units else name


def check_image_like(da, what: str) -> None:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} needs an xarray.DataArray, got {type(da).__name__}")
    if tuple(da.dims) != ("y", "x"):
        raise InputError(f"{what} needs dims ('y', 'x'), got {tuple(da.dims)}")
    if da.size == 0:
        raise InputError(f"{what}: the image is empty")


def display_values(da: xr.DataArray) -> tuple[np.ndarray, int]:
    """The (y, x) values to draw, strided so the long side is at most MAX_DISPLAY_PX; and the stride."""
    stride = max(1, math.ceil(max(da.sizes["y"], da.sizes["x"]) / MAX_DISPLAY_PX))
    sub = da.isel(y=slice(None, None, stride), x=slice(None, None, stride))
    values = np.asarray(sub.data if not hasattr(sub.data, "compute") else sub.data.compute(), dtype=np.float32)
    if not np.isfinite(values).any():
        raise InputError(f"{da.name}: no finite values to show")
    return values, stride


def extent(da: xr.DataArray) -> tuple[float, float, float, float]:
    """imshow extent so pixel centres sit on their coordinates (y grows downward)."""
    x, y = (np.asarray(da.coords[d].values, dtype=np.float64) if d in da.coords else np.arange(da.sizes[d], dtype=float)
            for d in ("x", "y"))
    dx = axis_scale(da, "x") if x.size > 1 else 1.0
    dy = axis_scale(da, "y") if y.size > 1 else 1.0
    return (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2)


def robust_limits(values: np.ndarray, robust: bool) -> tuple[float, float]:
    """Colour limits: 0.5-99.5 percentiles when ``robust`` (hot pixels do not wash out the image)."""
    finite = values[np.isfinite(values)]
    if robust:
        lo, hi = np.percentile(finite, [0.5, 99.5])
    else:
        lo, hi = finite.min(), finite.max()
    if hi <= lo:  # a flat image still needs a non-degenerate colour range
        hi = lo + (abs(lo) * 1e-6 or 1.0)
    return float(lo), float(hi)


def nice_length(span: float) -> float:
    """A 1-2-5 round length close to a fifth of ``span``."""
    target = abs(span) / 5.0
    if not np.isfinite(target) or target <= 0:
        return 1.0
    exp = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10**exp <= target:
            return m * 10**exp
    return 10**exp


def add_scale_bar(ax, da: xr.DataArray, color: str = "white") -> None:
    """A labelled scale bar in the lower right, in the x axis' units."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    x0, x1, y0, y1 = extent(da)
    length = nice_length(x1 - x0)
    units = axis_units(da, "x") or "px"
    bar = AnchoredSizeBar(ax.transData, length, f"{length:g} {units}", "lower right", pad=0.4, color=color,
                          frameon=False, size_vertical=0.012 * abs(y1 - y0), label_top=True)
    ax.add_artist(bar)


def draw_image(fig: Figure, ax, da: xr.DataArray, *, cmap: str = "gray", robust: bool = True,
               scalebar: bool = True, colorbar_label: str | None = None, title: str | None = None):
    """Draw a (y, x) DataArray on ``ax`` with calibrated axes, colour bar and scale bar; returns the image."""
    values, _ = display_values(da)
    vmin, vmax = robust_limits(values, robust)
    im = ax.imshow(values, extent=extent(da), origin="upper", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xlabel(axis_label(da, "x"))
    ax.set_ylabel(axis_label(da, "y"))
    ax.set_aspect("equal")
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.set_label(colorbar_label or value_label(da))
    if scalebar:
        add_scale_bar(ax, da, color="white" if cmap in ("gray", "inferno", "magma", "viridis", "cividis") else "black")
    if title:
        ax.set_title(title)
    return im
