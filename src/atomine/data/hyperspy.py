"""Conversion between atomine DataArrays and HyperSpy signals (HyperSpy is optional).

``to_hyperspy(da)`` gives a ``Signal2D`` for images and diffraction patterns
(``(..., y, x)`` / ``(..., ky, kx)``) and a ``Signal1D`` for everything with a
spectral last axis (``energy``, ``bias``, ``channel``) or 1-D data; spatial dims
navigate. Axes keep atomine's calibration (nm, eV, V, 1/nm); non-uniform
coordinates become HyperSpy ``DataAxis`` objects. EELS/EDS data get
``signal_type`` "EELS" / "EDS_TEM": with eXSpy installed the signal becomes an
``EELSSpectrum`` / ``EDSTEMSpectrum``, without it a plain ``Signal1D`` carries
the type in its metadata. Normalised metadata go to HyperSpy's usual places
(``General.title``, ``Acquisition_instrument.TEM.beam_energy`` in kV, angles in
mrad, beam current in nA, dwell time in s, ``Sample.elements``); atomine's
attrs are also kept whole in ``original_metadata.atomine_attrs`` so that
``from_hyperspy(to_hyperspy(da))`` restores them.

``from_hyperspy(signal)`` applies the same axis and metadata rules as the EM
file readers (lengths -> nm, energies -> eV, spectral axis last).

The HyperSpy signal shares ``da``'s data buffer (no copy): in-place operations in
HyperSpy change it too. Dask-backed DataArrays give lazy signals and back.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError, MissingDependencyError
from .metadata import jsonable
from .provenance import array_hash, step

_STASH = "atomine_attrs"
_SPECTRAL_DIMS = ("energy", "bias", "channel", "wavelength")
_SIGNAL_TYPES = {"EELS": "EELS", "EDS": "EDS_TEM", "CL": "CL"}


def _hyperspy_api():
    try:
        import hyperspy.api as hs
    except ImportError as exc:
        raise MissingDependencyError(f"HyperSpy conversion needs the hyperspy package ({exc}); pip install hyperspy") from exc
    return hs


def _axis_dict(da: xr.DataArray, dim: str, navigate: bool) -> dict[str, Any]:
    size = int(da.sizes[dim])
    units = str(da.coords[dim].attrs.get("units", "px")) if dim in da.coords else "px"
    out: dict[str, Any] = {"name": dim, "units": units, "navigate": navigate}
    if dim not in da.coords or not np.issubdtype(np.asarray(da.coords[dim].values).dtype, np.number):
        return {**out, "size": size, "scale": 1.0, "offset": 0.0}
    values = np.asarray(da.coords[dim].values, dtype=np.float64)
    if size > 2 and not np.allclose(np.diff(values), values[1] - values[0], rtol=1e-9, atol=0.0):
        return {**out, "axis": values}  # non-uniform: HyperSpy DataAxis
    scale = float(values[1] - values[0]) if size > 1 else 1.0
    return {**out, "size": size, "scale": scale, "offset": float(values[0])}


def _signal_dims(dims: tuple[str, ...]) -> int:
    """How many trailing dims are HyperSpy signal axes (1 or 2)."""
    if len(dims) >= 2 and dims[-2:] in (("y", "x"), ("ky", "kx")):
        return 2
    return 1


def _hyperspy_metadata(da: xr.DataArray) -> dict[str, Any]:
    md = da.attrs.get("metadata") or {}
    tem: dict[str, Any] = {}
    for key, target, factor in (("instrument", "microscope", None), ("beam_energy_kv", "beam_energy", 1.0),
                                ("convergence_angle_mrad", "convergence_angle", 1.0),
                                ("probe_current_pa", "beam_current", 1e-3), ("dwell_time_s", "dwell_time", 1.0),
                                ("magnification", "magnification", 1.0)):
        if key in md:
            tem[target] = md[key] if factor is None else float(md[key]) * factor
    signal = str(da.attrs.get("signal", ""))
    coll = md.get("collection_angle_mrad")
    if signal == "EELS" and isinstance(coll, (int, float)):
        tem.setdefault("Detector", {})["EELS"] = {"collection_angle": float(coll)}
    general: dict[str, Any] = {"title": str(md.get("title") or da.name or signal)}
    date = str(md.get("acquisition_date", ""))
    if date:
        general["date"], _, time = date.partition("T")
        if time:
            general["time"] = time
    if md.get("operator"):
        general["authors"] = md["operator"]
    out: dict[str, Any] = {"General": general,
                           "Signal": {"signal_type": _SIGNAL_TYPES.get(signal, ""),
                                      "quantity": f"Intensity ({da.attrs.get('units', 'counts')})"}}
    if tem:
        out["Acquisition_instrument"] = {"TEM": tem}
    sample = {k: v for k, v in (("elements", md.get("elements")), ("description", md.get("sample"))) if v}
    if sample:
        out["Sample"] = sample
    return out


def to_hyperspy(da: xr.DataArray):
    """A HyperSpy signal with ``da``'s data, calibrated axes and metadata.

    Parameters
    ----------
    da : xarray.DataArray
        An atomine DataArray (image, spectrum image, CITS grid, spectrum or generic).

    Returns
    -------
    hyperspy.signals.Signal1D or Signal2D (lazy when ``da`` is dask-backed)

    Raises
    ------
    InputError
        ``da`` is not a non-empty numeric DataArray.
    MissingDependencyError
        HyperSpy is not installed.
    """
    if not isinstance(da, xr.DataArray):
        raise InputError(f"to_hyperspy expects an xarray.DataArray, got {type(da).__name__}")
    if da.ndim == 0 or 0 in da.shape:
        raise InputError(f"to_hyperspy: the DataArray is empty or 0-D (shape {da.shape})")
    if np.dtype(da.dtype).kind not in "biufc":
        raise InputError(f"to_hyperspy: data of dtype {da.dtype} are not numeric")
    hs = _hyperspy_api()
    n_sig = _signal_dims(tuple(da.dims))
    axes = [_axis_dict(da, d, i < da.ndim - n_sig) for i, d in enumerate(da.dims)]
    cls = hs.signals.Signal2D if n_sig == 2 else hs.signals.Signal1D
    stash = jsonable({"name": None if da.name is None else str(da.name), "signal": da.attrs.get("signal"),
                      "units": da.attrs.get("units"), "metadata": da.attrs.get("metadata") or {},
                      "provenance": da.attrs.get("provenance") or []})
    original = dict(jsonable(da.attrs.get("original_metadata") or {}))
    original[_STASH] = stash
    s = cls(da.data, axes=axes, metadata=_hyperspy_metadata(da), original_metadata=original)
    stype = s.metadata.Signal.signal_type
    if stype and importlib.util.find_spec("exspy") is not None:
        s.set_signal_type(stype)  # EELSSpectrum / EDSTEMSpectrum from eXSpy
    if hasattr(da.data, "dask"):
        s = s.as_lazy()
    return s


def from_hyperspy(signal) -> xr.DataArray:
    """An atomine DataArray from a HyperSpy signal (calibration, units, signal type and metadata).

    Parameters
    ----------
    signal : hyperspy.signal.BaseSignal
        Any HyperSpy signal; lazy signals give dask-backed DataArrays.

    Raises
    ------
    InputError
        ``signal`` is not a HyperSpy signal.
    CalibrationError
        An axis has a zero or NaN scale.
    """
    from ._hs_dict import to_dataarray

    am = getattr(signal, "axes_manager", None)
    if am is None or not hasattr(signal, "data") or not hasattr(signal, "metadata"):
        raise InputError(f"from_hyperspy expects a HyperSpy signal, got {type(signal).__name__}")
    hs_axes = sorted(list(am.navigation_axes) + list(am.signal_axes), key=lambda a: a.index_in_array)
    axes = [_hs_axis_dict(a) for a in hs_axes]
    original = signal.original_metadata.as_dictionary()
    stash = original.pop(_STASH, None) or {}
    spectral = am.signal_axes[0].index_in_array if am.signal_dimension == 1 else None
    data = signal.data
    lazy = hasattr(data, "dask")
    title = signal.metadata.get_item("General.title", "")
    prov = list(stash.get("provenance") or [])
    prov.append(step("from_hyperspy", {"title": title, "class": type(signal).__name__},
                     None if lazy else array_hash(np.asarray(data))))
    sig = {"data": data, "axes": axes, "metadata": signal.metadata.as_dictionary(), "original_metadata": original}
    da = to_dataarray(sig, lazy=lazy, provenance=prov, what=f"HyperSpy signal {title!r}", spectral=spectral)
    if da is None:
        raise InputError(f"from_hyperspy: signal {title!r} holds Python objects, not numbers")
    if stash:
        da.attrs["signal"] = stash.get("signal") or da.attrs["signal"]
        da.attrs["units"] = stash.get("units") or da.attrs["units"]
        da.attrs["metadata"] = _merge_metadata(stash.get("metadata") or {}, da.attrs["metadata"])
        if stash.get("name"):
            da = da.rename(stash["name"])
    return da


def _hs_axis_dict(axis) -> dict[str, Any]:
    units = axis.units
    out = {"name": str(axis.name), "units": None if units is None else str(units), "navigate": bool(axis.navigate),
           "index_in_array": axis.index_in_array}
    if getattr(axis, "is_uniform", True):
        return {**out, "size": int(axis.size), "scale": float(axis.scale), "offset": float(axis.offset)}
    return {**out, "size": int(axis.size), "axis": np.asarray(axis.axis, dtype=np.float64)}


def _merge_metadata(kept: dict, derived: dict) -> dict:
    """Atomine's own metadata, updated with what the HyperSpy signal now says (a title edited there wins)."""
    out = dict(kept)
    for key, value in derived.items():
        if key == "extra":
            out["extra"] = {**(kept.get("extra") or {}), **value}
        else:
            out[key] = value
    return out
