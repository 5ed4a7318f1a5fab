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

``signal_dict(da)`` is the HyperSpy-free core of ``to_hyperspy``: the
rosettasciio signal dictionary that ``atomine.io.export`` writes to ``.hspy`` /
``.zspy``. ``stashed_attrs`` and ``restore_attrs`` are the way back used by
``from_hyperspy`` and by the ``.hspy`` reader: atomine's attrs come back as
they were, except for the metadata that was edited in HyperSpy since.

The HyperSpy signal shares ``da``'s data buffer (no copy): in-place operations in
HyperSpy change it too. Dask-backed DataArrays give lazy signals and back.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError, MissingDependencyError
from ._hs_metadata import normalised
from .axes import uniform_axis
from .metadata import jsonable, normalise_metadata

STASH_KEY = "atomine_attrs"  # original_metadata entry holding atomine's attrs whole
_SPECTRAL_DIMS = ("energy", "bias", "channel", "wavelength")
_SIGNAL_TYPES = {"EELS": "EELS", "EDS": "EDS_TEM", "CL": "CL"}


def _hyperspy_api():
    try:
        import hyperspy.api as hs
    except ImportError as exc:
        raise MissingDependencyError(f"HyperSpy conversion needs the hyperspy package ({exc}); pip install hyperspy") from exc
    return hs


# ---------------------------------------------------------------------------------- atomine -> dict


def _axis_dict(da: xr.DataArray, dim: str, navigate: bool) -> dict[str, Any]:
    """One HyperSpy axis: uniform (scale = (last - first) / (n - 1)), explicit values, or indices for labels."""
    size = int(da.sizes[dim])
    units = str(da.coords[dim].attrs.get("units", "px")) if dim in da.coords else "px"
    out: dict[str, Any] = {"name": dim, "units": units, "navigate": navigate}
    if dim not in da.coords or not np.issubdtype(np.asarray(da.coords[dim].values).dtype, np.number):
        return {**out, "size": size, "scale": 1.0, "offset": 0.0}
    values = np.asarray(da.coords[dim].values, dtype=np.float64)
    linear = uniform_axis(values)
    if linear is None:
        return {**out, "axis": values}  # non-uniform: HyperSpy DataAxis
    offset, scale = linear
    return {**out, "size": size, "scale": scale, "offset": offset}


def _signal_dims(dims: tuple[str, ...]) -> int:
    """How many trailing dims are HyperSpy signal axes (1 or 2)."""
    if len(dims) >= 2 and dims[-2:] in (("y", "x"), ("ky", "kx")):
        return 2
    return 1


def _tree(md: dict, signal: str, units: str, name: str | None) -> dict[str, Any]:
    """HyperSpy's metadata tree for atomine's normalised metadata (HyperSpy units: kV, mrad, nA, s)."""
    tem: dict[str, Any] = {}
    for key, target, factor in (("instrument", "microscope", None), ("beam_energy_kv", "beam_energy", 1.0),
                                ("convergence_angle_mrad", "convergence_angle", 1.0),
                                ("probe_current_pa", "beam_current", 1e-3), ("dwell_time_s", "dwell_time", 1.0),
                                ("magnification", "magnification", 1.0)):
        if key in md:
            tem[target] = md[key] if factor is None else float(md[key]) * factor
    coll = md.get("collection_angle_mrad")
    if signal == "EELS" and isinstance(coll, (int, float)):
        tem.setdefault("Detector", {})["EELS"] = {"collection_angle": float(coll)}
    general: dict[str, Any] = {"title": str(md.get("title") or name or signal)}
    date = str(md.get("acquisition_date", ""))
    if date:
        general["date"], _, time = date.partition("T")
        if time:
            general["time"] = time
    if md.get("operator"):
        general["authors"] = md["operator"]
    out: dict[str, Any] = {"General": general,
                           "Signal": {"signal_type": _SIGNAL_TYPES.get(signal, ""),
                                      "quantity": f"Intensity ({units or 'counts'})"}}
    if tem:
        out["Acquisition_instrument"] = {"TEM": tem}
    sample = {k: v for k, v in (("elements", md.get("elements")), ("description", md.get("sample"))) if v}
    if sample:
        out["Sample"] = sample
    return out


