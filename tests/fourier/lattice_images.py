"""Synthetic lattice images with exactly known lattice vectors, for the lattice/GPA/dislocation tests."""

import numpy as np

from atomine.data import image
from atomine.simulate import crystal

A_NM = 0.3905


def basis(rotation_deg=0.0, exx=0.0, eyy=0.0, a=A_NM):
    """(A, G): A columns a1, a2 (nm) of a square lattice stretched then rotated counter-clockwise as displayed;
    G rows g1, g2 (cycles/nm) with a_i . g_j = delta_ij."""
    a_mat = crystal.rotation_matrix(rotation_deg) @ np.diag([1 + exx, 1 + eyy]) * a
    return a_mat, np.linalg.inv(a_mat)


def fringes(shape, g_rows, pixel_nm=0.02, ux=None, uy=None, noise=0.0, seed=0):
    """Image sum_i cos(2 pi g_i.(r - u)) + a weaker cross term, on a calibrated grid; u in nm on the pixel grid."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx] * pixel_nm
    if ux is not None:
        x, y = x - ux, y - uy
    g1, g2 = np.asarray(g_rows)
    s = g1 + g2
    img = (np.cos(2 * np.pi * (g1[0] * x + g1[1] * y)) + np.cos(2 * np.pi * (g2[0] * x + g2[1] * y))
           + 0.5 * np.cos(2 * np.pi * (s[0] * x + s[1] * y)))
    if noise:
        img = img + noise * np.random.default_rng(seed).normal(size=img.shape)
    return image((img + 5.0).astype(np.float32), pixel_nm)
