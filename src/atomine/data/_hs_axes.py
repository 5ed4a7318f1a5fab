"""Turn HyperSpy-style axis dictionaries (rosettasciio readers, HyperSpy signals) into atomine dims and coordinates.

rosettasciio and HyperSpy describe every array axis with a dict (``name``, ``size``, ``scale``,
``offset``, ``units``, ``navigate``, optionally ``index_in_array`` or an explicit
``axis`` array for non-uniform axes). Vendors disagree on names ("height", "R_y",
" Energy") and on the navigate flags (DM marks a spectrum image's energy axis as
navigation), so the decision here rests on the *units* of each axis and on array
order, never on the flags:

- lengths (m, µm, nm, Å, pm) -> nm; two of them form the spatial ``("y", "x")``
  pair, the earlier one in array order being ``y`` (atomine's row axis);
- energies (eV, keV, meV) -> eV, dim ``energy``; placed last;
- reciprocal lengths (1/nm, 1/µm, 1/Å) -> 1/nm, dims ``("ky", "kx")``;
- voltages (V, mV) -> V, dim ``bias`` (CITS grids); placed last;
- times (s, ms, µs, ns) -> s; angles (rad, mrad) -> mrad;
- empty, ``<undefined>``, ``[]``, ``px`` -> uncalibrated (pixel indices, units "px");
- ``channel``, or no units on an axis known to be spectral -> an uncalibrated spectral
  axis: dim ``energy`` in units ``"channel"``, as atomine's array-file reader does;
- three axes, two of them the image (lengths, or uncalibrated axes named y/x or
  height/width): an uncalibrated third axis *before* them is a frame axis
  (``("frame", "y", "x")``); one *after* them that is unnamed or named like a channel
  ("sample", "channel", "component", ...) is a spectral axis counted in channels
  (``("y", "x", "energy")``), following DESIGN.md's (y, x, channel) rule.

Size-1 axes are dropped first (a TIA "point spectrum" is a 1x1024 array), as
HyperSpy's ``squeeze`` does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..errors import CalibrationError, CorruptFileError
from .axes import explicit_coord, linear_coord
from .units import bias_factor_to_v, energy_factor_to_ev, is_length_unit, length_factor_to_nm, unit_key

_NO_UNITS = {"", "none", "<undefined>", "undefined", "[]", "px", "pixel", "pixels", "t.u.", "a.u.", "au"}
# Keys as :func:`atomine.data.units.unit_key` makes them (micro sign and Greek mu -> "u").
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_ANGLE_TO_MRAD = {"mrad": 1.0, "rad": 1e3, "urad": 1e-3}

# Layout kinds, in the vocabulary of ``atomine.data.signal_kind`` plus the reader's own.
IMAGE, SPECTRUM_IMAGE, CITS, SPECTRUM, STACK, GENERIC = "image", "spectrum_image", "cits", "spectrum", "stack", "generic"
_SPECTRAL_ROLES = ("energy", "bias", "wavelength")


@dataclass
class Axis:
    """One array axis after unit normalisation."""

    index: int  # position in the array as read
    name: str  # name given by the file (may be empty)
    size: int
    role: str  # length, reciprocal, energy, bias, time, angle, wavelength, channel, none, other
    units: str  # atomine units ("nm", "1/nm", "eV", "V", "s", "mrad", "px", "channel") or the file's
    scale: float = 1.0
    offset: float = 0.0
    values: np.ndarray | None = None  # explicit coordinates of a non-uniform axis (converted)


@dataclass
class Layout:
    """How to arrange the array: kind, axis permutation and the atomine dim of each output axis."""

    kind: str
    axes: list[Axis]  # in output order
    dims: tuple[str, ...]
    drop: list[int] = field(default_factory=list)  # size-1 array axes removed before permuting

    @property
    def order(self) -> tuple[int, ...]:
        return tuple(a.index for a in self.axes)


def _clean_units(units) -> str:
    return "" if units is None else str(units).strip()


def _reciprocal_factor(key: str) -> float | None:
    """Factor to 1/nm for '1/<length>' or '<length>^-1' (spaces ignored), else None."""
    m = re.fullmatch(r"1/(.+)", key) or re.fullmatch(r"(.+?)\^?-1", key)
    if not m or not is_length_unit(m.group(1)):
        return None
    return 1.0 / length_factor_to_nm(m.group(1))


def classify(name: str, units) -> tuple[str, str, float]:
    """(role, atomine units, factor from the file's units) for one axis."""
    text = _clean_units(units)
    key = unit_key(text)
    if key in _NO_UNITS:
        return "none", "px", 1.0
    if key in ("channel", "channels"):  # atomine's own mark of an uncalibrated spectral axis
        return "channel", "channel", 1.0
    if is_length_unit(key):
        role = "wavelength" if "wavelength" in name.lower() else "length"
        return role, "nm", length_factor_to_nm(key)
    recip = _reciprocal_factor(key)
    if recip is not None:
        return "reciprocal", "1/nm", recip
    if key in ("ev", "kev", "mev"):
        return "energy", "eV", energy_factor_to_ev(key)
    if key in ("v", "mv"):
        return "bias", "V", bias_factor_to_v(key)
    if key in _TIME_TO_S:
        return "time", "s", _TIME_TO_S[key]
    if key in _ANGLE_TO_MRAD:
        return "angle", "mrad", _ANGLE_TO_MRAD[key]
    return "other", text, 1.0


def _number(value, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CalibrationError(f"{what} is {value!r}, not a number; the file's calibration is unusable") from None


def parse_axes(axes: list[dict], shape: tuple[int, ...]) -> list[Axis]:
    """Axis records in array order, with units converted; checks they match the data shape."""
    if len(axes) != len(shape):
        raise CorruptFileError(f"the file describes {len(axes)} axes for {len(shape)}-D data")
    if all("index_in_array" in a for a in axes):
        axes = sorted(axes, key=lambda a: int(a["index_in_array"]))
    out = []
    for i, ax in enumerate(axes):
        name = str(ax.get("name") or "").strip()
        size = int(shape[i])
        role, units, factor = classify(name, ax.get("units"))
        rec = Axis(i, name, size, role, units)
        label = f"axis {name or i} ({_clean_units(ax.get('units')) or 'no units'})"
        if role in ("none", "channel"):
            out.append(rec)  # indices: the file's scale means nothing without units
            continue
        if ax.get("axis") is not None:
            values = np.asarray(ax["axis"], dtype=np.float64) * factor
            if values.shape != (size,):
                raise CorruptFileError(f"{label} has {values.size} coordinates for {size} samples")
            rec.values = values
        else:
            scale = _number(ax.get("scale", 1.0), f"{label} scale")
            offset = _number(ax.get("offset", 0.0), f"{label} offset")
            if not math.isfinite(scale) or scale == 0.0:
                raise CalibrationError(f"{label} calibration step is {scale!r}; it must be finite and non-zero")
            if not math.isfinite(offset):
                raise CalibrationError(f"{label} calibration offset is {offset!r}; it must be finite")
            rec.scale, rec.offset = scale * factor, offset * factor
        out.append(rec)
    return out


def _squeeze(axes: list[Axis]) -> tuple[list[Axis], list[int]]:
    keep = [a for a in axes if a.size > 1]
    if not keep:  # a single value: keep the last axis so the data stay 1-D
        keep = [axes[-1]]
    drop = [a.index for a in axes if a not in keep]
    return keep, drop


# Names files give the row and column axes of an image (rosettasciio's TIFF reader: "height", "width").
_ROW_NAMES = {"y", "height", "row", "rows"}
_COLUMN_NAMES = {"x", "width", "column", "columns", "col", "cols"}
# Names of a trailing axis that counts channels rather than frames (TIFF "sample": samples per pixel).
_CHANNEL_NAMES = {"", "none", "<undefined>", "undefined", "c", "s", "channel", "channels", "sample", "samples",
                  "component", "components", "label", "labels", "band", "bands"}


def _spatial_pair(axes: list[Axis]) -> list[Axis] | None:
    """The two spatial axes (both lengths, or both uncalibrated), in array order.

    Among uncalibrated axes, two named as rows then columns ("y", "x"; "height", "width")
    are the pair; without such names the last two are, as in a C-order image stack.
    """
    lengths = [a for a in axes if a.role == "length"]
    if len(lengths) == 2:
        return lengths
    nones = [a for a in axes if a.role == "none"]
    if not lengths and len(nones) >= 2:
        rows = [a for a in nones if a.name.lower() in _ROW_NAMES]
        cols = [a for a in nones if a.name.lower() in _COLUMN_NAMES]
        if len(rows) == 1 and len(cols) == 1 and rows[0].index < cols[0].index:
            return [rows[0], cols[0]]
        return nones[-2:]
    if len(lengths) == 1 and len(nones) == 1 and len(axes) == 2:
        return axes  # half-calibrated image: treated as uncalibrated by the caller
    return None


def _trailing_channels(third: Axis, pair: list[Axis]) -> bool:
    """An uncalibrated, unnamed (or channel-named) axis after the image axes counts channels.

    Frames of a stack come first in array order (HyperSpy, TIFF, MRC); an axis stored after
    (y, x) is per-pixel -- samples, components, labels -- so DESIGN.md's rule for a 3-D
    uncalibrated array applies: (y, x, channel), spectral axis last.
    """
    return (third.role == "none" and third.index > max(a.index for a in pair)
            and third.name.strip().lower() in _CHANNEL_NAMES)


def layout(axes: list[Axis], spectral: int | None = None) -> Layout:
    """Decide the atomine layout from the axis roles (see the module docstring).

    ``spectral`` is the array index of an axis known to be spectral (the signal axis
    of a HyperSpy ``Signal1D``); when it has no units it becomes an uncalibrated
    ``energy`` axis counted in channels instead of being mistaken for a frame axis.
    """
    axes, drop = _squeeze(axes)
    if spectral is not None:
        for a in axes:
            if a.index == spectral and a.role == "none":
                a.role, a.units = "channel", "channel"
    roles = [a.role for a in axes]
    n = len(axes)
    recip = [a for a in axes if a.role == "reciprocal"]
    if n == 1 and roles == ["energy"]:
        return Layout(SPECTRUM, axes, ("energy",), drop)
    if n == 1 and roles == ["channel"]:
        return Layout(GENERIC, axes, ("energy",), drop)
    if n == 2 and len(recip) == 2:
        return Layout(GENERIC, axes, ("ky", "kx"), drop)
    pair = _spatial_pair(axes)
    if n == 2 and pair is not None:
        return Layout(IMAGE, pair, ("y", "x"), drop)
    if n == 3 and pair is not None:
        (third,) = [a for a in axes if a not in pair]
        if third.role == "energy":
            return Layout(SPECTRUM_IMAGE, pair + [third], ("y", "x", "energy"), drop)
        if third.role == "bias":
            return Layout(CITS, pair + [third], ("y", "x", "bias"), drop)
        if _trailing_channels(third, pair):
            third.role, third.units = "channel", "channel"
        if third.role in ("none", "time"):  # an image series: frames first, images (y, x) last
            return Layout(STACK, [third] + pair, ("frame", "y", "x"), drop)
        if third.role == "channel":  # an uncalibrated spectrum image, as atomine's array files give
            return Layout(GENERIC, pair + [third], ("y", "x", "energy"), drop)
    if n == 3 and len(recip) == 2:
        (frame,) = [a for a in axes if a not in recip]
        if frame.role in ("none", "time"):
            return Layout(GENERIC, [frame] + recip, ("frame", "ky", "kx"), drop)
    return _generic(axes, drop)


def _generic(axes: list[Axis], drop: list[int]) -> Layout:
    """Any other arrangement: array order kept, spectral axes moved last, dims named by role."""
    ordered = [a for a in axes if a.role not in _SPECTRAL_ROLES + ("channel",)]
    ordered += [a for a in axes if a.role in _SPECTRAL_ROLES + ("channel",)]
    names: dict[int, str] = {}
    for role, pool in (("length", ("x", "y", "z")), ("reciprocal", ("kx", "ky", "kz"))):
        members = [a for a in ordered if a.role == role]
        for a, dim in zip(reversed(members), pool):  # the last one in array order is the fast (x) axis
            names[a.index] = dim
    fixed = {"energy": "energy", "bias": "bias", "time": "time", "angle": "angle", "wavelength": "wavelength",
             "channel": "energy"}
    dims: list[str] = []
    for a in ordered:
        dim = names.get(a.index) or fixed.get(a.role) or _sanitise(a.name) or ("channel" if len(axes) == 1 else "frame")
        base, k = dim, 1
        while dim in dims:
            dim, k = f"{base}_{k}", k + 1
        dims.append(dim)
    return Layout(GENERIC, ordered, tuple(dims), drop)


def _sanitise(name: str) -> str:
    text = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    if not text or text[0].isdigit():
        return ""
    return text


def coord(a: Axis, dim: str) -> xr.Variable:
    """The calibrated coordinate of one axis (pixel indices when uncalibrated)."""
    long_name = a.name or None
    if a.role == "none":
        return linear_coord(a.size, 1.0, 0.0, "px", dim, long_name)
    if a.role == "channel":
        return linear_coord(a.size, 1.0, 0.0, "channel", dim, "channel (uncalibrated)")
    if a.values is not None:
        return explicit_coord(a.values, a.units, dim, long_name)
    return linear_coord(a.size, a.scale, a.offset, a.units, dim, long_name)


def arrange(data, lay: Layout):
    """Drop size-1 axes and permute ``data`` (numpy or dask) into the layout's order."""
    if lay.drop:
        index = tuple(0 if i in lay.drop else slice(None) for i in range(data.ndim))
        data = data[index]
    kept = [i for i in range(data.ndim + len(lay.drop)) if i not in lay.drop]
    perm = tuple(kept.index(i) for i in lay.order)
    if perm != tuple(range(len(perm))):
        data = data.transpose(perm)
    return data
