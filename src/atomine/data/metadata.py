"""Normalised, JSON-serialisable metadata.

Readers fill what they know into the normalised keys below; everything the file
said goes, made JSON-safe, into ``attrs["original_metadata"]``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError

# The normalised keys, their meaning and units. Absent values are simply left out.
METADATA_KEYS: dict[str, str] = {
    "title": "free-text title of the signal",
    "instrument": "microscope or SPM model",
    "beam_energy_kv": "accelerating voltage (kV)",
    "convergence_angle_mrad": "probe convergence semi-angle (mrad)",
    "collection_angle_mrad": "detector collection semi-angle (mrad); inner/outer as a 2-list for annular detectors",
    "probe_current_pa": "probe current (pA)",
    "dwell_time_s": "dwell time per pixel (s)",
    "magnification": "nominal magnification",
    "detector": "detector name",
    "sample": "sample name",
    "material": "material or phase",
    "elements": "list of element symbols",
    "acquisition_date": "ISO-8601 date or date-time",
    "operator": "who acquired it",
    "bias_v": "STM sample bias (V)",
    "setpoint_a": "STM current setpoint (A)",
    "tags": "list of free keywords",
}


def jsonable(obj: Any, _depth: int = 0) -> Any:
    """Convert nested metadata to JSON-serialisable Python objects (lossy only for exotic types)."""
    if _depth > 40:
        return str(obj)
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):  # not an np.integer: without this it would become the text "True"
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    if isinstance(obj, (bytes, bytearray, np.bytes_)):
        return bytes(obj).decode("utf-8", errors="replace")
    if isinstance(obj, (_dt.date, _dt.datetime, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, np.ndarray):
        if obj.size > 4096:
            return f"<array shape={list(obj.shape)} dtype={obj.dtype}>"
        return [jsonable(v, _depth + 1) for v in obj.tolist()] if obj.ndim else jsonable(obj.item(), _depth + 1)
    if isinstance(obj, dict) or hasattr(obj, "items"):
        try:
            return {str(k): jsonable(v, _depth + 1) for k, v in obj.items()}
        except Exception:  # a mapping-like object that refuses iteration
            return str(obj)
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v, _depth + 1) for v in obj]
    return str(obj)


def normalise_metadata(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Keep the known keys with JSON-safe values; unknown keys go under ``extra``; empty values are dropped.

    Idempotent: already-normalised metadata come back equal (their ``extra`` entries are
    merged into the new ``extra``, not nested inside it), so a reader or a constructor may
    normalise again whatever it is given.

    Parameters
    ----------
    values : mapping or None
        Metadata keyed as :data:`METADATA_KEYS` (values in the units the key names);
        None gives ``{}``. NaN/inf numbers count as absent.

    Raises
    ------
    InputError
        ``values`` is not a mapping.
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping) and not hasattr(values, "items"):
        raise InputError(f"metadata must be a dict of key -> value, got {type(values).__name__}; "
                         f"known keys are {', '.join(METADATA_KEYS)}")
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in values.items():
        key = str(key)
        if _absent(value):
            continue
        if key == "extra" and isinstance(value, Mapping):  # a previous normalisation's extras
            extra.update({str(k): jsonable(v) for k, v in value.items() if not _absent(v)})
        elif key in METADATA_KEYS:
            out[key] = jsonable(value)
        else:
            extra[key] = jsonable(value)
    if "elements" in out and isinstance(out["elements"], str):
        out["elements"] = [e.strip() for e in out["elements"].replace(";", ",").split(",") if e.strip()]
    if extra:
        out["extra"] = extra
    return out


def _absent(value: Any) -> bool:
    """None and non-finite numbers (numpy's included) mean "not recorded"."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(float(value))
    return False


def to_json(obj: Any) -> str:
    """Serialise metadata to a JSON string (for storing in NetCDF/Zarr attrs)."""
    return json.dumps(jsonable(obj), sort_keys=True)


def from_json(text: str | Any) -> Any:
    """Inverse of :func:`to_json`; non-strings are returned unchanged."""
    if isinstance(text, str):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    return text
