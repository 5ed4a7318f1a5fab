"""The finite STEM probe and the rendering of atom columns through it.

The probe intensity is a normalised sum of isotropic Gaussians (a core plus an
optional broad tail). Each column's signal is spread by the probe, evaluated
analytically at every pixel's sampled specimen position, so sub-pixel column
positions and per-line scan shifts are rendered exactly (nothing is rounded to
the pixel grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf

from ..errors import InputError
from . import _stem_checks as check

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
# Patches extend to this many standard deviations: the Gaussian mass left out is
# exp(-N^2/2) ~ 4e-6, far below any shot noise.
_N_SIGMA = 5.0


@dataclass(frozen=True)
class Probe:
    """Probe intensity profile: a Gaussian core plus an optional Gaussian tail, integral 1.

    Parameters
    ----------
    fwhm_nm : float
        Full width at half maximum of the core, nm.
    tail_fraction : float
        Fraction of the probe intensity in the tail, in [0, 1).
    tail_fwhm_nm : float
        FWHM of the tail, nm; must exceed ``fwhm_nm``.
    """

    fwhm_nm: float = 0.09
    tail_fraction: float = 0.0
    tail_fwhm_nm: float = 0.3

    def __post_init__(self):
        object.__setattr__(self, "fwhm_nm", check.positive("probe_fwhm_nm", self.fwhm_nm))
        object.__setattr__(self, "tail_fraction", check.fraction("probe_tail_fraction", self.tail_fraction, closed=False))
        object.__setattr__(self, "tail_fwhm_nm", check.positive("probe_tail_fwhm_nm", self.tail_fwhm_nm))
        if self.tail_fraction > 0 and self.tail_fwhm_nm <= self.fwhm_nm:
            raise InputError(f"probe_tail_fwhm_nm ({self.tail_fwhm_nm}) must exceed probe_fwhm_nm ({self.fwhm_nm})")

    def components(self) -> list[tuple[float, float]]:
        """(weight, sigma_nm) of each Gaussian; weights sum to 1; the core comes first."""
        out = [(1.0 - self.tail_fraction, self.fwhm_nm / _FWHM_PER_SIGMA)]
        if self.tail_fraction > 0:
            out.append((self.tail_fraction, self.tail_fwhm_nm / _FWHM_PER_SIGMA))
        return out

    @property
    def sigma_nm(self) -> float:
        """Standard deviation of the core, nm."""
        return self.components()[0][1]

    def intensity(self, r_nm) -> np.ndarray:
        """Probe intensity per nm^2 at distance ``r_nm`` from its centre."""
        r2 = np.asarray(r_nm, dtype=np.float64) ** 2
        return sum(w / (2 * np.pi * s**2) * np.exp(-r2 / (2 * s**2)) for w, s in self.components())

    def encircled(self, radius_nm) -> np.ndarray:
        """Fraction of the probe intensity within ``radius_nm`` of its centre."""
        r2 = np.asarray(radius_nm, dtype=np.float64) ** 2
        return sum(w * (1 - np.exp(-r2 / (2 * s**2))) for w, s in self.components())

    def in_rectangle(self, x_nm, y_nm, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Fraction of a probe centred at (x, y) falling inside [x0, x1] x [y0, y1] (nm)."""
        x = np.asarray(x_nm, dtype=np.float64)
        y = np.asarray(y_nm, dtype=np.float64)
        out = 0.0
        for w, s in self.components():
            k = np.sqrt(2) * s
            fx = 0.5 * (erf((x1 - x) / k) - erf((x0 - x) / k))
            fy = 0.5 * (erf((y1 - y) / k) - erf((y0 - y) / k))
            out = out + w * fx * fy
        return out

    def describe(self) -> dict[str, Any]:
        return {"model": "gaussian core + gaussian tail", "fwhm_nm": self.fwhm_nm,
                "tail_fraction": self.tail_fraction, "tail_fwhm_nm": self.tail_fwhm_nm}


def apparent_rows(y_px: np.ndarray, sampled_y_px: np.ndarray) -> np.ndarray:
    """The (fractional) scan row at which each specimen height ``y_px`` is sampled.

    ``sampled_y_px[r]`` is the specimen y (in ideal pixel units) that row r sees; it must
    increase with r. Outside the scanned range the first / last step is extrapolated
    linearly (the drift goes on at the same rate).
    """
    rows = np.arange(sampled_y_px.size, dtype=np.float64)
    out = np.interp(y_px, sampled_y_px, rows)
    first = sampled_y_px[1] - sampled_y_px[0] if sampled_y_px.size > 1 else 1.0
    last = sampled_y_px[-1] - sampled_y_px[-2] if sampled_y_px.size > 1 else 1.0
    below, above = y_px < sampled_y_px[0], y_px > sampled_y_px[-1]
    out[below] = rows[0] + (y_px[below] - sampled_y_px[0]) / first
    out[above] = rows[-1] + (y_px[above] - sampled_y_px[-1]) / last
    return out


