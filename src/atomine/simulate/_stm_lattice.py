"""Geometry of the square perovskite (001) surface lattice and rendering of Gaussian features on it.

Lattice vectors, counter-clockwise as displayed (y grows downward) by ``rotation_deg``:
``a1 = a (cos t, -sin t)``, ``a2 = a (sin t, cos t)``. Site (i, j) of a species with
fractional offset (ou, ov) sits at ``origin + (j + ou) a1 + (i + ov) a2``; the
fractional coordinates of a point are (u, v) along (a1, a2) in units of a, relative
to ``origin``. Because a1 and a2 are orthogonal and of equal length, the distance
between two points is ``a * hypot(du, dv)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Fractional offsets (along a1, a2) of each species relative to the B (Mn) site of the same cell.
OFFSETS: dict[str, tuple[float, float]] = {"Mn": (0.0, 0.0), "O1": (0.5, 0.0), "O2": (0.0, 0.5), "A": (0.5, 0.5)}

# Gaussians are summed out to this many standard deviations (relative tail < 4e-6).
TRUNCATE_SIGMAS = 5.0


@dataclass(frozen=True)
class SurfaceLattice:
    """A finite square lattice of n_i x n_j cells placed in the image frame (nm)."""

    a: float
    rotation_deg: float
    origin: tuple[float, float]  # (x, y) of Mn(0, 0), nm
    n_i: int
    n_j: int

    @property
    def a1(self) -> np.ndarray:
        t = np.deg2rad(self.rotation_deg)
        return self.a * np.array([np.cos(t), -np.sin(t)])

    @property
    def a2(self) -> np.ndarray:
        t = np.deg2rad(self.rotation_deg)
        return self.a * np.array([np.sin(t), np.cos(t)])

    def to_frac(self, x, y):
        """Fractional lattice coordinates (u, v) of image-frame points (x, y) in nm."""
        dx = np.asarray(x, dtype=np.float64) - self.origin[0]
        dy = np.asarray(y, dtype=np.float64) - self.origin[1]
        a1, a2 = self.a1, self.a2
        return (dx * a1[0] + dy * a1[1]) / self.a**2, (dx * a2[0] + dy * a2[1]) / self.a**2

    def positions(self, species: str):
        """(site_i, site_j, x, y) of every site of ``species``, row-major over (i, j)."""
        ou, ov = OFFSETS[species]
        i, j = np.meshgrid(np.arange(self.n_i), np.arange(self.n_j), indexing="ij")
        i, j = i.ravel(), j.ravel()
        a1, a2 = self.a1, self.a2
        x = self.origin[0] + (j + ou) * a1[0] + (i + ov) * a2[0]
        y = self.origin[1] + (j + ou) * a1[1] + (i + ov) * a2[1]
        return i, j, x, y

    def usable_range(self, species_sigmas: dict[str, float]) -> tuple[float, float, float, float]:
        """(u_lo, u_hi, v_lo, v_hi): points inside are farther than the truncation radius from any missing site.

        Sites exist for indices 0..n-1 only; a point closer than ``TRUNCATE_SIGMAS * sigma``
        to index -1 or n of a species would miss that neighbour's tail.
        """
        u_lo = v_lo = -np.inf
        u_hi = v_hi = np.inf
        for name, sigma in species_sigmas.items():
            ou, ov = OFFSETS[name]
            r = TRUNCATE_SIGMAS * sigma / self.a
            u_lo, u_hi = max(u_lo, ou - 1 + r), min(u_hi, ou + self.n_j - r)
            v_lo, v_hi = max(v_lo, ov - 1 + r), min(v_hi, ov + self.n_i - r)
        return u_lo, u_hi, v_lo, v_hi


def blurred(amplitude, sigma: float, tip_sigma: float):
    """Amplitude and width of a 2-D Gaussian feature after convolution with a unit-area Gaussian tip.

    ``h exp(-r^2 / 2 s^2)`` convolved with the tip of width t is
    ``h s^2 / (s^2 + t^2) exp(-r^2 / 2 (s^2 + t^2))``.
    """
    s2 = sigma**2 + tip_sigma**2
    return amplitude * sigma**2 / s2, float(np.sqrt(s2))


def render(u, v, lattice: SurfaceLattice, species: str, amplitude, sigma: float) -> np.ndarray:
    """Sum of Gaussians ``amplitude * exp(-d^2 / 2 sigma^2)`` of one species, evaluated at (u, v).

    Parameters
    ----------
    u, v : numpy.ndarray of float64
        Fractional coordinates of the evaluation points (any shape).
    lattice : SurfaceLattice
    species : str
        Key of :data:`OFFSETS`.
    amplitude : float or numpy.ndarray, shape (n_i, n_j)
        Height of each site's Gaussian (nm); an array gives per-site heights (dopants).
    sigma : float
        Gaussian standard deviation (nm).

    Notes
    -----
    Each point sums the (2K+1)^2 sites around its nearest one, K covering the truncation
    radius. The Gaussian factorises along a1 and a2, so a uniform species is the product
    of two 1-D sums and a per-site species needs one gather per neighbour offset; the
    loop runs over offsets, never over points or sites.
    """
    ou, ov = OFFSETS[species]
    uu, vv = u - ou, v - ov
    k = int(np.ceil(TRUNCATE_SIGMAS * sigma / lattice.a + 0.5))
    # Nearest site, clipped so far-away points still index a (zero-padded) box of real width.
    j0 = np.clip(np.rint(uu).astype(np.int64), -k, lattice.n_j - 1 + k)
    i0 = np.clip(np.rint(vv).astype(np.int64), -k, lattice.n_i - 1 + k)
    c = lattice.a**2 / (2.0 * sigma**2)
    offs = range(-k, k + 1)
    # Sites outside 0..n-1 do not exist: zero their factor.
    ex = [np.exp(-c * (uu - (j0 + d)) ** 2) * ((j0 + d >= 0) & (j0 + d < lattice.n_j)) for d in offs]
    ey = [np.exp(-c * (vv - (i0 + d)) ** 2) * ((i0 + d >= 0) & (i0 + d < lattice.n_i)) for d in offs]
    if np.ndim(amplitude) == 0:
        return float(amplitude) * np.sum(ex, axis=0) * np.sum(ey, axis=0)
    pad = 2 * k
    amp = np.pad(np.asarray(amplitude, dtype=np.float64), pad).ravel()
    width = lattice.n_j + 2 * pad
    base = (i0 + pad) * width + (j0 + pad)
    out = np.zeros(np.shape(u))
    for di, fy in zip(offs, ey):
        row = np.zeros(np.shape(u))
        for dj, fx in zip(offs, ex):
            row += amp.take(base + (di * width + dj)) * fx
        out += row * fy
    return out
