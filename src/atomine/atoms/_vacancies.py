"""Empty motif sites (vacancies) of an indexed atom table; public as ``atomine.atoms.sublattice.find_vacancies``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError
from .vector_pdf import positions

if TYPE_CHECKING:  # the dataclass lives with identify_sublattices, which imports this module
    from .sublattice import LatticeInfo


def find_vacancies(table: pd.DataFrame, info: LatticeInfo, *, extent=None, min_neighbours: int = 1) -> pd.DataFrame:
    """Empty motif sites inside the field: one row per vacancy with its predicted position.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`identify_sublattices` (``x``, ``y``, ``sublattice``, ``site_i``,
        ``site_j``; ``x_px``, ``y_px`` optional). Not modified.
    info : LatticeInfo
        The lattice returned with it.
    extent : tuple or xarray.DataArray, optional
        (x_min, x_max, y_min, y_max) in nm, or the image (its ``x``/``y`` coordinates), in
        which predicted sites must lie. Default: ``info.extent`` (the atoms' bounding box).
    min_neighbours : int
        A site counts only when at least this many of its four neighbours along +-a1, +-a2
        on the same sublattice are occupied. The default 1 keeps pairs and short rows of
        vacancies but leaves out sites in large empty regions (holes, other grains), which
        are no point defects.

    Returns
    -------
    pandas.DataFrame
        Columns ``x``, ``y`` (nm; predicted from the nearest atoms, so local strain is
        followed), ``x_px``, ``y_px`` (when the table has them), ``sublattice``,
        ``site_i``, ``site_j`` and ``cls`` = ``"vacancy"``.
    """
    need = [c for c in ("x", "y", "sublattice", "site_i", "site_j") if c not in table.columns]
    if need:
        raise InputError(f"find_vacancies needs the output of identify_sublattices; missing {', '.join(need)}")
    if not 0 <= int(min_neighbours) <= 4:
        raise InputError(f"min_neighbours must be between 0 and 4, got {min_neighbours!r}")
    xy = positions(table, "table")
    sub = table["sublattice"].to_numpy().astype(np.int64)
    ij = table[["site_i", "site_j"]].to_numpy().astype(np.int64)
    box = _extent(extent, info)
    lattice = np.array([info.a1, info.a2])
    a = np.flatnonzero((sub >= 0) & (sub < info.n_sublattices))
    rows = []
    for s in np.unique(sub[a]):
        occ = ij[a][sub[a] == s]
        lo = occ.min(axis=0)
        shape = occ.max(axis=0) - lo + 1
        grid = np.zeros(shape + 2, dtype=bool)  # one empty ring so neighbour shifts stay inside
        grid[occ[:, 0] - lo[0] + 1, occ[:, 1] - lo[1] + 1] = True
        nbrs = (grid[:-2, 1:-1].astype(int) + grid[2:, 1:-1] + grid[1:-1, :-2] + grid[1:-1, 2:])
        empty = np.argwhere(~grid[1:-1, 1:-1] & (nbrs >= int(min_neighbours))) + lo
        if empty.size:
            rows.append(np.column_stack([np.full(len(empty), s), empty]))
    columns = ["x", "y"] + (["x_px", "y_px"] if {"x_px", "y_px"} <= set(table.columns) else [])
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns}
                            | {"sublattice": pd.Series(dtype=np.int64), "site_i": pd.Series(dtype=np.int64),
                               "site_j": pd.Series(dtype=np.int64), "cls": pd.Series(dtype=object)})
    cand = np.concatenate(rows)
    s, i, j = cand[:, 0], cand[:, 1], cand[:, 2]
    pos = _predict(xy[a], sub[a], ij[a], info, lattice, s, i, j)
    inside = (pos[:, 0] >= box[0]) & (pos[:, 0] <= box[1]) & (pos[:, 1] >= box[2]) & (pos[:, 1] <= box[3])
    pos, s, i, j = pos[inside], s[inside], i[inside], j[inside]
    out = pd.DataFrame({"x": pos[:, 0], "y": pos[:, 1]})
    if "x_px" in columns:
        for ax in ("x", "y"):  # physical -> pixel map of the table itself (offset + index * scale)
            slope, icpt = np.polyfit(table[ax].to_numpy(float), table[f"{ax}_px"].to_numpy(float), 1)
            out[f"{ax}_px"] = icpt + slope * out[ax]
    out["sublattice"] = s.astype(np.int64)
    out["site_i"] = i.astype(np.int64)
    out["site_j"] = j.astype(np.int64)
    out["cls"] = "vacancy"
    return out


def _extent(extent, info: LatticeInfo) -> tuple:
    if extent is None:
        return info.extent
    if hasattr(extent, "coords") and "x" in extent.coords and "y" in extent.coords:
        x, y = np.asarray(extent["x"], float), np.asarray(extent["y"], float)
        return (x.min(), x.max(), y.min(), y.max())
    box = np.asarray(extent, dtype=float).ravel()
    if box.shape != (4,) or not np.all(np.isfinite(box)) or box[1] <= box[0] or box[3] <= box[2]:
        raise InputError("extent must be (x_min, x_max, y_min, y_max) in nm with min < max, or an image")
    return tuple(box)


def _predict(xy, sub, ij, info, lattice, s, i, j):
    """Positions (nm) of sites (s, i, j) from the nearest atoms' own positions (median of estimates)."""
    glob = info.origin + (np.column_stack([j, i]) + info.motif[s]) @ lattice
    k = min(6, xy.shape[0])
    _, nb = cKDTree(xy).query(glob, k=k)
    nb = nb.reshape(len(glob), k)
    step = np.stack([j[:, None] - ij[nb, 1], i[:, None] - ij[nb, 0]], axis=-1) + info.motif[s][:, None, :] \
        - info.motif[sub[nb]]
    est = xy[nb] + step @ lattice
    return np.median(est, axis=1)
