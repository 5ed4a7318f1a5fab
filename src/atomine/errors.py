"""Exception types of atomine.

Every error a user can cause is an :class:`AtomineError` whose message says what
was wrong and what to do. The CLI prints the message on one line and exits 2.
"""

from __future__ import annotations


class AtomineError(Exception):
    """Base class of every error atomine raises on purpose."""


class InputError(AtomineError, ValueError):
    """The input data or parameters are unusable (NaN, empty, wrong shape, nonsense value)."""


class CalibrationError(InputError):
    """A calibration is present but unusable (zero, NaN, non-monotonic)."""


class RegistrationError(InputError):
    """Two data sets cannot be registered reliably (no overlap, mismatched calibrations, no confident match)."""


class UnsupportedFormatError(AtomineError):
    """The file format is not one atomine reads or writes."""


class CorruptFileError(AtomineError):
    """The file claims a supported format but cannot be decoded (truncated, malformed)."""


class SignalNotFoundError(InputError, KeyError):
    """A requested signal (by name or index) is not in the file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OutputExistsError(AtomineError):
    """An output path exists and overwriting was not asked for."""


class MissingDependencyError(AtomineError, ImportError):
    """An optional package needed for this feature is not installed."""


__all__ = [
    "AtomineError",
    "InputError",
    "CalibrationError",
    "RegistrationError",
    "UnsupportedFormatError",
    "CorruptFileError",
    "SignalNotFoundError",
    "OutputExistsError",
    "MissingDependencyError",
]
