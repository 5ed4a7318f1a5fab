"""Hollow sites of an indexed lattice: where sub-surface atoms sit under an STM topograph.

In STM of a perovskite (001) surface (the seed case, La5/8Ca3/8MnO3) the imaged features are
surface oxygen; the A cations that carry the doping (La or Ca) lie below the hollows between
them and show only as broad, shallow bumps or dips. They are not columns the finder can seed,
so their sites are predicted from the lattice of the imaged atoms: the points of the unit
cell farthest from every imaged motif position. A square O1/O2 lattice has two such families
(the A site and the unimaged B site, equally hollow); the one that carries the doping is the
family whose local heights spread most (:func:`dopant_hollow`), since host and dopant differ
there while the other family only sees noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..errors import InputError
from .vector_pdf import positions

if TYPE_CHECKING:
    from .sublattice import LatticeInfo

_GRID = 48  # fractional grid (per cell axis) searched for the hollow points
_TIE = 0.97  # a point counts as hollow within 3 % of the largest clearance


def hollow_fractions(info: LatticeInfo) -> np.ndarray:
    """Fractional positions (u along a1, v along a2) of the unit cell's hollow points.

    The hollow points are the local maxima of the distance to the nearest imaged motif position
    (periodic images included) that come within 3 % of the largest such distance.
    """
    lattice = np.array([info.a1, info.a2], dtype=np.float64)
    motif = np.asarray(info.motif, dtype=np.float64).reshape(-1, 2)
    g = (np.arange(_GRID) + 0.0) / _GRID
    uu, vv = np.meshgrid(g, g, indexing="ij")
    frac = np.column_stack([uu.ravel(), vv.ravel()])
    shifts = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], dtype=np.float64)
    images = (motif[:, None, :] + shifts[None]).reshape(-1, 2) @ lattice
    clearance = cKDTree(images).query(frac @ lattice)[0].reshape(_GRID, _GRID)
    peak = clearance >= _TIE * clearance.max()
    # local maxima on the periodic grid (a plateau of ties keeps its first point)
    nbr = np.max([np.roll(clearance, (a, b), axis=(0, 1)) for a in (-1, 0, 1) for b in (-1, 0, 1)
                  if (a, b) != (0, 0)], axis=0)
    cand = np.argwhere(peak & (clearance >= nbr))
    out: list[np.ndarray] = []
    for c in cand / _GRID:
        if not any(np.all(np.abs(((c - o) + 0.5) % 1.0 - 0.5) < 2.0 / _GRID) for o in out):
            out.append(c)
    return np.array(out)


def hollow_sites(table: pd.DataFrame, info: LatticeInfo, fraction, *, extent=None) -> pd.DataFrame:
    """One row per cell of the indexed lattice for the hollow point at ``fraction``, inside the field.

    Positions are predicted from the six nearest imaged atoms (median of their estimates), so
    drift and local strain are followed. Sites with fewer than six imaged atoms within 1.5
    lattice constants (beyond the field's edge) are left out; a site in a hole of a few missing
    atoms (e.g. over a sub-surface vacancy) keeps enough.

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y`` (nm), ``x_px``, ``y_px`` (when the table has them), ``site_i``, ``site_j``.
    """
    need = [c for c in ("x", "y", "sublattice", "site_i", "site_j") if c not in table.columns]
    if need:
        raise InputError(f"hollow_sites needs the output of identify_sublattices; missing {', '.join(need)}")
    h = np.asarray(fraction, dtype=np.float64).reshape(2)
    lattice = np.array([info.a1, info.a2], dtype=np.float64)
    motif = np.asarray(info.motif, dtype=np.float64).reshape(-1, 2)
    sub = table["sublattice"].to_numpy().astype(np.int64)
    keep = (sub >= 0) & (sub < len(motif))
    xy = positions(table, "table")[keep]
    sub = sub[keep]
    ij = table[["site_i", "site_j"]].to_numpy().astype(np.int64)[keep]
    if len(xy) < 6:
        raise InputError("hollow_sites needs at least 6 indexed atoms")
    ii, jj = np.meshgrid(np.arange(ij[:, 0].min() - 1, ij[:, 0].max() + 2),
                         np.arange(ij[:, 1].min() - 1, ij[:, 1].max() + 2), indexing="ij")
    i, j = ii.ravel(), jj.ravel()
    guess = info.origin + (np.column_stack([j, i]) + h) @ lattice
    tree = cKDTree(xy)
    _, nb = tree.query(guess, k=6)
    step = np.stack([j[:, None] - ij[nb, 1], i[:, None] - ij[nb, 0]], axis=-1) + h - motif[sub[nb]]
    pos = np.median(xy[nb] + step @ lattice, axis=1)
    a = float(np.min(np.linalg.norm(lattice, axis=1)))
    surrounded = np.array([len(v) for v in tree.query_ball_point(pos, 1.5 * a)]) >= 6
    box = _box(extent, xy)
    inside = (pos[:, 0] >= box[0]) & (pos[:, 0] <= box[1]) & (pos[:, 1] >= box[2]) & (pos[:, 1] <= box[3])
    ok = surrounded & inside
    out = pd.DataFrame({"x": pos[ok, 0], "y": pos[ok, 1]})
    if {"x_px", "y_px"} <= set(table.columns):
        for ax in ("x", "y"):  # physical -> pixel map of the table itself (offset + index * scale)
            slope, icpt = np.polyfit(table[ax].to_numpy(float), table[f"{ax}_px"].to_numpy(float), 1)
            out[f"{ax}_px"] = icpt + slope * out[ax]
    out["site_i"] = i[ok].astype(np.int64)
    out["site_j"] = j[ok].astype(np.int64)
    return out


def _box(extent, xy) -> tuple[float, float, float, float]:
    if extent is not None and hasattr(extent, "coords"):
        x, y = np.asarray(extent["x"], float), np.asarray(extent["y"], float)
        return (x.min(), x.max(), y.min(), y.max())
    return (xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max())


def site_heights(image, sites: pd.DataFrame, radius_nm: float) -> np.ndarray:
    """Mean image value in a disk of ``radius_nm`` around each site (NaN where the disk leaves the image)."""
    from .intensity import column_intensity

    if not len(sites):
        return np.zeros(0)
    measured = column_intensity(image, sites[["x_px", "y_px"]], radius_nm, method="disk", background=None,
                                polarity="bright")
    # the disk sum times the pixel area over the disk area is the mean value in the disk
    return measured["intensity"].to_numpy(np.float64) / (np.pi * radius_nm ** 2)


def dopant_hollow(heights: list[np.ndarray]) -> int:
    """Index of the hollow family whose heights spread most.

    The spread is the interquartile range: a dopant family is a two-level mixture whose quartiles
    straddle the gap (a median absolute deviation would stay inside the majority level), and a
    few outliers (vacancies, adsorbates) do not decide it."""
    spread = [float(np.subtract(*np.nanpercentile(h, [75, 25]))) if np.isfinite(h).sum() > 3 else -1.0
              for h in heights]
    return int(np.argmax(spread))


def classify_hollow_sites(image, table: pd.DataFrame, info: LatticeInfo, *, radius_fraction: float = 0.35,
                          random_state=0) -> tuple[pd.DataFrame, dict]:
    """Sub-surface sites under an imaged lattice, classified host / dopant / vacancy by local height.

    Every hollow family of the lattice (:func:`hollow_fractions`) is predicted
    (:func:`hollow_sites`) and its mean height in a disk of ``radius_fraction`` x the shortest
    lattice vector measured (:func:`site_heights`); heights are taken relative to the host
    neighbours (additive: STM apparent height) and the family that spreads most is the doped one
    (:func:`dopant_hollow`). Its sites are classified by a Gaussian mixture with a vacancy
    component sought below the host (:func:`~atomine.atoms.classify.classify_host_referenced`).

    Returns
    -------
    sites : pandas.DataFrame
        ``x``, ``y``, ``x_px``, ``y_px``, ``site_i``, ``site_j``, ``intensity`` (mean height, image
        units), ``intensity_norm`` (relative to host neighbours), ``cls``, ``p_cls``.
    info : dict
        ``fraction`` (u, v) of the chosen family, ``candidates``, ``spread`` per family (image
        units) and the mixture's ``classification``.
    """
    from .classify import classify_host_referenced

    if not 0 < float(radius_fraction) <= 0.5:
        raise InputError(f"radius_fraction must be in (0, 0.5], got {radius_fraction!r}")
    radius = float(radius_fraction) * float(np.min(np.linalg.norm([info.a1, info.a2], axis=1)))
    fractions = hollow_fractions(info)
    families = []
    for h in fractions:
        sites = hollow_sites(table, info, h, extent=image)
        sites["intensity"] = site_heights(image, sites, radius)
        families.append(sites)
    # raw heights: both families see the same slow background (1/f noise, tilt), while relative to
    # neighbours a dopant cluster would flatten to its own level; the doped family carries each
    # dopant's full bump, the other only the shared flanks of its neighbours' bumps
    spread = [sites["intensity"].to_numpy(np.float64) for sites in families]
    k = dopant_hollow(spread)
    chosen = families[k].assign(sublattice=0)
    # first pass on the heights themselves: a dopant bump (~1e-2 nm) stands above the slow background,
    # while neighbours inside a dopant cluster would make the cluster its own reference
    classified = classify_host_referenced(chosen, "intensity", how="difference", start="global", iterations=3,
                                          vacancy=True, vacancy_level=None, random_state=random_state)
    details = {"fraction": fractions[k].tolist(), "candidates": fractions.tolist(),
               "spread": [float(np.subtract(*np.nanpercentile(v, [75, 25]))) if np.isfinite(v).sum() > 3
                          else None for v in spread],
               "radius_nm": radius, "classification": classified.attrs.get("classification", {}).get(0, {})}
    return classified.drop(columns=["sublattice"]), details


__all__ = ["hollow_fractions", "hollow_sites", "site_heights", "dopant_hollow", "classify_hollow_sites"]
