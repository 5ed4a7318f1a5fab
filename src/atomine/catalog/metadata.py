"""Catalog fields from one loaded signal: normalised metadata, calibration, searchable original text.

Readers already fill ``attrs["metadata"]`` with the normalised keys of
:data:`atomine.data.METADATA_KEYS`; files that reach the catalog through a reader that knew
less (a bare TIFF, a HyperSpy file written elsewhere) often still carry the values in their
original metadata, so each missing field is looked up there under its usual names.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

import numpy as np
import xarray as xr

from ..data import axis_units, energy_factor_to_ev, bias_factor_to_v, length_factor_to_nm, signal_kind, uniform_axis
from ..data.metadata import jsonable

# Cap on the flattened original metadata per signal: some formats (Velox, DM) carry
# hundreds of kB of instrument state; the catalog keeps the start, which holds the useful keys.
TEXT_CAP = 200_000

# Original-metadata leaf names (lower case, last path component) that give a field when the
# normalised metadata lack it. Order matters: the first hit wins.
_FALLBACK_KEYS: dict[str, tuple[str, ...]] = {
    "instrument": ("microscope", "instrument", "instrument_name", "microscopename", "model"),
    "beam_energy_kv": ("beam_energy", "accelerationvoltage", "acceleratingvoltage", "ht", "voltage", "high_tension"),
    "magnification": ("magnification", "indicated_magnification", "actual magnification", "nominalmagnification"),
    "detector": ("detector", "detector_name", "detectorname"),
    "acquisition_date": ("date", "acquisition_date", "acquisitiondate", "acquisitiondatetime", "datetime"),
    "operator": ("operator", "user", "author", "authors"),
    "sample": ("sample", "sample_name", "specimen"),
    "title": ("title", "name"),
}


def flatten(obj: Any, prefix: str = "", out: list[str] | None = None) -> list[str]:
    """Nested metadata as ``"a.b.c: value"`` lines (lists of scalars on one line)."""
    out = [] if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}[{i}]", out)
    else:
        value = ", ".join(map(str, obj)) if isinstance(obj, list) else str(obj)
        out.append(f"{prefix}: {value}")
    return out


def _as_dict(value: Any) -> dict:
    """Metadata attrs may be dicts or JSON text (stores keep them as JSON strings)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes)):
        try:
            loaded = json.loads(value)
        except (ValueError, TypeError):
            return {"text": value if isinstance(value, str) else value.decode("utf-8", "replace")}
        return loaded if isinstance(loaded, dict) else {"value": loaded}
    return {} if value is None else {"value": jsonable(value)}


