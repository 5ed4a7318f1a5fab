"""Metadata of HyperSpy-style signal dicts: metadata tree -> atomine's normalised keys and signal label.

A rosettasciio reader (or a HyperSpy signal) gives ``metadata`` (a HyperSpy-style tree, often thin),
``original_metadata`` (everything the file said) and a ``mapping`` from
original-metadata paths to metadata paths that HyperSpy applies on load. We
apply that mapping ourselves, then read the normalised keys of
``atomine.data.METADATA_KEYS`` from the tree, with a few vendor fallbacks read
straight from the original metadata (Velox ``BinaryResult.Detector``,
``Scan.DwellTime``, ``Optics.LastMeasuredScreenCurrent``).

Units: HyperSpy stores beam energy in kV, angles in mrad, beam current in nA
and times in s; atomine's keys say their units in their names.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .units import unit_key

_MISSING = object()


def _get(tree: Any, path: str, default=None):
    """Value at a dotted path; keys match with spaces and underscores interchangeable."""
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict):
            return default
        if part in node:
            node = node[part]
            continue
        want = _loose(part)
        key = next((k for k in node if isinstance(k, str) and _loose(k) == want), _MISSING)
        if key is _MISSING:
            return default
        node = node[key]
    return node


def _loose(key: str) -> str:
    # HyperSpy's metadata boxes treat "High tension_kV" and "High_tension_kV" as the same key.
    return key.replace(" ", "_")


def _set(tree: dict, path: str, value) -> None:
    parts = path.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _BoxLike(dict):
    """A dict whose ``keys()`` is a list, as in HyperSpy's metadata boxes that mapping converters expect."""

    def keys(self):  # type: ignore[override]
        return list(super().keys())

    @classmethod
    def wrap(cls, value):
        if isinstance(value, dict):
            return cls({k: cls.wrap(v) for k, v in value.items()})
        return value


def apply_mapping(original: dict, mapping: dict | None) -> dict:
    """The metadata that HyperSpy would derive from ``original`` with the reader's ``mapping``."""
    out: dict = {}
    for source, target in (mapping or {}).items():
        try:
            dest, convert = target
        except (TypeError, ValueError):
            continue
        value = _get(original, source, _MISSING)
        if value is _MISSING:
            continue
        try:
            value = convert(_BoxLike.wrap(value)) if convert is not None else value
        except Exception:  # a vendor value the converter does not understand: leave it out
            continue
        if value is not None:
            _set(out, dest, value)
    return out


def metadata_tree(signal: dict) -> dict:
    """HyperSpy-style metadata of one rosettasciio signal dict, mapping applied."""
    base = signal.get("metadata") or {}
    mapped = apply_mapping(signal.get("original_metadata") or {}, signal.get("mapping"))
    return _merge(base if isinstance(base, dict) else {}, mapped)