def _hyperspy_metadata(da: xr.DataArray) -> dict[str, Any]:
    return _tree(da.attrs.get("metadata") or {}, str(da.attrs.get("signal", "")), da.attrs.get("units", "counts"),
                 None if da.name is None else str(da.name))


def _stash(da: xr.DataArray) -> dict[str, Any]:
    return jsonable({"name": None if da.name is None else str(da.name), "signal": da.attrs.get("signal"),
                     "units": da.attrs.get("units"), "metadata": da.attrs.get("metadata") or {},
                     "provenance": da.attrs.get("provenance") or []})


def _safe_keys(tree: Any) -> Any:
    """HDF5/Zarr group names cannot contain '/'; keys are made safe, values kept."""
    if isinstance(tree, dict):
        return {str(k).replace("/", "-") or "_": _safe_keys(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_safe_keys(v) for v in tree]
    return tree


def _check_dataarray(da, what: str) -> None:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} expects an xarray.DataArray, got {type(da).__name__}")
    if da.ndim == 0 or 0 in da.shape:
        raise InputError(f"{what}: the DataArray is empty or 0-D (shape {da.shape})")
    if np.dtype(da.dtype).kind not in "biufc":
        raise InputError(f"{what}: data of dtype {da.dtype} are not numeric")


def signal_dict(da: xr.DataArray, data=None) -> dict[str, Any]:
    """The HyperSpy / rosettasciio signal dictionary of ``da`` (HyperSpy not needed).

    Spatial dims navigate; the last one or two dims (``(y, x)``, ``(ky, kx)``) are the
    signal. Linear axes get scale = (last - first) / (n - 1) and offset; non-uniform axes
    their explicit values; label axes pixel indices. Normalised metadata go to HyperSpy's
    tree; ``original_metadata`` keeps the DataArray's own, with keys made HDF5-safe ("/" ->
    "-"), plus atomine's attrs whole under ``"atomine_attrs"`` (see :func:`restore_attrs`).

    Parameters
    ----------
    da : xarray.DataArray
        A non-empty numeric DataArray.
    data : array_like, optional
        Values to put in place of ``da.data`` (e.g. converted for a file format).

    Returns
    -------
    dict
        ``data``, ``axes`` (array order), ``metadata``, ``original_metadata``, ``attributes``
        and the empty entries rosettasciio's writers expect.

    Raises
    ------
    InputError
        ``da`` is not a non-empty numeric DataArray.
    """
    _check_dataarray(da, "signal_dict")
    n_signal = _signal_dims(tuple(str(d) for d in da.dims))
    axes = [_axis_dict(da, str(d), i < da.ndim - n_signal) for i, d in enumerate(da.dims)]
    original = dict(_safe_keys(jsonable(da.attrs.get("original_metadata") or {})))
    original[STASH_KEY] = _stash(da)
    return {
        "data": da.data if data is None else data,
        "axes": axes,
        "metadata": _hyperspy_metadata(da),
        "original_metadata": original,
        "attributes": {"_lazy": hasattr(da.data, "dask")},
        "tmp_parameters": {},
        "learning_results": {},
        "models": {},
        "package_info": {},
    }


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
    _check_dataarray(da, "to_hyperspy")
    hs = _hyperspy_api()
    sig = signal_dict(da)
    n_sig = sum(1 for a in sig["axes"] if not a["navigate"])
    cls = hs.signals.Signal2D if n_sig == 2 else hs.signals.Signal1D
    s = cls(sig["data"], axes=sig["axes"], metadata=sig["metadata"], original_metadata=sig["original_metadata"])
    stype = s.metadata.Signal.signal_type
    if stype and importlib.util.find_spec("exspy") is not None:
        s.set_signal_type(stype)  # EELSSpectrum / EDSTEMSpectrum from eXSpy
    if hasattr(da.data, "dask"):
        s = s.as_lazy()
    return s


# ---------------------------------------------------------------------------------- dict -> atomine


def stashed_attrs(original: dict | None) -> tuple[dict, dict | None]:
    """``(original_metadata without the stash, the stash or None)``; the input is not modified."""
    original = dict(original or {})
    stash = original.pop(STASH_KEY, None)
    return original, (stash if isinstance(stash, dict) and stash else None)


