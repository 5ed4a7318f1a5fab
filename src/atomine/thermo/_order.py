"""Long-range-order parameter of lattice configurations, from the structure factor.

Used by :mod:`atomine.thermo.phase` to tell ordered or phase-separated Monte Carlo
snapshots from disordered ones, and which of the two kinds of order it is.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft

from ..errors import InputError
from .lattice import check_kind

LONG_WAVELENGTH = "long-wavelength"
SUPERSTRUCTURE = "superstructure"


def _k_squared(shape: tuple[int, int], kind: str) -> np.ndarray:
    """|k|^2 / (2 pi)^2 on the FFT grid, folded to the shortest reciprocal-lattice image."""
    qi = sfft.fftfreq(shape[0])[:, None]
    qj = sfft.fftfreq(shape[1])[None, :]
    if kind == "square":
        return qi * qi + qj * qj
    # 60-degree basis: the reciprocal metric is (4/3) [[1, -1/2], [-1/2, 1]]. Folding each
    # component to [-1/2, 1/2) is not enough on an oblique lattice, so try the neighbour images.
    best = np.full(shape, np.inf)
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            u, v = qi + a, qj + b
            best = np.minimum(best, 4.0 / 3.0 * (u * u + v * v - u * v))
    return best


def order_parameter(snapshots, kind: str = "square") -> tuple[np.ndarray, np.ndarray]:
    """Long-range order of configurations on a periodic lattice, from the structure factor.

    s_max = max over k != 0 of |sum_r (sigma_r - mean) exp(i k.r)|^2 / N^2, with the mean and
    N taken over the model sites (sigma != 0). A perfect checkerboard gives 1, a half/half
    stripe 4 / pi^2 = 0.405, an uncorrelated configuration O(log N / N).

    Parameters
    ----------
    snapshots : array_like of int, shape (..., n_i, n_j)
        Configurations (+1 dopant, -1 host, 0 not in the model) on a periodic index grid.
    kind : {"square", "triangular"}
        Lattice topology; sets |k| for telling the two kinds of peak apart (the FFT over the
        index grid samples the reciprocal lattice of either).

    Returns
    -------
    s_max : ndarray of float, shape (...)
        The order parameter (dimensionless).
    k_type : ndarray of str, shape (...)
        ``"long-wavelength"`` when the peak sits at the fundamental wavelength of the box
        (|k| no larger than 2 pi / n_i or 2 pi / n_j along the grid axes, whichever is
        larger: clustering / phase separation), else ``"superstructure"`` (ordering). On a
        square n x n box this is exactly the smallest non-zero |k|.
    """
    kind = check_kind(kind)
    s = np.asarray(snapshots)
    if s.ndim < 2 or s.size == 0:
        raise InputError("snapshots must be a non-empty array (..., n_i, n_j) of -1/0/+1 spins")
    if s.dtype.kind not in "iub" and not (s.dtype.kind == "f" and np.all(np.isfinite(s)) and np.all(s == np.round(s))):
        raise InputError(f"snapshots must hold integer spins -1/0/+1, got dtype {s.dtype}")
    if s.dtype.kind != "b" and (s.min() < -1 or s.max() > 1):
        raise InputError("snapshots must hold spins -1 (host), 0 (not in the model) or +1 (dopant) only")
    shape = s.shape[-2:]
    if shape[0] * shape[1] < 2:
        raise InputError(f"snapshots need at least 2 sites per configuration, got grid {shape}")
    x = s.astype(np.float64)
    valid = x != 0
    n = valid.sum(axis=(-2, -1))
    if np.any(n == 0):
        raise InputError("a snapshot has no model sites (all spins 0); drop it")
    mean = x.sum(axis=(-2, -1)) / n
    x = np.where(valid, x - mean[..., None, None], 0.0)
    power = np.abs(sfft.fft2(x, axes=(-2, -1), workers=-1)) ** 2
    power = power.reshape(*power.shape[:-2], -1)
    power[..., 0] = -np.inf  # k = 0 only measures the composition
    flat = np.argmax(power, axis=-1)
    s_max = np.take_along_axis(power, flat[..., None], axis=-1)[..., 0] / (n.astype(np.float64) ** 2)
    k2 = _k_squared(shape, kind).ravel()
    # the fundamental |k| of the box along each grid axis; on a rectangular box phase
    # separation may settle along either, so both count as long-wavelength
    fundamental = [k2[shape[1]]] if shape[0] > 1 else []
    fundamental += [k2[1]] if shape[1] > 1 else []
    longest = max(fundamental) * (1 + 1e-9)
    k_type = np.where(k2[flat] <= longest, LONG_WAVELENGTH, SUPERSTRUCTURE)
    return s_max, k_type


__all__ = ["LONG_WAVELENGTH", "SUPERSTRUCTURE", "order_parameter"]
