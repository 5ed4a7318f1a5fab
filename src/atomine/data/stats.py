"""Summary statistics of a signal's values, for reports, ``atomine info`` and workflow summaries."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError


def value_statistics(da: xr.DataArray) -> dict[str, float]:
    """Minimum, maximum, mean and standard deviation of the finite values (in the data's value units).

    Dask-backed data are reduced chunk-wise (one pass, nothing loaded whole).
    """
    if not isinstance(da, xr.DataArray):
        raise InputError(f"value_statistics needs an xarray.DataArray, got {type(da).__name__}")
    values = da.data
    if hasattr(values, "compute") and not isinstance(values, np.ndarray):
        import dask.array as dsa

        v = dsa.where(dsa.isfinite(values), values, np.nan).astype(np.float64)
        stats = dsa.compute(dsa.nanmin(v), dsa.nanmax(v), dsa.nanmean(v), dsa.nanstd(v))
        if not np.isfinite(stats[2]):
            raise InputError(f"{da.name}: no finite values")
    else:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise InputError(f"{da.name}: no finite values")
        stats = (v.min(), v.max(), v.mean(), v.std())
    return dict(zip(("min", "max", "mean", "std"), (float(s) for s in stats)))