def render_columns(amplitude, x_px, y_px, shape: tuple[int, int], probe: Probe, pixel_size_nm: float,
                   shift_x_px=None, shift_y_px=None, max_patch_elements: int = 1_000_000) -> np.ndarray:
    """Sum of probe-spread columns sampled on a (distorted) scan grid.

    Pixel (r, c) samples the specimen at (c - shift_x_px[r], r - shift_y_px[r]) in ideal
    pixel units, so a column appears displaced by +shift. Each column contributes
    ``amplitude`` x probe, so its total over an unbounded image equals ``amplitude``.

    Parameters
    ----------
    amplitude : ndarray, shape (n,)
        Integrated signal of each column (counts).
    x_px, y_px : ndarray, shape (n,)
        Column positions in ideal pixel units (sub-pixel).
    shape : (int, int)
        Image shape (ny, nx).
    probe : Probe
    pixel_size_nm : float
    shift_x_px, shift_y_px : ndarray, shape (ny,), optional
        Apparent image shift of each scan row, pixels.
    max_patch_elements : int
        Bounds the memory of one batch of patches.

    Returns
    -------
    ndarray of float64, shape (ny, nx)
    """
    ny, nx = shape
    amplitude = np.asarray(amplitude, dtype=np.float64)
    x_px = np.asarray(x_px, dtype=np.float64)
    y_px = np.asarray(y_px, dtype=np.float64)
    sx = np.zeros(ny) if shift_x_px is None else np.asarray(shift_x_px, dtype=np.float64)
    sy = np.zeros(ny) if shift_y_px is None else np.asarray(shift_y_px, dtype=np.float64)
    sampled_y = np.arange(ny) - sy
    r_app = apparent_rows(y_px, sampled_y)
    image = np.zeros(ny * nx)
    for weight, sigma_nm in probe.components():  # one or two Gaussians
        s = sigma_nm / pixel_size_nm
        half = int(np.ceil(_N_SIGMA * s)) + 1
        offsets = np.arange(-half, half + 1)
        m = offsets.size
        # columns whose patch cannot reach the image contribute nothing
        reach = (amplitude != 0) & (r_app > -half - 1) & (r_app < ny + half) \
            & (x_px + sx.max() > -half - 1) & (x_px + sx.min() < nx + half)
        idx_all = np.flatnonzero(reach)
        batch = max(1, max_patch_elements // (m * m))
        norm = weight / (2 * np.pi * s**2)
        for start in range(0, idx_all.size, batch):  # batches of columns bound the memory
            k = idx_all[start:start + batch]
            rows = np.rint(r_app[k])[:, None].astype(np.int64) + offsets
            rows_c = np.clip(rows, 0, ny - 1)
            gy = np.exp(-((sampled_y[rows_c] - y_px[k, None]) ** 2) / (2 * s * s)) * (rows == rows_c)
            shift = sx[rows_c]
            cols = np.rint(x_px[k, None] + shift).astype(np.int64)[..., None] + offsets
            gx = np.exp(-((cols - shift[..., None] - x_px[k, None, None]) ** 2) / (2 * s * s))
            values = (amplitude[k] * norm)[:, None, None] * gy[..., None] * gx
            ok = (cols >= 0) & (cols < nx) & (rows == rows_c)[..., None]
            flat = rows_c[..., None] * nx + cols
            image += np.bincount(flat[ok], weights=values[ok], minlength=ny * nx)
    return image.reshape(ny, nx)


def apparent_positions(x_px, y_px, shape: tuple[int, int], probe: Probe, pixel_size_nm: float,
                       shift_x_px=None, shift_y_px=None) -> tuple[np.ndarray, np.ndarray]:
    """Where each column appears in the distorted image, pixels.

    The row is where the scan samples the column's height. The column coordinate is the
    column's x plus the row shifts averaged over the rows the column spans with weights
    g(r)^2, g being the probe core's row profile: to first order in the shifts this is the
    centre a least-squares Gaussian peak fit finds under per-line jitter. Columns wholly
    outside the scanned rows take the shift of the nearest row.
    """
    ny, _ = shape
    x_px = np.asarray(x_px, dtype=np.float64)
    y_px = np.asarray(y_px, dtype=np.float64)
    sx = np.zeros(ny) if shift_x_px is None else np.asarray(shift_x_px, dtype=np.float64)
    sy = np.zeros(ny) if shift_y_px is None else np.asarray(shift_y_px, dtype=np.float64)
    sampled_y = np.arange(ny) - sy
    r_app = apparent_rows(y_px, sampled_y)
    s = probe.sigma_nm / pixel_size_nm
    half = int(np.ceil(_N_SIGMA * s)) + 1
    rows = np.rint(r_app)[:, None].astype(np.int64) + np.arange(-half, half + 1)
    rows_c = np.clip(rows, 0, ny - 1)
    w = np.exp(-((sampled_y[rows_c] - y_px[:, None]) ** 2) / (s * s)) * (rows == rows_c)
    total = w.sum(axis=1)
    nearest = sx[np.clip(np.rint(r_app).astype(np.int64), 0, ny - 1)]
    mean_shift = np.where(total > 0, (w * sx[rows_c]).sum(axis=1) / np.where(total > 0, total, 1), nearest)
    return x_px + mean_shift, r_app


__all__ = ["Probe", "apparent_positions", "apparent_rows", "render_columns"]