def _leaves(obj: Any, prefix: str = ""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, obj


def _fallback(original: dict, field: str) -> Any:
    names = _FALLBACK_KEYS[field]
    found: dict[str, Any] = {}
    for path, value in _leaves(original):
        leaf = path.rsplit(".", 1)[-1].lower()
        if leaf in names and leaf not in found and value not in (None, "", []):
            found[leaf] = value
    return next((found[n] for n in names if n in found), None)


def _number(value: Any) -> float | None:
    """First number in ``value`` (``"300 kV"`` -> 300.0); None when there is none or it is not finite."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        f = float(value)
    else:
        m = re.search(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", str(value)) if value is not None else None
        if not m:
            return None
        f = float(m.group())
    return f if np.isfinite(f) else None


def _kv(value: Any) -> float | None:
    """Beam energy in kV; values above 5000 are taken as volts (files store either)."""
    f = _number(value)
    if f is None or f <= 0:
        return None
    return f / 1000.0 if f > 5000 else f


def iso_date(value: Any) -> str | None:
    """ISO date / date-time from common spellings (ISO, ``dd.mm.yyyy``, ``mm/dd/yyyy``, ``yyyy/mm/dd``)."""
    if value in (None, ""):
        return None
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    text = str(value).strip()
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        pass
    for fmt in ("%d.%m.%Y", "%m/%d/%Y", "%Y/%m/%d", "%d %b %Y", "%Y-%m-%d %H:%M:%S", "%a %b %d %H:%M:%S %Y"):
        try:
            return _dt.datetime.strptime(text, fmt).date().isoformat() if "%H" not in fmt \
                else _dt.datetime.strptime(text, fmt).isoformat()
        except ValueError:
            continue
    m = re.search(r"(\d{4})-(\d{2})-(\d{2})", text)
    return "-".join(m.groups()) if m else None


def _text(value: Any) -> str | None:
    if value in (None, "", []):
        return None
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _step_nm(da: xr.DataArray, dim: str) -> float | None:
    """Pixel size along ``dim`` in nm; None for pixel units or irregular axes."""
    if dim not in da.coords or da.sizes[dim] < 2:
        return None
    units = axis_units(da, dim)
    try:
        factor = length_factor_to_nm(units)
    except Exception:  # "px" or an unknown unit: no physical pixel size
        return None
    axis = uniform_axis(np.asarray(da.coords[dim].values, dtype=float), rtol=1e-3)
    return abs(axis[1]) * factor if axis else None


def _energy_range(da: xr.DataArray, kind: str) -> list[float] | None:
    dim = {"spectrum_image": "energy", "spectrum": "energy", "cits": "bias"}.get(kind)
    if dim is None or dim not in da.coords:
        return None
    units = axis_units(da, dim)
    try:
        factor = energy_factor_to_ev(units) if dim == "energy" else bias_factor_to_v(units)
    except Exception:  # unknown unit: keep the raw numbers rather than nothing
        factor = 1.0
    values = np.asarray(da.coords[dim].values, dtype=float) * factor
    return [float(np.nanmin(values)), float(np.nanmax(values))]


def signal_fields(da: xr.DataArray) -> dict[str, Any]:
    """The DatasetRecord fields one signal determines (everything but file identity and content).

    Returns
    -------
    dict
        kind, signal, shape, dtype, pixel_size_nm (nm; None when uncalibrated), energy_range
        ([min, max] in eV, V for CITS), instrument, beam_energy_kv (kV), magnification,
        detector, acquisition_date (ISO), operator, sample, elements, title, tags,
        metadata (normalised, JSON-safe; ``text_truncated`` set when the original text was
        cut at :data:`TEXT_CAP` characters), original_text (``"a.b: value"`` lines).
    """
    kind = signal_kind(da)
    meta = jsonable(_as_dict(da.attrs.get("metadata")))
    original = jsonable(_as_dict(da.attrs.get("original_metadata")))
    got = {f: meta.get(f) for f in _FALLBACK_KEYS}
    for field, value in got.items():
        if value in (None, "", []):
            got[field] = _fallback(original, field)
    signal = da.attrs.get("signal") or meta.get("signal")
    pixel = _step_nm(da, "x") or _step_nm(da, "y")
    elements = meta.get("elements") or []
    elements = sorted({str(e) for e in (elements if isinstance(elements, list) else [elements])})
    tags = meta.get("tags") or []
    tags = [str(t) for t in (tags if isinstance(tags, list) else [tags])]
    text = "\n".join(flatten(original))
    if len(text) > TEXT_CAP:
        text = text[:TEXT_CAP]
        meta = {**meta, "text_truncated": True}
    title = _text(got["title"]) or (str(da.name) if da.name is not None else None)
    return {
        "kind": kind, "signal": str(signal) if signal else None,
        "shape": [int(n) for n in da.shape], "dtype": str(da.dtype),
        "pixel_size_nm": pixel, "energy_range": _energy_range(da, kind),
        "instrument": _text(got["instrument"]), "beam_energy_kv": _kv(got["beam_energy_kv"]),
        "magnification": _number(got["magnification"]), "detector": _text(got["detector"]),
        "acquisition_date": iso_date(got["acquisition_date"]), "operator": _text(got["operator"]),
        "sample": _text(got["sample"]) or _text(meta.get("material")), "elements": elements,
        "title": title, "tags": tags, "metadata": meta, "original_text": text,
    }