def _num(value) -> float | None:
    """A finite float from numbers or numeric strings, else None."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _positive(value, factor: float = 1.0) -> float | None:
    # Vendors write 0 for "not measured" (DM beam_current, collection_angle), so 0 means absent.
    f = _num(value)
    return f * factor if f is not None and f > 0 else None


# Factors to atomine's units for values that carry a ``<key>_units`` sibling (the MSA reader
# writes "dwell_time_units": "ms"); HyperSpy's defaults apply when there is none.
# Keys as :func:`atomine.data.units.unit_key` makes them (micro sign and Greek mu -> "u").
_TO_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_TO_PA = {"a": 1e12, "ma": 1e9, "ua": 1e6, "na": 1e3, "pa": 1.0}
_TO_KV = {"kv": 1.0, "v": 1e-3, "mv": 1e3}
_TO_MRAD = {"mrad": 1.0, "mr": 1.0, "rad": 1e3, "deg": 1e3 * math.pi / 180, "dg": 1e3 * math.pi / 180}


def _scaled(node: dict, key: str, table: dict[str, float], default: float) -> float | None:
    """``node[key]`` in atomine units; None when absent, zero, or in a unit we cannot convert."""
    if not isinstance(node, dict) or key not in node:
        return None
    units = node.get(f"{key}_units")
    if units is None:
        return _positive(node[key], default)
    factor = table.get(unit_key(str(units)))
    return _positive(node[key], factor) if factor is not None else None


def _instrument(tree: dict) -> dict:
    ai = _get(tree, "Acquisition_instrument") or {}
    for key in ("TEM", "SEM"):
        if isinstance(ai.get(key), dict):
            return ai[key]
    return {}


def _first(*values):
    for v in values:
        if v is not None and v != "" and v != []:
            return v
    return None


def normalised(tree: dict, original: dict) -> dict[str, Any]:
    """Values for :func:`atomine.data.normalise_metadata` (unknown extras go under ``extra`` there)."""
    inst = _instrument(tree)
    eels = _get(inst, "Detector.EELS") or {}
    eds = _get(inst, "Detector.EDS") or {}
    camera = _get(inst, "Detector.Camera") or {}
    date, time = _get(tree, "General.date"), _get(tree, "General.time")
    elements = _get(tree, "Sample.elements")
    out: dict[str, Any] = {
        "title": _get(tree, "General.title") or None,
        "instrument": _first(inst.get("microscope"), _get(original, "Instrument.InstrumentClass")),
        "beam_energy_kv": _scaled(inst, "beam_energy", _TO_KV, 1.0),
        "convergence_angle_mrad": _scaled(inst, "convergence_angle", _TO_MRAD, 1.0),
        "collection_angle_mrad": _first(_scaled(eels, "collection_angle", _TO_MRAD, 1.0),
                                        _scaled(inst, "collection_angle", _TO_MRAD, 1.0)),
        "probe_current_pa": _first(_scaled(inst, "beam_current", _TO_PA, 1e3),  # HyperSpy: nA
                                   _positive(_get(original, "Optics.LastMeasuredScreenCurrent"), 1e12)),
        "dwell_time_s": _first(_scaled(inst, "dwell_time", _TO_S, 1.0), _scaled(eels, "dwell_time", _TO_S, 1.0),
                               _positive(_get(original, "Scan.DwellTime"))),
        "magnification": _positive(inst.get("magnification")),
        "detector": _first(_get(original, "BinaryResult.Detector"), eels.get("spectrometer"), camera.get("Name"),
                           eds.get("EDS_det")),
        "sample": _first(_get(tree, "Sample.description"), _get(tree, "Sample.name")),
        "elements": list(elements) if isinstance(elements, (list, tuple)) else elements,
        "acquisition_date": f"{date}T{time}" if date and time else date,
        "operator": _get(tree, "General.authors") or None,
        "acquisition_mode": inst.get("acquisition_mode"),
        "camera_length_mm": _positive(inst.get("camera_length")),
        "signal_type": _get(tree, "Signal.signal_type") or None,
        "original_filename": _get(tree, "General.original_filename"),
    }
    if eds:
        out["eds_live_time_s"] = _scaled(eds, "live_time", _TO_S, 1.0)
        out["eds_real_time_s"] = _scaled(eds, "real_time", _TO_S, 1.0)
    return {k: v for k, v in out.items() if v is not None}


# Detector keywords in titles and detector names, most specific first.
_DETECTOR_WORDS = (
    (r"haadf", "HAADF"), (r"idpc", "iDPC"), (r"dpc", "DPC"), (r"abf", "ABF"), (r"maadf|laadf|adf|df\d|\bdf\b", "ADF"),
    (r"\bbf\b|bright.?field", "BF"), (r"eels", "EELS"), (r"eds|edx|x-?ray", "EDS"), (r"\bcl\b|cathodo", "CL"),
)


def _from_words(text: str) -> str | None:
    low = text.lower()
    for pattern, label in _DETECTOR_WORDS:
        if re.search(pattern, low):
            return label
    return None


def signal_label(tree: dict, original: dict, kind: str, dims: tuple[str, ...], energy_step_ev: float | None) -> str:
    """Best-effort signal name (HAADF, ADF, BF, EELS, EDS, CL, CITS, diffraction, STEM, TEM, image, profile).

    A bias axis makes a CITS grid. Otherwise, order of evidence: the reader's ``signal_type`` (EELS, EDS_TEM, CL), the title,
    the vendor's detector name; then the axes (reciprocal -> diffraction) and the
    acquisition mode. A spectrum with no other evidence is called EDS when its
    channels are at least 2.5 eV wide (EDS detectors bin 5-20 eV; EELS 0.01-1 eV),
    else EELS; "unknown" when the spectral axis is counted in uncalibrated channels.
    """
    if "bias" in dims:
        return "CITS"
    stype = str(_get(tree, "Signal.signal_type") or "").upper()
    if stype.startswith("EELS"):
        return "EELS"
    if stype.startswith("EDS"):
        return "EDS"
    if stype == "CL":
        return "CL"
    detector = str(_get(original, "BinaryResult.Detector") or "")
    title = str(_get(tree, "General.title") or "")
    spectral = "energy" in dims
    for text in (title, detector):  # a title ("iDPC") is more specific than the detector ("DF4")
        label = _from_words(text) if text else None
        if label and (label in ("EELS", "EDS", "CL")) == spectral:
            return label
    if spectral:
        if energy_step_ev is None:  # counted in channels: nothing says what kind of spectrum
            return "unknown"
        return "EDS" if abs(energy_step_ev) >= 2.5 else "EELS"
    if "kx" in dims:
        return "diffraction"
    mode = str(_instrument(tree).get("acquisition_mode") or "").upper()
    if "STEM" in mode:
        return "STEM"
    if "TEM" in mode or "camera" in detector.lower() or "ceta" in (detector + title).lower():
        return "TEM"
    if kind in ("image", "stack"):
        return "image"
    return "profile" if len(dims) == 1 else "unknown"


def value_units(tree: dict) -> str:
    """Units of the data values from HyperSpy's ``Signal.quantity`` ("X-rays (Counts)" -> "counts")."""
    quantity = str(_get(tree, "Signal.quantity") or "")
    m = re.search(r"\(([^()]+)\)\s*$", quantity)
    units = m.group(1).strip() if m else ""
    if units.lower() in ("", "intensity", "counts"):
        return "counts"
    return units
