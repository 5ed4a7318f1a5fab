"""Occupancy lattice from an atom table (or a bare occupancy array).

The atom table of :mod:`atomine.atoms` gives every column its integer site (``site_i``,
``site_j``), its ``sublattice`` and its class ``cls``. The lattice model needs one sublattice
as a grid of spins: +1 dopant, -1 host, 0 where the site is a vacancy, of unknown class, or
not in the table at all (outside the image, or dropped), so that such sites leave every
sum of the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .lattice import Lattice, check_kind, classify_basis, to_sixty_degree_basis

MASKED_LABELS = ("vacancy", "unknown")
RESIDUAL_FRACTION = 0.25  # of the lattice constant: a site further off its fitted position is misindexed
MAX_BAD_FRACTION = 0.05
_COLUMNS = ("x", "y", "site_i", "site_j", "cls")


def occupancy_lattice(atoms, *, lattice: str = "auto", sublattice: int | None = None, dopant=None,
                      min_sites: int = 16) -> Lattice:
    """The occupancy lattice (+1 dopant, -1 host, 0 masked) of one sublattice.

    Parameters
    ----------
    atoms : pandas.DataFrame or array_like
        An atom table with ``x``, ``y`` (nm), ``site_i``, ``site_j``, ``cls`` and optionally
        ``sublattice``; or a 2-D occupancy array: integers 0 host, 1 dopant, -1 vacancy /
        unknown, or booleans (True = dopant). Not modified.
    lattice : str
        ``auto``, ``square`` or ``triangular``. ``auto`` reads the kind from the lattice
        vectors fitted to the positions (an array without positions is taken as square).
        An explicit kind that the positions contradict is an error. Sites indexed on a
        120-degree basis are re-indexed to the 60-degree basis of :mod:`.lattice`.
    sublattice : int, optional
        Sublattice to use; default the one holding the most dopant rows (or the only one).
    dopant : str, optional
        The ``cls`` label of the dopant; default ``"dopant"`` if present, else the minority
        label among those that are not ``vacancy`` / ``unknown``. Every other such label is
        host; ``vacancy``, ``unknown`` and missing labels are masked.
    min_sites : int
        Fewest model (host + dopant) sites accepted.

    Returns
    -------
    Lattice
        ``spins[i - i0, j - j0]`` for each site; the grid spans the site-index range, and
        sites absent from the table are 0. ``origin`` = (i0, j0), the table's
        (site_i, site_j) of grid element [0, 0]. ``a_nm`` is the mean length of the fitted
        lattice vectors; ``periodic`` is False.

    Notes
    -----
    A table indexed on a 120-degree basis is re-indexed to the 60-degree basis: its site
    (i, j) sits at grid element (i - j - (i0 - j0), j - j0).

    Raises
    ------
    InputError
        Missing columns, NaN positions, non-integer or duplicated site indices, site indices
        that do not match the positions, an unknown lattice name or a contradicting one,
        fewer than ``min_sites`` model sites, or a single species.
    """
    if lattice != "auto":
        lattice = check_kind(lattice)
    if isinstance(min_sites, bool) or not isinstance(min_sites, (int, np.integer)) or min_sites < 1:
        raise InputError(f"min_sites must be a positive integer, got {min_sites!r}")
    if isinstance(atoms, pd.DataFrame):
        return _from_table(atoms, lattice, sublattice, dopant, int(min_sites))
    if sublattice is not None or dopant is not None:
        raise InputError("sublattice and dopant apply to atom tables; an occupancy array is already 1 = dopant")
    return _from_array(atoms, "square" if lattice == "auto" else lattice, int(min_sites))


def _from_array(occupancy, kind: str, min_sites: int) -> Lattice:
    a = np.asarray(occupancy)
    if a.ndim != 2:
        raise InputError(f"an occupancy array must be 2-D (n_i, n_j), got shape {a.shape}")
    if a.dtype == bool:
        spins = np.where(a, 1, -1).astype(np.int8)
    elif np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating):
        ok = np.isin(a, (-1, 0, 1))
        if not ok.all():
            raise InputError(f"occupancy values must be 0 (host), 1 (dopant) or -1 (vacancy / unknown); "
                             f"found {a[~ok].ravel()[0]!r}")
        spins = np.select([a == 1, a == 0], [1, -1], 0).astype(np.int8)
    else:
        raise InputError(f"occupancy must be an integer or boolean array, got dtype {a.dtype}")
    _check_species(spins, min_sites)
    return Lattice(spins=spins, kind=kind, periodic=False, origin=(0, 0), a_nm=None)


def _from_table(table: pd.DataFrame, kind: str, sublattice, dopant, min_sites: int) -> Lattice:
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"the atom table lacks column(s) {', '.join(missing)}; "
                         "it needs x, y (nm), site_i, site_j and cls (run atom classification first)")
    labels = table["cls"].to_numpy(dtype=object)
    labels = np.array([None if _missing(v) else v for v in labels], dtype=object)
    sub = _sublattice_column(table)
    named = "dopant" if dopant is None and np.any(labels == "dopant") else dopant
    if named is not None and not np.any(labels == named):
        raise InputError(f"no row has cls {named!r}; the labels are {_label_list(labels)}")
    rows = _choose_rows(sub, labels, sublattice, named)
    labels = labels[rows]
    dop = named if named is not None else _minority(labels)

    xy = table[["x", "y"]].to_numpy(dtype=np.float64)[rows]
    if not np.isfinite(xy).all():
        raise InputError("the atom table has NaN or inf positions (x, y); drop or refit those rows first")
    ij = np.column_stack([_integer_column(table, c)[rows] for c in ("site_i", "site_j")])
    if len(np.unique(ij, axis=0)) < len(ij):
        raise InputError("inconsistent site indices: several rows share one (site_i, site_j) on the sublattice; "
                         "re-run sublattice identification")
    a_i, a_j = _fit_basis(xy, ij)
    found, is_120 = classify_basis(a_i, a_j)
    if kind != "auto" and kind != found:
        raise InputError(f"lattice={kind!r} contradicts the positions, which form a {found} lattice; "
                         "use lattice='auto'")
    if is_120:
        ij = np.column_stack(to_sixty_degree_basis(ij[:, 0], ij[:, 1]))
    lo = ij.min(axis=0)
    spins = np.zeros(tuple(ij.max(axis=0) - lo + 1), dtype=np.int8)
    model = np.array([v is not None and v not in MASKED_LABELS for v in labels], dtype=bool)
    value = np.where(labels == dop, 1, -1)
    spins[ij[model, 0] - lo[0], ij[model, 1] - lo[1]] = value[model]
    _check_species(spins, min_sites)
    origin = (int(lo[0] + lo[1]), int(lo[1])) if is_120 else (int(lo[0]), int(lo[1]))
    a_nm = float((np.hypot(*a_i) + np.hypot(*a_j)) / 2)
    return Lattice(spins=spins, kind=found, periodic=False, origin=origin, a_nm=a_nm,
                   positions_nm=_grid_positions(xy, ij - lo, spins.shape))


def _grid_positions(xy: np.ndarray, cells: np.ndarray, shape) -> np.ndarray:
    """(x, y) of every grid element from the least-squares lattice r = c + i a + j b through the rows."""
    design = np.column_stack([np.ones(len(cells)), cells]).astype(np.float64)
    coef = np.linalg.lstsq(design, xy, rcond=None)[0]
    gi, gj = np.indices(shape)
    return coef[0] + gi[..., None] * coef[1] + gj[..., None] * coef[2]


def _missing(v) -> bool:
    """None, NaN or pd.NA: a class label that was never assigned."""
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # array-like labels are not missing, just odd
        return False


def _label_list(labels) -> str:
    names = sorted({str(v) for v in labels if v is not None})
    return ", ".join(names) if names else "(none)"


def _sublattice_column(table: pd.DataFrame) -> np.ndarray:
    if "sublattice" not in table.columns:
        return np.zeros(len(table), dtype=np.int64)
    sub = table["sublattice"].to_numpy()
    if not np.issubdtype(sub.dtype, np.integer):
        raise InputError("the sublattice column must hold integers")
    return sub.astype(np.int64)


def _choose_rows(sub: np.ndarray, labels: np.ndarray, sublattice, named) -> np.ndarray:
    """Boolean row selection of the sublattice to model (sublattice -1 = atoms on no site)."""
    present = np.unique(sub[sub >= 0])
    if len(present) == 0:
        raise InputError("no atom of the table is on a lattice site (all sublattice values are -1)")
    if sublattice is not None:
        if isinstance(sublattice, bool) or not isinstance(sublattice, (int, np.integer)) or sublattice not in present:
            raise InputError(f"sublattice {sublattice!r} is not in the table; it has {', '.join(map(str, present))}")
        return sub == int(sublattice)
    if named is not None:
        counts = np.array([np.count_nonzero((sub == s) & (labels == named)) for s in present])
        return sub == present[int(np.argmax(counts))]
    if len(present) > 1:
        raise InputError(f"the table has sublattices {', '.join(map(str, present))} and no 'dopant' label; "
                         "pass sublattice= and dopant= to say which to model")
    return sub == present[0]


def _minority(labels: np.ndarray):
    names, counts = np.unique(np.array([str(v) for v in labels if v is not None and v not in MASKED_LABELS]),
                              return_counts=True)
    if len(names) < 2:
        found = names[0] if len(names) else "none"
        raise InputError(f"a single species on the sublattice (cls {found}); a lattice model needs host and dopant")
    small = np.flatnonzero(counts == counts.min())
    if len(small) > 1:
        raise InputError(f"labels {', '.join(names[small])} are equally rare; pass dopant= to name the dopant")
    return names[small[0]]


def _integer_column(table: pd.DataFrame, name: str) -> np.ndarray:
    col = table[name].to_numpy()
    if np.issubdtype(col.dtype, np.integer):
        return col.astype(np.int64)
    try:
        val = col.astype(np.float64)
    except (TypeError, ValueError):
        val = np.array([np.nan])
    if not (np.isfinite(val).all() and (val == np.round(val)).all()):
        raise InputError(f"site indices must be integers; column {name} has non-integer or missing values")
    return val.astype(np.int64)


def _fit_basis(xy: np.ndarray, ij: np.ndarray):
    """Least-squares lattice vectors (nm) of site_i and site_j; error if the indices do not fit."""
    design = np.column_stack([np.ones(len(ij)), ij.astype(np.float64)])
    if len(ij) < 3 or np.linalg.matrix_rank(design) < 3:
        raise InputError("the site indices do not span a 2-D lattice (need sites off one line)")
    coef, *_ = np.linalg.lstsq(design, xy, rcond=None)
    a_i, a_j = coef[1], coef[2]
    a = (np.hypot(*a_i) + np.hypot(*a_j)) / 2
    off = np.hypot(*(xy - design @ coef).T)
    bad = np.count_nonzero(off > RESIDUAL_FRACTION * a)
    if a <= 0 or bad > MAX_BAD_FRACTION * len(ij):
        raise InputError(f"site indices do not match the positions: {bad} of {len(ij)} sites lie more than "
                         f"{RESIDUAL_FRACTION:g} a from their fitted lattice position; "
                         "re-run sublattice identification")
    return a_i, a_j


def _check_species(spins: np.ndarray, min_sites: int) -> None:
    n = int(np.count_nonzero(spins))
    if n < min_sites:
        raise InputError(f"too few sites: {n} host or dopant sites, at least {min_sites} needed")
    n_dop = int(np.count_nonzero(spins > 0))
    if n_dop == 0 or n_dop == n:
        which = "dopant" if n_dop else "host"
        raise InputError(f"a single species: all {n} model sites are {which}; a lattice model needs both")


__all__ = ["occupancy_lattice"]
