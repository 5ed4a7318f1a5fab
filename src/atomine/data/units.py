"""Unit normalisation at the public boundary: lengths in nm, energies in eV, bias in V."""

from __future__ import annotations

import math

from ..errors import CalibrationError

# Factors to nanometres. Keys are lower-cased spellings as :func:`unit_key` makes them, with
# micro written "u" whether it came as "u", "µ" (micro sign) or "μ" (Greek mu).
_LENGTH_TO_NM = {
    "m": 1e9,
    "mm": 1e6,
    "um": 1e3,
    "micron": 1e3,
    "nm": 1.0,
    "a": 0.1,
    "å": 0.1,
    "angstrom": 0.1,
    "ang": 0.1,
    "pm": 1e-3,
}
_ENERGY_TO_EV = {"ev": 1.0, "kev": 1e3, "mev": 1e-3}
_BIAS_TO_V = {"v": 1.0, "mv": 1e-3, "uv": 1e-6}
_RECIPROCAL_TO_PER_NM = {"1/nm": 1.0, "nm^-1": 1.0, "1/m": 1e-9, "1/a": 10.0, "1/å": 10.0, "a^-1": 10.0}

# Both micro characters look alike; files and keyboards produce either, so both mean "u".
_MICRO = str.maketrans({"\u00b5": "u", "\u03bc": "u"})


def unit_key(unit) -> str:
    """The lookup key of a unit: stripped, lower case, no spaces, micro as "u"; "" for non-text.

    Non-text units (None, numbers) give "" so that they are simply unknown; bytes from file
    headers are decoded first.
    """
    if isinstance(unit, (bytes, bytearray)):
        unit = bytes(unit).decode("utf-8", errors="replace")
    if not isinstance(unit, str):
        return ""
    # lower() before translate: the micro sign upper-cases to Greek capital mu, which lower() maps to Greek mu.
    return unit.strip().lower().replace(" ", "").translate(_MICRO)


def is_length_unit(unit) -> bool:
    """True when ``unit`` names a length that can be converted to nm."""
    return unit_key(unit) in _LENGTH_TO_NM


def length_factor_to_nm(unit) -> float:
    """Multiplicative factor that converts a length in ``unit`` to nanometres.

    Raises
    ------
    CalibrationError
        ``unit`` is not a length atomine knows (the message lists the known ones).
    """
    try:
        return _LENGTH_TO_NM[unit_key(unit)]
    except KeyError:
        raise CalibrationError(f"unknown length unit {unit!r}; expected one of m, mm, µm (um, micron), nm, "
                               "Å (A, angstrom), pm") from None


def energy_factor_to_ev(unit) -> float:
    """Factor that converts an energy in ``unit`` to eV."""
    try:
        return _ENERGY_TO_EV[unit_key(unit)]
    except KeyError:
        raise CalibrationError(f"unknown energy unit {unit!r}; expected eV, keV or meV") from None


def bias_factor_to_v(unit) -> float:
    """Factor that converts a voltage in ``unit`` to V."""
    try:
        return _BIAS_TO_V[unit_key(unit)]
    except KeyError:
        raise CalibrationError(f"unknown voltage unit {unit!r}; expected V, mV or µV") from None


def reciprocal_factor_to_per_nm(unit) -> float | None:
    """Factor to cycles/nm for a reciprocal length unit, or None when ``unit`` is not one."""
    return _RECIPROCAL_TO_PER_NM.get(unit_key(unit))


def check_scale(scale, what: str) -> float:
    """A calibration step as a float; it must be a finite, non-zero number.

    Raises
    ------
    CalibrationError
        ``scale`` is not a number (text, None), or is zero, NaN or infinite.
    """
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise CalibrationError(f"{what} calibration step is {scale!r}, not a number; give the step in the "
                               "axis' units") from None
    if not math.isfinite(value) or value == 0.0:
        raise CalibrationError(f"{what} calibration step is {value!r}; it must be finite and non-zero")
    return value
