"""Faint sublattices the peak finder only sampled: found from the unassigned atoms, then completed.

In HAADF the oxygen columns of a perovskite scatter ~15 times less than the cations; the
seeds catch only some of them, too few for the motif of :func:`identify_sublattices` (which
keeps a site only with a fifth of the fullest site's atoms), so they stay unassigned. When
the unassigned atoms sit at one fractional position of the cell (measured locally, from the
nearest atom of sublattice 0, so drift and strain do not smear it), that position is a motif
site of its own: every one of its sites in the field is refitted (:func:`confirm_vacancies`),
and the sublattice is kept only when most of its sites then hold a column (a crystal's
sublattice is occupied; a handful of stray atoms at one offset are not one).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ._vacancies import confirm_vacancies, find_vacancies
from .vector_pdf import positions

_MIN_ATOMS = 20  # unassigned atoms needed before a sparse sublattice is sought
_MIN_SHARE = 0.25  # a sparse site must hold this share of the unassigned atoms
_TOL_FRACTION = 0.08  # cluster radius in fractional coordinates (of the longer cell vector)
_MIN_OCCUPANCY = 0.5  # after refitting, at least this share of its sites must hold a column


def complete_sparse_sublattices(image, table: pd.DataFrame, info, *, invert: bool = False,
                                noise: str = "poisson") -> tuple[pd.DataFrame, object, list[dict]]:
    """Add the faint sublattices among the unassigned atoms, with their missed columns refitted.

    Parameters
    ----------
    image : xarray.DataArray or 2-D array
    table : pandas.DataFrame
        Fitted atoms indexed by :func:`identify_sublattices` (``sublattice`` -1 = unassigned).
    info : LatticeInfo
    invert, noise
        As for the fits.

    Returns
    -------
    table : pandas.DataFrame
        The atoms with sparse sublattices numbered after the others and the refitted columns
        appended (``found_by`` = ``"lattice"``; seeded atoms ``"peak"``).
    info : LatticeInfo
        With the new motif sites and counts.
    report : list of dict
        Per candidate site: fractional position, seeded atoms, refitted columns, empty sites,
        occupancy and whether it was kept.
    """
    out = table.assign(found_by=table.get("found_by", "peak"))
    sub = out["sublattice"].to_numpy()
    un = np.flatnonzero(sub == -1)
    ref = np.flatnonzero(sub == 0)
    if un.size < max(_MIN_ATOMS, 0.03 * len(out)) or ref.size < 4:
        return out, info, []
    xy = positions(out, "table")
    basis = np.array([info.a1, info.a2], dtype=np.float64)
    inv = np.linalg.inv(basis)
    _, near = cKDTree(xy[ref]).query(xy[un])
    anchor = ref[near]
    d = (xy[un] - xy[anchor]) @ inv  # local offset from the nearest sublattice-0 atom, in cells
    frac = np.mod(info.motif[0] + d, 1.0)
    report: list[dict] = []
    for site in _clusters(frac, _MIN_SHARE * un.size):
        dd = np.mod(frac - site + 0.5, 1.0) - 0.5
        members = np.hypot(*dd.T) < _TOL_FRACTION
        s_new = info.n_sublattices
        whole = info.motif[0] + d[members]  # the atom's position from its anchor's cell
        cell = np.floor(np.round(whole - site, 6) + 0.5).astype(np.int64) + np.floor(site).astype(np.int64)
        trial = out.copy()
        idx = un[members]
        trial.loc[trial.index[idx], "sublattice"] = s_new
        trial.loc[trial.index[idx], "site_i"] = out["site_i"].to_numpy()[anchor[members]] + cell[:, 1]
        trial.loc[trial.index[idx], "site_j"] = out["site_j"].to_numpy()[anchor[members]] + cell[:, 0]
        trial_info = dataclasses.replace(
            info, motif=np.vstack([info.motif, np.mod(site, 1.0)]),
            counts=np.append(info.counts, int(members.sum())),
            mean_intensity=np.append(info.mean_intensity, np.nan), n_unassigned=int(info.n_unassigned - members.sum()))
        empty = find_vacancies(trial, trial_info, extent=image, min_neighbours=0)
        empty = empty[empty["sublattice"] == s_new]
        found, left = confirm_vacancies(image, trial, empty, invert=invert, noise=noise)
        n_sites = int(members.sum()) + len(found) + len(left)
        occupancy = (int(members.sum()) + len(found)) / n_sites if n_sites else 0.0
        keep = occupancy >= _MIN_OCCUPANCY
        report.append({"fraction": np.mod(site, 1.0).tolist(), "seeded": int(members.sum()), "refitted": len(found),
                       "empty": len(left), "occupancy": occupancy, "kept": keep})
        if keep:
            out = pd.concat([trial, found], ignore_index=True)
            counts = trial_info.counts.copy()
            counts[-1] += len(found)
            info = dataclasses.replace(trial_info, counts=counts)
            sub = out["sublattice"].to_numpy()
            un = np.flatnonzero(sub == -1)
            if un.size < _MIN_ATOMS:
                break
            _, near = cKDTree(xy[ref]).query(positions(out, "table")[un])
            anchor = ref[near]
            d = (positions(out, "table")[un] - xy[anchor]) @ inv
            frac = np.mod(info.motif[0] + d, 1.0)
    return out, info, report


def _clusters(frac: np.ndarray, min_count: float) -> list[np.ndarray]:
    """Centres of dense clusters of periodic fractional coordinates, densest first."""
    tree = cKDTree(frac, boxsize=1.0)
    counts = tree.query_ball_point(frac, _TOL_FRACTION, return_length=True)
    free = np.ones(len(frac), bool)
    out = []
    while free.any():
        best = np.flatnonzero(free)[np.argmax(counts[free])]
        if counts[best] < max(min_count, 5):
            break
        dd = np.mod(frac - frac[best] + 0.5, 1.0) - 0.5
        members = np.hypot(*dd.T) < _TOL_FRACTION
        centre = frac[best] + dd[members].mean(axis=0)
        out.append(centre)
        dd = np.mod(frac - centre + 0.5, 1.0) - 0.5
        free &= np.hypot(*dd.T) >= 2 * _TOL_FRACTION
    return out


__all__ = ["complete_sparse_sublattices"]
