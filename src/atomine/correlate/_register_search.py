"""Coarse search of registration: footprint smoothing, Fourier-Mellin rotation, NCC template match.

Everything here works in pixel units of the moving (spectral) image; the caller
converts to nm. Private: the public entry point is :func:`atomine.correlate.registration.register`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def box_kernel(width: float) -> np.ndarray:
    """1D kernel of a box ``width`` fine pixels wide, exact for piecewise-constant pixels (sums to 1)."""
    width = max(float(width), 1.0)
    half = width / 2.0
    k = np.arange(-int(np.ceil(half + 0.5)), int(np.ceil(half + 0.5)) + 1)
    # overlap of pixel [k - 1/2, k + 1/2] with the box [-w/2, w/2]
    w = np.clip(np.minimum(k + 0.5, half) - np.maximum(k - 0.5, -half), 0.0, None)
    return w / w.sum()


def footprint_smooth(image: np.ndarray, width_y: float, width_x: float) -> np.ndarray:
    """Mean of ``image`` over a coarse pixel's footprint (``width_*`` in image pixels) centred on each pixel."""
    out = ndimage.convolve1d(image, box_kernel(width_y), axis=0, mode="nearest")
    return ndimage.convolve1d(out, box_kernel(width_x), axis=1, mode="nearest")


def _window(shape) -> np.ndarray:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1]))


def fourier_mellin_angle(moving: np.ndarray, fixed: np.ndarray) -> float:
    """Rotation (deg, counter-clockwise as displayed) of ``moving`` against ``fixed`` from log-polar magnitude spectra.

    Both images are windowed and zero-padded to a common square size so their
    spectra share one frequency sampling. The answer is ambiguous by 180 deg
    (magnitude spectra are centro-symmetric); the caller tries both.
    """
    from skimage.registration import phase_cross_correlation
    from skimage.transform import warp_polar

    n = int(2 ** np.ceil(np.log2(max(*moving.shape, *fixed.shape, 16))))
    spectra = []
    for img in (moving, fixed):
        a = (img - img.mean()) * _window(img.shape)
        f = np.abs(np.fft.fftshift(np.fft.fft2(a, s=(n, n))))
        # high-pass: the low frequencies carry the window's shape, not the content
        fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(n)), np.fft.fftshift(np.fft.fftfreq(n)), indexing="ij")
        f *= 1.0 - np.cos(np.pi * np.clip(np.hypot(fy, fx) / 0.5, 0, 1)) ** 2
        spectra.append(warp_polar(np.log1p(f), radius=n // 2, output_shape=(360, n // 2), scaling="log"))
    shift, _, _ = phase_cross_correlation(spectra[1][:, : n // 4], spectra[0][:, : n // 4], upsample_factor=10,
                                          normalization=None)
    # warp_polar's angle axis runs clockwise as displayed (y down); rows = degrees
    return float(((-shift[0]) + 180.0) % 360.0 - 180.0)


def rotated_fixed(fixed_s: np.ndarray, lin: np.ndarray, pad: tuple[int, int]):
    """Sample the footprint-smoothed fixed image on a rotated grid at the moving pitch.

    ``lin`` (2x2) takes one moving-pixel step (drow, dcol) to fixed-pixel steps
    (row, col). Returns the sampled image (outside the fixed field of view filled
    with its mean, which lowers the NCC of partial overlaps) and the grid index
    ``lo`` (row, col) of sample (0, 0).
    """
    inv = np.linalg.inv(lin)
    h, w = fixed_s.shape
    corners = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], float) @ inv.T
    lo = np.floor(corners.min(0)) - np.array(pad)
    hi = np.ceil(corners.max(0)) + np.array(pad)
    rr, cc = np.mgrid[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1]
    pos = np.einsum("ij,jab->iab", lin, np.stack([rr, cc]).astype(float))
    inside = (pos[0] >= -0.5) & (pos[0] <= h - 0.5) & (pos[1] >= -0.5) & (pos[1] <= w - 0.5)
    img = ndimage.map_coordinates(fixed_s, pos, order=1, mode="nearest")
    img[~inside] = fixed_s.mean()
    return img, lo


def ncc_surface(search: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``template`` at every fully contained position of ``search``."""
    from skimage.feature import match_template

    return match_template(search, template)


def peak_and_runner_up(surface: np.ndarray, exclusion: float) -> tuple[tuple[float, float], float, float]:
    """Sub-pixel peak (row, col) by parabola fits, its height, and the best height farther than ``exclusion`` px."""
    i, j = np.unravel_index(int(np.argmax(surface)), surface.shape)
    top = float(surface[i, j])

    def vertex(a, b, c):
        d = a - 2 * b + c
        return 0.0 if d >= 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))

    di = vertex(surface[i - 1, j], top, surface[i + 1, j]) if 0 < i < surface.shape[0] - 1 else 0.0
    dj = vertex(surface[i, j - 1], top, surface[i, j + 1]) if 0 < j < surface.shape[1] - 1 else 0.0
    rr, cc = np.ogrid[: surface.shape[0], : surface.shape[1]]
    far = (rr - i) ** 2 + (cc - j) ** 2 > exclusion**2
    # a runner-up must be a local maximum, not the shoulder of the main peak
    local_max = surface == ndimage.maximum_filter(surface, size=3)
    cand = surface[far & local_max]
    second = float(cand.max()) if cand.size else -1.0
    return (i + di, j + dj), top, second
