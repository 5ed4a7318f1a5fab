"""Unit normalisation at the public boundary: lengths in nm, energies in eV, bias in V."""

from __future__ import annotations

import math

from ..errors import CalibrationError

# Factors to nanometres. Keys are lower-cased; micro may come as "u", "µ" (micro sign) or "μ" (Greek mu).
_LENGTH_TO_NM = {
    "m": 1e9,
    "mm": 1e6,
    "um": 1e3,
    "µm": 1e3,
    "μm": 1e3,
    "micron": 1e3,
    "nm": 1.0,
    "a": 0.1,
    "å": 0.1,
    "angstrom": 0.1,
    "ang": 0.1,
    "pm": 1e-3,
}
_ENERGY_TO_EV = {"ev": 1.0, "kev": 1e3, "mev": 1e-3}
_BIAS_TO_V = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6}
_RECIPROCAL_TO_PER_NM = {"1/nm": 1.0, "nm^-1": 1.0, "1/m": 1e-9, "1/a": 10.0, "1/å": 10.0, "a^-1": 10.0}


def _key(unit: str | None) -> str:
    return (unit or "").strip().lower().replace(" ", "")


def is_length_unit(unit: str | None) -> bool:
    """True when ``unit`` names a length that can be converted to nm."""
    return _key(unit) in _LENGTH_TO_NM


def length_factor_to_nm(unit: str | None) -> float:
    """Multiplicative factor that converts a length in ``unit`` to nanometres."""
    try:
        return _LENGTH_TO_NM[_key(unit)]
    except KeyError:
        raise CalibrationError(f"unknown length unit {unit!r}; expected one of m, mm, um, nm, A, pm") from None


def energy_factor_to_ev(unit: str | None) -> float:
    """Factor that converts an energy in ``unit`` to eV."""
    try:
        return _ENERGY_TO_EV[_key(unit)]
    except KeyError:
        raise CalibrationError(f"unknown energy unit {unit!r}; expected eV, keV or meV") from None


def bias_factor_to_v(unit: str | None) -> float:
    """Factor that converts a voltage in ``unit`` to V."""
    try:
        return _BIAS_TO_V[_key(unit)]
    except KeyError:
        raise CalibrationError(f"unknown voltage unit {unit!r}; expected V or mV") from None


def reciprocal_factor_to_per_nm(unit: str | None) -> float | None:
    """Factor to cycles/nm for a reciprocal length unit, or None when ``unit`` is not one."""
    return _RECIPROCAL_TO_PER_NM.get(_key(unit))


def check_scale(scale: float, what: str) -> float:
    """A calibration step must be finite and non-zero."""
    scale = float(scale)
    if not math.isfinite(scale) or scale == 0.0:
        raise CalibrationError(f"{what} calibration step is {scale!r}; it must be finite and non-zero")
    return scale
