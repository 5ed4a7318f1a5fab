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


_CONFIRM_TILE_PX = 1024  # empty sites are refitted per image tile, so a dask image is read region by region


def confirm_vacancies(image, table: pd.DataFrame, empty: pd.DataFrame, *, invert: bool = False,
                      noise: str = "poisson", min_fraction: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Refit every empty site: a column found there was missed by the seeds, not a vacancy.

    Faint sublattices (oxygen in ABF, the dimmer oxygen in STM) lose columns to the peak finder;
    an empty-site list taken at face value would call each of them a vacancy. Each site is
    fitted at its predicted position together with the fitted columns around it (joint fit,
    neighbours subtracted); it holds a column when both the fitted amplitude and the
    disk-integrated intensity reach ``min_fraction`` of their sublattice's median. Such a column
    keeps its fit's ``fit_ok`` (a fit at a width bound is flagged, its position the predicted one).

    Parameters
    ----------
    image : xarray.DataArray or 2-D array
        The image the table was fitted in.
    table : pandas.DataFrame
        Fitted, indexed atoms (:func:`identify_sublattices` on :func:`locate_atoms`).
    empty : pandas.DataFrame
        Output of :func:`find_vacancies` (``x_px``, ``y_px``, ``sublattice``, ``site_i``, ``site_j``).
    invert, noise
        As for :func:`fit_gaussians`.
    min_fraction : float
        Smallest amplitude, as a fraction of the sublattice's median, that counts as a column.

    Returns
    -------
    found : pandas.DataFrame
        Fitted rows (the atom-table columns of ``table``) of sites that hold a column, with
        ``found_by`` = ``"lattice"``.
    vacancies : pandas.DataFrame
        The rows of ``empty`` that stay empty, with ``p_vacancy``: the posterior that the site is
        empty from its disk intensity against an occupied column (ratio 1) and an empty one (0),
        both with the sublattice's column-to-column spread (NaN where the disk leaves the field).
    """
    from .gaussian import fit_gaussians

    if not 0 < float(min_fraction) <= 1:
        raise InputError(f"min_fraction must be in (0, 1], got {min_fraction!r}")
    if not len(empty):
        return table.iloc[:0].assign(found_by=pd.Series(dtype=object)), empty
    need = [c for c in ("x_px", "y_px", "sublattice", "amplitude", "fit_ok") if c not in table.columns]
    if need or not {"x_px", "y_px"} <= set(empty.columns):
        raise InputError("confirm_vacancies needs a fitted, indexed table and empty sites with x_px, y_px")
    xy = table[["x_px", "y_px"]].to_numpy(np.float64)
    site = empty[["x_px", "y_px"]].to_numpy(np.float64)
    tree = cKDTree(xy)
    nn = float(np.median(tree.query(xy, k=2)[0][:, 1]))
    level = table[table["fit_ok"].astype(bool)].groupby("sublattice")["amplitude"].median()
    ny, nx = (image.sizes["y"], image.sizes["x"]) if hasattr(image, "sizes") else np.shape(image)
    halo = int(np.ceil(4 * nn)) + 4
    fitted = []
    tiles = np.floor(site / _CONFIRM_TILE_PX).astype(np.int64)
    for tx, ty in np.unique(tiles, axis=0):
        mine = np.flatnonzero((tiles[:, 0] == tx) & (tiles[:, 1] == ty))
        near = np.unique(np.concatenate([np.asarray(v, dtype=np.int64) for v in
                                         tree.query_ball_point(site[mine], 2.5 * nn)] + [np.zeros(0, np.int64)]))
        lo = np.floor(np.vstack([site[mine], xy[near]]).min(axis=0)).astype(int) - halo
        hi = np.ceil(np.vstack([site[mine], xy[near]]).max(axis=0)).astype(int) + halo
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0] + 1, nx), min(hi[1] + 1, ny)
        crop = (image.isel(y=slice(y0, y1), x=slice(x0, x1)) if hasattr(image, "isel")
                else np.asarray(image)[y0:y1, x0:x1])
        start = pd.DataFrame({"x_px": np.concatenate([xy[near, 0], site[mine, 0]]) - x0,
                              "y_px": np.concatenate([xy[near, 1], site[mine, 1]]) - y0})
        out = fit_gaussians(crop, start, noise=noise, invert=invert).iloc[len(near):]
        out = out.assign(x_px=out["x_px"].to_numpy() + x0, y_px=out["y_px"].to_numpy() + y0)
        if not hasattr(image, "isel"):  # a plain array is in pixel units: x, y are the crop's pixels too
            out = out.assign(x=out["x"].to_numpy() + x0, y=out["y"].to_numpy() + y0)
        out.index = empty.index[mine]
        fitted.append(out)
    fit = pd.concat(fitted).loc[empty.index]
    ref = empty["sublattice"].map(level).to_numpy(np.float64)
    # two indications, both needed: the refit's height (a fit at a width bound still measures one:
    # faint STM oxygen on sloping ground often ends there) and the disk-integrated intensity above
    # the ring between the columns, each against the sublattice's median
    disk, spread = _disk_ratio(image, table, empty, invert)
    with np.errstate(invalid="ignore"):
        # a disk cut by the field's edge cannot be measured and does not vote
        column = (fit["amplitude"].to_numpy(np.float64) >= float(min_fraction) * ref) & (
            (disk >= float(min_fraction)) | ~np.isfinite(disk))
    found = fit[column].copy()
    for c in ("sublattice", "site_i", "site_j"):
        found[c] = empty.loc[column, c].to_numpy()
    found["found_by"] = "lattice"
    # how sure "empty" is: the site's disk intensity against an occupied column's (ratio 1) and an
    # empty one's (0), both with the sublattice's column-to-column spread (equal priors)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        z0, z1 = disk / spread, (disk - 1.0) / spread
        p_empty = 1.0 / (1.0 + np.exp(0.5 * (z0 ** 2 - z1 ** 2)))
    vacancies = empty[~column].assign(p_vacancy=p_empty[~column])
    return found.reset_index(drop=True), vacancies


def _disk_ratio(image, table: pd.DataFrame, empty: pd.DataFrame, invert: bool) -> tuple[np.ndarray, np.ndarray]:
    """Disk intensity (ring background) of each empty site over its sublattice's median column, and the
    sublattice's robust spread of that ratio among its columns (1.4826 x MAD)."""
    from .intensity import column_intensity

    xy = positions(table, "table")
    radius = 0.45 * float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    both = pd.concat([table[["x_px", "y_px"]], empty[["x_px", "y_px"]]], ignore_index=True)
    value = column_intensity(image, both, radius, method="disk", background="ring",
                             polarity="dark" if invert else "bright")["intensity"].to_numpy(np.float64)
    groups = pd.Series(value[:len(table)]).groupby(table["sublattice"].to_numpy())
    level = groups.median()
    spread = groups.agg(lambda v: 1.4826 * np.nanmedian(np.abs(v - np.nanmedian(v)))) / level
    sub = empty["sublattice"]
    return value[len(table):] / sub.map(level).to_numpy(np.float64), sub.map(spread).to_numpy(np.float64)


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