def restore_attrs(da: xr.DataArray, stash: dict | None, original: dict | None = None) -> xr.DataArray:
    """Put back the attrs that :func:`signal_dict` stashed; HyperSpy-side metadata edits win.

    ``da`` was built from the signal dict (its metadata derived from the HyperSpy tree
    and ``original``; its provenance the reading step). The stashed signal label, value
    units, name and provenance (followed by ``da``'s own steps) are restored. Metadata:
    the stashed values, except where the tree now says something other than what the
    writer put there from them -- those were edited in HyperSpy after the export.
    """
    if not stash:
        return da
    out = da.copy(deep=False)
    out.attrs = dict(da.attrs)
    kept = normalise_metadata(stash.get("metadata") or {})
    signal = str(_first_given(stash.get("signal"), da.attrs.get("signal"), ""))
    units = str(_first_given(stash.get("units"), da.attrs.get("units"), ""))
    written = normalise_metadata(normalised(_tree(kept, signal, units, stash.get("name")), original or {}))
    out.attrs["metadata"] = _merge_edits(kept, written, dict(da.attrs.get("metadata") or {}))
    out.attrs["signal"], out.attrs["units"] = signal, units
    # jsonable: HDF5 gives numbers back as numpy scalars
    out.attrs["provenance"] = list(jsonable(stash.get("provenance") or [])) + list(da.attrs.get("provenance") or [])
    return out.rename(str(stash["name"])) if stash.get("name") else out


def _first_given(*values):
    return next(v for v in values if v is not None)


def _merge_edits(kept: dict, written: dict, now: dict) -> dict:
    """``kept`` updated with the keys whose value in ``now`` differs from what was ``written``."""
    out = dict(kept)
    for key, value in now.items():
        if key == "extra":
            edits = {k: v for k, v in value.items() if (written.get("extra") or {}).get(k) != v}
            if edits:
                out["extra"] = {**(kept.get("extra") or {}), **edits}
        elif written.get(key) != value:
            out[key] = value
    return out


def from_hyperspy(signal) -> xr.DataArray:
    """An atomine DataArray from a HyperSpy signal (calibration, units, signal type and metadata).

    Parameters
    ----------
    signal : hyperspy.signal.BaseSignal
        Any HyperSpy signal; lazy signals give dask-backed DataArrays. A signal made by
        :func:`to_hyperspy` gets atomine's attrs back (see :func:`restore_attrs`).

    Raises
    ------
    InputError
        ``signal`` is not a HyperSpy signal.
    CalibrationError
        An axis has a zero or NaN scale.
    """
    from ._hs_dict import to_dataarray
    from .provenance import array_hash, step

    am = getattr(signal, "axes_manager", None)
    if am is None or not hasattr(signal, "data") or not hasattr(signal, "metadata"):
        raise InputError(f"from_hyperspy expects a HyperSpy signal, got {type(signal).__name__}")
    hs_axes = sorted(list(am.navigation_axes) + list(am.signal_axes), key=lambda a: a.index_in_array)
    axes = [_hs_axis_dict(a) for a in hs_axes]
    original, stash = stashed_attrs(signal.original_metadata.as_dictionary())
    spectral = am.signal_axes[0].index_in_array if am.signal_dimension == 1 else None
    data = signal.data
    lazy = hasattr(data, "dask")
    title = signal.metadata.get_item("General.title", "")
    prov = [step("from_hyperspy", {"title": title, "class": type(signal).__name__},
                 None if lazy else array_hash(np.asarray(data)))]
    sig = {"data": data, "axes": axes, "metadata": signal.metadata.as_dictionary(), "original_metadata": original}
    da = to_dataarray(sig, lazy=lazy, provenance=prov, what=f"HyperSpy signal {title!r}", spectral=spectral)
    if da is None:
        raise InputError(f"from_hyperspy: signal {title!r} holds Python objects, not numbers")
    return restore_attrs(da, stash, original)


def _hs_axis_dict(axis) -> dict[str, Any]:
    units = axis.units
    out = {"name": str(axis.name), "units": None if units is None else str(units), "navigate": bool(axis.navigate),
           "index_in_array": axis.index_in_array}
    if getattr(axis, "is_uniform", True):
        return {**out, "size": int(axis.size), "scale": float(axis.scale), "offset": float(axis.offset)}
    return {**out, "size": int(axis.size), "axis": np.asarray(axis.axis, dtype=np.float64)}
