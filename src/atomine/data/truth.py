"""Ground-truth record returned by the simulators next to the data they make."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import xarray as xr


@dataclass
class GroundTruth:
    """What a simulator put into its data, for checking analyses against.

    Attributes
    ----------
    kind : str
        Simulator name (e.g. ``"stem"``, ``"stm"``, ``"eels"``, ``"cits"``).
    parameters : dict
        Every parameter of the simulation, JSON-serialisable, physical units in the key names.
    tables : dict of str -> pandas.DataFrame
        Per-object tables (e.g. ``"atoms"``: one row per column with x, y in nm, Z, sublattice,
        site_i, site_j, cls).
    maps : xarray.Dataset
        Per-pixel truth maps on the data's (y, x) grid (e.g. phase label, abundances, displacement).
    """

    kind: str
    parameters: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    maps: xr.Dataset = field(default_factory=xr.Dataset)


@dataclass
class Simulation:
    """A simulated dataset and its ground truth.

    ``data`` is the main signal; ``extra`` holds simultaneous signals (e.g. the ADF
    image acquired with a spectrum image), keyed by name.
    """

    data: xr.DataArray
    truth: GroundTruth
    extra: dict[str, xr.DataArray] = field(default_factory=dict)

    def signals(self) -> list[xr.DataArray]:
        """The main signal followed by the simultaneous ones."""
        return [self.data, *self.extra.values()]
