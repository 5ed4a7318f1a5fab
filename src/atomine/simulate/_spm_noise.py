"""Scanning-probe artefacts: 1/f (pink) noise, scan-line offsets and piezo drift.

Scan model used throughout: a raster with the fast axis along +x (left to right)
and the slow axis along +y (top to bottom); retrace time is neglected, so the
pixel at (row i, column j) of an (ny, nx) frame is recorded at the frame-time
fraction ``s = (i + j / nx) / ny`` in [0, 1).

Drift is the *apparent* displacement of the surface in the image at scan time
``s``: a feature at true position r shows up at r + d(s). A linear term models
thermal drift; an exponentially relaxing term models piezo creep after the
coarse move that preceded the frame.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

# Fixed-point iterations for the apparent positions under drift. Each iteration shrinks the
# error by |d d/d p| (drift change per nm of scan path), which is << 1 for any usable image.
_DRIFT_ITERATIONS = 30


def _standardise(a: np.ndarray) -> np.ndarray:
    a = a - a.mean()
    std = a.std()
    # A constant field (e.g. a single line) has no fluctuation to scale: keep it zero.
    return a / std if std > 0 else np.zeros_like(a)


def pink_noise(shape: tuple[int, int], exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-standard-deviation 2-D noise with power spectrum ``|k|**-exponent``.

    Parameters
    ----------
    shape : (int, int)
        Image shape (ny, nx).
    exponent : float
        Spectral exponent beta of the radially averaged power spectral density
        ``P(k) ~ |k|**-beta`` (1 = pink / 1/f, 0 = white, 2 = brown).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of float64, shape ``shape``
        Periodic across the image edges (it is synthesised in Fourier space).
    """
    ny, nx = shape
    spectrum = scipy.fft.rfft2(rng.standard_normal((ny, nx)), workers=-1)
    k = np.hypot(scipy.fft.fftfreq(ny)[:, None], scipy.fft.rfftfreq(nx)[None, :])
    gain = np.zeros_like(k)
    nonzero = k > 0
    gain[nonzero] = k[nonzero] ** (-0.5 * exponent)  # amplitude ~ sqrt(PSD)
    return _standardise(scipy.fft.irfft2(spectrum * gain, s=(ny, nx), workers=-1))


def line_offsets(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std field that is constant along each scan line (row): the feedback's per-line jumps."""
    ny, nx = shape
    return _standardise(np.broadcast_to(rng.standard_normal((ny, 1)), (ny, nx)).copy())


def white_noise(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-std uncorrelated pixel noise (preamplifier noise)."""
    return _standardise(rng.standard_normal(shape))


def mixed_noise(
    shape: tuple[int, int],
    std: float,
    mix: tuple[float, float, float],
    exponent: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Pink + line-offset + white noise whose sample standard deviation is exactly ``std``.

    Parameters
    ----------
    shape : (int, int)
    std : float
        Standard deviation of the returned realisation over the image (same units as the image).
    mix : (float, float, float)
        Relative variance shares of (pink, line offsets, white); normalised to sum 1.
    exponent : float
        Spectral exponent of the pink part.
    rng : numpy.random.Generator
    """
    if std == 0:
        return np.zeros(shape)
    w = np.asarray(mix, dtype=np.float64)
    w = w / w.sum()
    # Always draw all three parts so a realisation does not depend on which shares are zero.
    parts = (pink_noise(shape, exponent, rng), line_offsets(shape, rng), white_noise(shape, rng))
    total = sum(np.sqrt(wi) * p for wi, p in zip(w, parts))
    # The parts are only uncorrelated in expectation, so rescale the sum to hit std exactly.
    return _standardise(total) * std


def scan_fraction(x_px, y_px, shape: tuple[int, int]):
    """Frame-time fraction at which (sub-pixel) position (x_px, y_px) is scanned: ``(y_px + x_px / nx) / ny``."""
    ny, nx = shape
    return (np.asarray(y_px, dtype=np.float64) + np.asarray(x_px, dtype=np.float64) / nx) / ny


def drift_offset(s, drift_nm: tuple[float, float], creep_nm: tuple[float, float], creep_tau: float):
    """Apparent displacement (dx, dy) in nm of the surface at frame-time fraction ``s``.

    ``d(s) = drift_nm * s + creep_nm * (1 - exp(-s / creep_tau))``: linear thermal drift
    accumulating ``drift_nm`` over the frame, plus creep relaxing toward ``creep_nm``
    with time constant ``creep_tau`` (in frame times). Outside the frame (s < 0 or s > 1,
    features beyond the image edges) the displacement is held at its start / end value.
    """
    s = np.clip(np.asarray(s, dtype=np.float64), 0.0, 1.0)
    creep = -np.expm1(-s / creep_tau)
    return drift_nm[0] * s + creep_nm[0] * creep, drift_nm[1] * s + creep_nm[1] * creep


def apparent_positions(
    x_nm,
    y_nm,
    pixel_size_nm: float,
    shape: tuple[int, int],
    drift_nm: tuple[float, float],
    creep_nm: tuple[float, float],
    creep_tau: float,
):
    """Where features at true positions (x_nm, y_nm) appear in the drifting raster, in pixels.

    Solves ``p = r + d(s(p))`` by fixed-point iteration (vectorised over features):
    the pixel at p samples the surface at ``p - d(s(p))``.

    Returns
    -------
    x_px, y_px : numpy.ndarray of float64
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    px, py = x.copy(), y.copy()
    for _ in range(_DRIFT_ITERATIONS):
        dx, dy = drift_offset(scan_fraction(px / pixel_size_nm, py / pixel_size_nm, shape), drift_nm, creep_nm, creep_tau)
        px, py = x + dx, y + dy
    return px / pixel_size_nm, py / pixel_size_nm
