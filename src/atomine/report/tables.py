"""Tables for the report and the CLI: calibration, metadata, parameters, DataFrames as HTML.

Everything here returns pandas DataFrames (or HTML built from them) with the units
in the column names or in a ``units`` column, never bare numbers.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..data import axis_offset, axis_scale, axis_units, signal_kind
from ..data.stats import value_statistics  # noqa: F401  (re-exported: report and CLI tables use it)
from ..errors import InputError

# Relative deviation from a constant step above which an axis is reported as non-uniform.
_UNIFORM_RTOL = 1e-6


def _require_dataarray(da, what: str) -> None:
    if not isinstance(da, xr.DataArray):
        raise InputError(f"{what} needs an xarray.DataArray, got {type(da).__name__}")


def axis_is_uniform(da: xr.DataArray, dim: str) -> bool:
    """True when the coordinate along ``dim`` has a constant step (within 1e-6 relative)."""
    if dim not in da.coords:
        return True
    c = np.asarray(da.coords[dim].values, dtype=np.float64)
    if c.size < 3:
        return True
    d = np.diff(c)
    return bool(np.all(np.abs(d - d.mean()) <= _UNIFORM_RTOL * max(abs(d.mean()), 1e-300)))


def calibration_table(da: xr.DataArray) -> pd.DataFrame:
    """One row per dimension: size, offset, scale, units, long name, whether the step is uniform.

    Offset is the coordinate of index 0 and scale the mean step, both in ``units``.
    Dimensions without a coordinate are reported in pixels.
    """
    _require_dataarray(da, "calibration_table")
    rows = []
    for dim in da.dims:
        n = int(da.sizes[dim])
        if dim in da.coords and np.issubdtype(da.coords[dim].dtype, np.number):
            rows.append({
                "dim": str(dim), "size": n, "offset": axis_offset(da, dim), "scale": axis_scale(da, dim),
                "units": axis_units(da, dim) or "", "long_name": str(da.coords[dim].attrs.get("long_name", "")),
                "uniform": axis_is_uniform(da, dim),
            })
        else:
            rows.append({"dim": str(dim), "size": n, "offset": 0.0, "scale": 1.0, "units": "px",
                         "long_name": "", "uniform": True})
    return pd.DataFrame(rows, columns=["dim", "size", "offset", "scale", "units", "long_name", "uniform"])


# Units of the atom-table columns fixed by the data conventions; others are read from a unit suffix.
_COLUMN_UNITS = {"x": "nm", "y": "nm", "x_err": "nm", "y_err": "nm", "pos_err": "nm", "sigma_x": "nm",
                 "sigma_y": "nm", "x_px": "px", "y_px": "px", "theta": "rad"}
_SUFFIX_UNITS = {"_nm": "nm", "_pm": "pm", "_ev": "eV", "_v": "V", "_a": "A", "_deg": "deg", "_rad": "rad",
                 "_mrad": "mrad", "_kv": "kV", "_s": "s"}


def column_units(df: pd.DataFrame) -> dict[str, str]:
    """Units of a table's columns from the atomine conventions (x, y in nm, ...) or a unit suffix (``_ev``)."""
    units = {}
    for c in df.columns:
        name = str(c)
        if name in _COLUMN_UNITS:
            units[name] = _COLUMN_UNITS[name]
            continue
        for suffix, unit in _SUFFIX_UNITS.items():
            if name.lower().endswith(suffix):
                units[name] = unit
                break
    return units


def _value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_value_text(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def metadata_table(da: xr.DataArray) -> pd.DataFrame:
    """Key/value rows: signal, kind, shape, dtype, value units and the normalised metadata."""
    _require_dataarray(da, "metadata_table")
    rows = [
        ("name", str(da.name)),
        ("signal", str(da.attrs.get("signal", ""))),
        ("kind", signal_kind(da)),
        ("shape", " x ".join(str(s) for s in da.shape)),
        ("dims", ", ".join(str(d) for d in da.dims)),
        ("dtype", str(da.dtype)),
        ("value units", str(da.attrs.get("units", "")) or "(none)"),
    ]
    meta = da.attrs.get("metadata") or {}
    if isinstance(meta, str):  # stores may keep it as JSON text
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            meta = {"metadata": meta}
    for key, value in meta.items():
        if key == "extra":
            continue
        rows.append((str(key), _value_text(value)))
    return pd.DataFrame(rows, columns=["key", "value"])


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


def parameters_table(parameters: dict) -> pd.DataFrame:
    """Nested parameters flattened to ``a.b.c`` keys, one row each (units are in the key names)."""
    if not isinstance(parameters, dict):
        raise InputError(f"parameters_table needs a dict, got {type(parameters).__name__}")
    return pd.DataFrame([(k, _value_text(v)) for k, v in _flatten(parameters)], columns=["parameter", "value"])


def dataframe_html(df: pd.DataFrame, *, units: dict[str, str] | None = None, max_rows: int = 40,
                   index: bool = False) -> str:
    """An escaped HTML table; ``units`` maps column -> unit, shown as ``"col (unit)"`` in the header."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"dataframe_html needs a pandas DataFrame, got {type(df).__name__}")
    if max_rows < 1:
        raise InputError(f"max_rows must be at least 1, got {max_rows}")
    shown = df.head(max_rows)
    if units:
        shown = shown.rename(columns={c: f"{c} ({u})" for c, u in units.items() if u and c in shown.columns})
    table = shown.to_html(index=index, escape=True, border=0, classes="data",
                          float_format=lambda v: f"{v:.5g}", na_rep="")
    more = len(df) - len(shown)
    if more > 0:
        table += f'<p class="note">{more} more row(s) not shown ({len(df)} in all).</p>'
    return table
