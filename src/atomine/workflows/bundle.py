"""Several signals of one acquisition as one xarray Dataset (for a single .zarr/.nc store).

Signals of one file often sit on different grids: a low-loss and a core-loss spectrum
image share y/x but not energy; an EDS map is coarser than the simultaneous HAADF
image. One Dataset has one coordinate per dimension name, so a signal whose axis
differs from an earlier signal's gets that dimension renamed ``<dim>_<signal name>``
(e.g. ``energy_EELS_LL``), and its original dimension names are kept in
``attrs["atomine_dims"]`` so a reader can restore them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError

DIMS_ATTR = "atomine_dims"


def unique_names(signals: list[xr.DataArray]) -> list[str]:
    """The signals' names, unique by numbering repeats (``HAADF``, ``HAADF_2``); unnamed ones are ``signal_<i>``."""
    names: list[str] = []
    for i, da in enumerate(signals):
        base = str(da.name) if da.name is not None else f"signal_{i}"
        name, k = base, 2
        while name in names:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def _axis(da: xr.DataArray, dim: str) -> tuple[int, np.ndarray | None, str]:
    values = np.asarray(da.coords[dim].values) if dim in da.coords else None
    units = str(da.coords[dim].attrs.get("units", "")) if dim in da.coords else ""
    return int(da.sizes[dim]), values, units


def _same_axis(a: tuple, b: tuple) -> bool:
    (na, va, ua), (nb, vb, ub) = a, b
    if na != nb or ua != ub or (va is None) != (vb is None):
        return False
    return va is None or bool(np.array_equal(va, vb))


def signals_dataset(signals: list[xr.DataArray]) -> xr.Dataset:
    """One Dataset whose data variables are ``signals`` (keyed by unique names; attrs kept).

    A dimension whose axis (size, coordinate values or units) differs from the same-named
    axis of an earlier signal is renamed ``<dim>_<name>`` for that signal, and the signal's
    original dims are recorded in ``attrs["atomine_dims"]``. Axes are never merged or
    re-gridded: every signal keeps its own values and calibration exactly.

    Raises
    ------
    InputError
        When the list is empty or holds something other than DataArrays.
    """
    signals = list(signals)
    if not signals or not all(isinstance(s, xr.DataArray) for s in signals):
        raise InputError("signals_dataset needs a non-empty list of xarray.DataArray")
    names = unique_names(signals)
    first_axis: dict[str, tuple] = {}
    variables: dict[str, xr.DataArray] = {}
    for name, da in zip(names, signals):
        renames = {}
        for d in da.dims:
            axis = _axis(da, str(d))
            if d not in first_axis:
                first_axis[d] = axis
            elif not _same_axis(first_axis[d], axis):
                renames[d] = f"{d}_{name}"
        if renames:
            original = [str(d) for d in da.dims]
            da = da.rename(renames)
            da.attrs = {**da.attrs, DIMS_ATTR: original}
        variables[name] = da.rename(name)
    # join="exact" is a safety net: after the renames no axis may be unioned with NaN fill.
    try:
        aligned = xr.align(*variables.values(), join="exact")
        return xr.Dataset(dict(zip(variables, aligned)))
    except ValueError as exc:  # e.g. two signals with clashing non-index coordinates
        raise InputError(f"signals {names} cannot share one store ({exc}); write one at a time "
                         "(CLI: --signal NAME)") from exc
