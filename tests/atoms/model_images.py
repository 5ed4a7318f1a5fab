"""Images made exactly of the fitting model: Gaussian columns + constant background, Poisson counts.

Per pixel (i, j), centred at (x, y) = (j, i) px, the expected counts are

    N_inc b + sum_k I_k / (2 pi s_k^2) exp(-((x - x_k)^2 + (y - y_k)^2) / (2 s_k^2))

with N_inc = dose x pixel area the incident electrons per pixel, b the detected background
fraction and I_k = dose x cross-section the column's integrated counts (the Gaussian is
sampled at pixel centres, exactly as atomine's fit models it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NM2_PER_A2 = 0.01


def render(shape, x_px, y_px, integrated, sigma_px, background):
    """Expected counts per pixel of isotropic Gaussian columns on a constant background."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    out = np.full(shape, float(background))
    for x, y, n, s in zip(x_px, y_px, integrated, sigma_px):
        r = int(np.ceil(7 * s))
        i0, i1 = max(0, int(y) - r), min(ny, int(y) + r + 2)
        j0, j1 = max(0, int(x) - r), min(nx, int(x) + r + 2)
        d2 = (xx[i0:i1, j0:j1] - x) ** 2 + (yy[i0:i1, j0:j1] - y) ** 2
        out[i0:i1, j0:j1] += n / (2 * np.pi * s * s) * np.exp(-0.5 * d2 / (s * s))
    return out


def gaussian_lattice(dose_e_per_A2: float, *, shape=(512, 512), pixel_size_nm: float = 0.02,
                     spacing_nm: float = 0.3, sigma_nm: float = 0.04, cross_section_nm2: float = 1e-3,
                     background_fraction: float = 0.02, seed: int = 0):
    """A square lattice of identical columns, each displaced by a random sub-pixel offset.

    Returns
    -------
    counts : ndarray (float64)
        Poisson-sampled image.
    truth : DataFrame
        ``x_px``, ``y_px``, ``integrated`` (counts), ``sigma_px``, ``amplitude`` (peak counts
        above background), ``background`` (counts per pixel) of every column inside the image.
    """
    rng = np.random.default_rng(seed)
    a = spacing_nm / pixel_size_nm
    ny, nx = shape
    jj, ii = np.meshgrid(np.arange(a / 2, nx - a / 4, a), np.arange(a / 2, ny - a / 4, a))
    x = jj.ravel() + rng.uniform(-0.5, 0.5, jj.size)
    y = ii.ravel() + rng.uniform(-0.5, 0.5, ii.size)
    dose_nm2 = dose_e_per_A2 / NM2_PER_A2
    incident = dose_nm2 * pixel_size_nm ** 2
    n = np.full(x.size, dose_nm2 * cross_section_nm2)
    s = np.full(x.size, sigma_nm / pixel_size_nm)
    expected = render(shape, x, y, n, s, incident * background_fraction)
    counts = rng.poisson(expected).astype(np.float64)
    truth = pd.DataFrame({"x_px": x, "y_px": y, "integrated": n, "sigma_px": s,
                          "amplitude": n / (2 * np.pi * s * s), "background": incident * background_fraction})
    return counts, truth


def pair_image(separation_px: float, ratio: float, *, integrated: float = 2e4, sigma_px: float = 1.75,
               background: float = 20.0, shape=(64, 64), angle_rad: float = 0.3, seed: int = 0):
    """Two columns (integrated counts ``integrated`` and ``ratio * integrated``) at a given distance.

    Returns the Poisson image and the truth table (``x_px``, ``y_px``, ``integrated``).
    """
    rng = np.random.default_rng(seed)
    cy, cx = shape[0] / 2 + 0.23, shape[1] / 2 - 0.41
    dx, dy = 0.5 * separation_px * np.cos(angle_rad), 0.5 * separation_px * np.sin(angle_rad)
    x = np.array([cx - dx, cx + dx])
    y = np.array([cy - dy, cy + dy])
    n = np.array([integrated, ratio * integrated])
    expected = render(shape, x, y, n, [sigma_px, sigma_px], background)
    return rng.poisson(expected).astype(np.float64), pd.DataFrame({"x_px": x, "y_px": y, "integrated": n})


def crb_position(truth: pd.DataFrame, shape, radius_px: float, noise_var=None) -> np.ndarray:
    """Cramer-Rao bound (px) of (x, y) for each column of a :func:`gaussian_lattice` image.

    Fisher information of the Poisson likelihood, F = sum_pixels grad(m) grad(m)^T / m (or, with
    ``noise_var``, of additive Gaussian noise of that variance: F = sum grad(m) grad(m)^T / var), of
    (x0, y0, amplitude, sigma, background) at the true values, over the pixels within
    ``radius_px`` of the column (its neighbours' tails there are part of m). Written here
    independently of atomine's fitting code.
    """
    ny, nx = shape
    out = np.empty((len(truth), 2))
    r = int(np.ceil(radius_px)) + 1
    for k, row in enumerate(truth.itertuples()):
        i0, i1 = max(0, int(row.y_px) - r), min(ny, int(row.y_px) + r + 2)
        j0, j1 = max(0, int(row.x_px) - r), min(nx, int(row.x_px) + r + 2)
        yy, xx = np.mgrid[i0:i1, j0:j1].astype(np.float64)
        inside = (xx - row.x_px) ** 2 + (yy - row.y_px) ** 2 <= radius_px ** 2
        xx, yy = xx[inside], yy[inside]
        dx, dy = xx - row.x_px, yy - row.y_px
        s, amp = row.sigma_px, row.amplitude
        g = np.exp(-0.5 * (dx ** 2 + dy ** 2) / s ** 2)
        m = row.background + amp * g
        grads = np.stack([amp * g * dx / s ** 2, amp * g * dy / s ** 2, g,
                          amp * g * (dx ** 2 + dy ** 2) / s ** 3, np.ones_like(g)])
        fisher = (grads / (m if noise_var is None else noise_var)) @ grads.T
        cov = np.linalg.inv(fisher)
        out[k] = np.sqrt([cov[0, 0], cov[1, 1]])
    return out
