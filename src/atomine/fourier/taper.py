"""2-D tapers (apodisation windows) for windowed Fourier transforms.

A taper brings each window's edges smoothly to zero before the FFT, so that the
discontinuity between opposite edges of a periodic continuation does not leak
power into streaks across the whole spectrum. Every taper here is the outer
product of two 1-D ``scipy.signal.windows`` in their periodic ("DFT-even",
``sym=False``) form, the form meant for spectral analysis.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import windows as _windows

from ..errors import InputError

#: Taper names accepted by :func:`taper_2d` (``None`` or ``"none"`` means no taper).
TAPERS = ("hann", "hamming", "blackman", "tukey", "gaussian", "none")

# Defaults of the tapers that take a shape parameter: tukey's flat fraction is
# 1 - alpha; the gaussian's standard deviation is a fraction of the window length,
# chosen so that the edges are at 3 sigma (value ~0.011).
_TUKEY_ALPHA = 0.5
_GAUSS_SIGMA_FRACTION = 1.0 / 6.0

# Half-width of each taper's main lobe, in frequency bins; mask_dc uses it to remove
# the power that the residual window-shaped offset leaks around k = 0.
MAIN_LOBE_BINS = {"none": 1.0, "hann": 2.0, "hamming": 2.0, "blackman": 3.0, "tukey": 2.0, "gaussian": 2.0}


def taper_spec(taper) -> tuple[str, float | None]:
    """The canonical ``(name, parameter)`` of a taper given as a name, ``None`` or ``(name, parameter)``.

    ``("tukey", alpha)`` sets the tapered fraction (0..1); ``("gaussian", sigma)`` sets the
    standard deviation as a fraction of the window length.

    Raises
    ------
    InputError
        Unknown name, or a parameter that is not a usable number.
    """
    param = None
    if isinstance(taper, tuple):
        if len(taper) != 2:
            raise InputError(f"taper {taper!r}: give a name or a (name, parameter) pair")
        taper, param = taper
    if taper is None:
        taper = "none"
    if not isinstance(taper, str) or taper.lower() not in TAPERS:
        raise InputError(f"unknown taper {taper!r}; use one of {', '.join(TAPERS)} (or None)")
    name = taper.lower()
    if param is not None:
        if name not in ("tukey", "gaussian"):
            raise InputError(f"taper {name!r} takes no parameter; only tukey (alpha) and gaussian (sigma) do")
        try:
            param = float(param)
        except (TypeError, ValueError):
            raise InputError(f"taper parameter {param!r} is not a number") from None
        if not np.isfinite(param) or param <= 0 or (name == "tukey" and param > 1):
            raise InputError(f"taper parameter {param!r} is out of range: tukey alpha in (0, 1], "
                             "gaussian sigma (fraction of the window) > 0")
    elif name == "tukey":
        param = _TUKEY_ALPHA
    elif name == "gaussian":
        param = _GAUSS_SIGMA_FRACTION
    return name, param


def taper_1d(name: str, n: int, param: float | None = None) -> np.ndarray:
    """The periodic 1-D taper of length ``n`` (float64, peak 1)."""
    if name == "none":
        return np.ones(n)
    if name == "tukey":
        return _windows.tukey(n, alpha=param, sym=False)
    if name == "gaussian":
        return _windows.gaussian(n, std=param * n, sym=False)
    return _windows.get_window(name, n, fftbins=True)


@lru_cache(maxsize=32)
def _cached(name: str, param: float | None, ny: int, nx: int, shift_y: bool, shift_x: bool) -> np.ndarray:
    ty = taper_1d(name, ny, param)
    tx = taper_1d(name, nx, param)
    # Multiplying by (-1)^i moves the zero frequency of an even-length FFT to the centre
    # (the same result as fftshift), so the shift costs nothing once fused into the taper.
    if shift_y:
        ty = ty * (1.0 - 2.0 * (np.arange(ny) % 2))
    if shift_x:
        tx = tx * (1.0 - 2.0 * (np.arange(nx) % 2))
    out = np.outer(ty, tx).astype(np.float32)
    out.flags.writeable = False  # shared by every caller through the cache
    return out


def taper_2d(taper, ny: int, nx: int | None = None, *, shift_y: bool = False, shift_x: bool = False) -> np.ndarray:
    """A read-only float32 ``(ny, nx)`` taper, the outer product of two 1-D tapers.

    Parameters
    ----------
    taper : str, None or (str, float)
        One of :data:`TAPERS`; see :func:`taper_spec` for the parameters.
    ny, nx : int
        Window size in pixels (``nx`` defaults to ``ny``).
    shift_y, shift_x : bool
        Fold a checkerboard sign ``(-1)^i`` into the taper along that axis, which centres
        the zero frequency of the FFT along it (only meaningful for even lengths).

    Returns
    -------
    numpy.ndarray
        Cached and shared: do not modify (it is read-only).
    """
    name, param = taper_spec(taper)
    nx = ny if nx is None else nx
    return _cached(name, param, int(ny), int(nx), bool(shift_y), bool(shift_x))


__all__ = ["TAPERS", "MAIN_LOBE_BINS", "taper_spec", "taper_1d", "taper_2d"]
