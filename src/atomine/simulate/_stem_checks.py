"""Parameter checks shared by the STEM simulator modules.

Each check returns the cleaned value or raises :class:`~atomine.errors.InputError`
with a one-line message naming the parameter, what it got and what it needs.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import InputError


def number(name: str, value: Any) -> float:
    """A finite real number."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(out):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return out


def positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    out = number(name, value)
    if out <= 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    return out


def non_negative(name: str, value: Any) -> float:
    """A finite number >= 0."""
    out = number(name, value)
    if out < 0:
        raise InputError(f"{name} must be >= 0, got {value!r}")
    return out


def fraction(name: str, value: Any, *, closed: bool = True) -> float:
    """A number in [0, 1] (or [0, 1) when ``closed`` is False)."""
    out = number(name, value)
    if out < 0 or out > 1 or (not closed and out == 1):
        raise InputError(f"{name} must lie in [0, 1{']' if closed else ')'}, got {value!r}")
    return out


def integer(name: str, value: Any, minimum: int | None = None) -> int:
    """An integer (numpy integers and integral floats are accepted) not below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise InputError(f"{name} must be an integer, got {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value!r}")
    return out


def vector(name: str, value: Any, length: int = 2) -> np.ndarray:
    """A finite float64 vector of ``length`` components."""
    try:
        out = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be {length} numbers, got {value!r}") from None
    if out.shape != (length,):
        raise InputError(f"{name} must be {length} numbers, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains NaN or inf: {value!r}")
    return out


def points(name: str, value: Any, minimum: int = 1) -> np.ndarray:
    """A finite (n, 2) float64 array of (x, y) points with n >= ``minimum``."""
    try:
        out = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a list of (x, y) pairs, got {value!r}") from None
    if out.ndim == 1 and out.size == 2:
        out = out[None, :]
    if out.ndim != 2 or out.shape[1] != 2:
        raise InputError(f"{name} must be a list of (x, y) pairs, got shape {out.shape}")
    if out.shape[0] < minimum:
        raise InputError(f"{name} needs at least {minimum} (x, y) pairs, got {out.shape[0]}")
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains NaN or inf")
    return out


def numbers(name: str, value: Any, count: int) -> np.ndarray:
    """``count`` finite numbers (a scalar is broadcast)."""
    try:
        out = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers, got {value!r}") from None
    if out.ndim == 0:
        out = np.full(count, float(out))
    if out.shape != (count,):
        raise InputError(f"{name} must have {count} values, got shape {out.shape}")
    if not np.all(np.isfinite(out)):
        raise InputError(f"{name} contains NaN or inf")
    return out


def fov(value: Any) -> tuple[float, float]:
    """A field of view (height, width) in nm; a scalar means a square."""
    arr = np.atleast_1d(np.array(value, dtype=object))
    if arr.size == 1:
        side = positive("fov_nm", arr[0])
        return side, side
    if arr.size != 2:
        raise InputError(f"fov_nm must be a number or (height, width) in nm, got {value!r}")
    return positive("fov_nm height", arr[0]), positive("fov_nm width", arr[1])


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    """One of ``options`` (case-insensitive for strings); returns the canonical spelling."""
    if isinstance(value, str):
        for option in options:
            if value.strip().upper() == option.upper():
                return option
    raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")
