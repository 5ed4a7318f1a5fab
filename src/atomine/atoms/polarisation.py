"""Polarisation of perovskite-like lattices: B-site displacement from the centre of its A-site cage.

For every B-site column the four A-site columns at the corners of its cell (found from the
lattice indices, not from distances, so a large displacement cannot pick a wrong
neighbour) define the cage centre; the polarisation is stored, as DESIGN.md fixes, as
the B-site displacement (dx, dy) = r_B - centre in pm, x right and y down. The
direction ``angle_deg`` is counter-clockwise as displayed from +x (atan2(-dy, dx)), like
rotations elsewhere in atomine.

Which corners form the cage is read from the data: the median offset of B from the A site
with the same (site_i, site_j), in units of the A lattice vectors, is about (1/2, 1/2)
modulo whole cells, and its integer part says which four A sites surround each B.

Uncertainties: the 1-sigma of dx (dy) is sqrt(x_err_B^2 + sum_k x_err_Ak^2 / 16) for the
full cage (positions independent), converted to pm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..data import step
from ..errors import InputError
from .lattice_strain import SiteIndex, atom_map, select_rows, usable_atoms

_CENTRE_TOLERANCE = 0.2  # fractional distance from the cell centre (1/2, 1/2) still accepted as a B site


def polarisation(table: pd.DataFrame, *, a_site: int = 0, b_site: int | None = None,
                 allow_partial_cage: bool = False) -> pd.DataFrame:
    """B-site displacement (dx, dy) in pm from the centre of its four A-site neighbours.

    Parameters
    ----------
    table : pandas.DataFrame
        Atom table (DESIGN.md) with ``x``, ``y`` (nm), ``sublattice``, ``site_i``, ``site_j``
        and ``x_err``, ``y_err`` (1-sigma, nm; without them the errors are NaN). Rows with
        ``fit_ok`` False or ``cls == "vacancy"`` are ignored (a missing cage corner).
    a_site : int
        Sublattice of the A sites. Default 0: the brightest, which is the A site (the heavy
        cation column) in HAADF; give it explicitly for ABF or other contrasts.
    b_site : int, optional
        Sublattice of the B sites. Default: the one other sublattice whose columns sit at the
        centre (1/2, 1/2) of the A cell (the anion-only columns sit at (1/2, 0) and (0, 1/2)).
    allow_partial_cage : bool
        If True, a B site missing one or two cage corners still gets a displacement when one
        diagonal of its cage is complete (the centre of a parallelogram is the midpoint of
        either diagonal). If False (default), any missing corner gives NaN.

    Returns
    -------
    pandas.DataFrame
        One row per usable B site: ``atom`` (the input row's index label), ``site_i``,
        ``site_j``, ``x``, ``y`` (nm, the B column), ``dx_pm``, ``dy_pm``, ``dx_err_pm``,
        ``dy_err_pm``, ``p_pm`` (|d|) and ``p_err_pm``, ``angle_deg`` (counter-clockwise as
        displayed from +x) and ``angle_err_deg``, ``n_cage`` (A corners found, 0-4) and ``ok``
        (a displacement was computed). ``attrs`` hold ``units``, ``a_site``, ``b_site``,
        ``cage_offset`` (the fractional B offset in the A cell) and ``provenance``.

    Notes
    -----
    ``p_pm`` is biased upward where the displacement is comparable to its error (the
    magnitude of a noisy vector); average dx, dy over a domain before taking magnitudes.
    """
    atoms = usable_atoms(table)
    subs = sorted(set(atoms["sublattice"].tolist()))
    if a_site not in subs:
        raise InputError(f"a_site {a_site!r} is not a sublattice of this table (usable sublattices: {subs})")
    is_a = atoms["sublattice"] == a_site
    a = select_rows(atoms, is_a)
    a_index = SiteIndex(a["site_i"], a["site_j"])
    basis = _a_basis(a, a_index)
    offsets = {s: _fractional_offset(atoms, s, a, a_index, basis) for s in subs if s != a_site}
    b_site = _choose_b(offsets, b_site, a_site, subs)
    frac = offsets[b_site]
    if frac is None or np.max(np.abs(frac - np.floor(frac) - 0.5)) > _CENTRE_TOLERANCE:
        raise InputError(f"sublattice {b_site} does not sit at the centre of the A-site cell (fractional offset "
                         f"{None if frac is None else np.round(frac, 2).tolist()}); choose a_site and b_site")
    is_b = atoms["sublattice"] == b_site
    b = select_rows(atoms, is_b)
    d, var, n_cage, ok = _cage_displacement(a, a_index, b, np.floor(frac).astype(np.int64), allow_partial_cage)
    out = _as_table(b, d, var, n_cage, ok)
    out.attrs = {"units": {"x": "nm", "y": "nm", "dx_pm": "pm", "dy_pm": "pm", "dx_err_pm": "pm", "dy_err_pm": "pm",
                           "p_pm": "pm", "p_err_pm": "pm", "angle_deg": "deg", "angle_err_deg": "deg"},
                 "a_site": int(a_site), "b_site": int(b_site), "cage_offset": [float(v) for v in frac],
                 "sign_convention": "B-site displacement from the A-cage centre; x right, y down; angle "
                                    "counter-clockwise as displayed from +x",
                 "provenance": list(table.attrs.get("provenance", [])) + [step("atoms.polarisation", {
                     "a_site": int(a_site), "b_site": int(b_site), "allow_partial_cage": bool(allow_partial_cage)})]}
    return out


def polarisation_map(pol: pd.DataFrame, *, grid=None) -> xr.Dataset:
    """Polarisation of :func:`polarisation` as maps (``dx_pm``, ``dy_pm``, their errors, ``p_pm``, ``angle_deg``).

    ``grid``: None for the (site_i, site_j) grid with 2D ``x``, ``y`` coords in nm; a spacing in
    nm or an image DataArray for a (y, x) grid in nm (see ``atom_map``). Magnitude and angle
    are computed from the mapped dx, dy, so interpolation never averages angles across +-180.
    """
    ds = atom_map(pol, ["dx_pm", "dy_pm", "dx_err_pm", "dy_err_pm"], grid=grid)
    ds["p_pm"] = np.hypot(ds["dx_pm"], ds["dy_pm"]).assign_attrs(units="pm")
    ds["angle_deg"] = np.degrees(np.arctan2(-ds["dy_pm"], ds["dx_pm"])).assign_attrs(
        units="deg", long_name="direction, counter-clockwise as displayed from +x")
    return ds


# --- the A lattice and the cage ----------------------------------------------------------------
def _a_basis(a, index: SiteIndex) -> np.ndarray:
    """Median A lattice (columns: one step in site_j, one step in site_i), nm."""
    cols = []
    for di, dj in ((0, 1), (1, 0)):
        nb = index.find(a["site_i"] + di, a["site_j"] + dj)
        has = nb >= 0
        if not np.any(has):
            raise InputError("the A sublattice has no neighbouring sites along site_i or site_j; cannot find its cell")
        cols.append([np.median(a["x"][nb[has]] - a["x"][has]), np.median(a["y"][nb[has]] - a["y"][has])])
    basis = np.array(cols).T
    if abs(np.linalg.det(basis)) < 1e-12:
        raise InputError("the A sublattice's lattice vectors are collinear; check the site assignment")
    return basis


def _fractional_offset(atoms, s, a, a_index, basis):
    """Median offset of sublattice s from the A site with the same indices, in A-lattice units (j, i)."""
    sel = atoms["sublattice"] == s
    partner = a_index.find(atoms["site_i"][sel], atoms["site_j"][sel])
    has = partner >= 0
    if not np.any(has):
        return None
    d = np.array([np.median(atoms["x"][sel][has] - a["x"][partner[has]]),
                  np.median(atoms["y"][sel][has] - a["y"][partner[has]])])
    return np.linalg.solve(basis, d)


def _choose_b(offsets, b_site, a_site, subs) -> int:
    if b_site is not None:
        if b_site not in offsets:
            raise InputError(f"b_site {b_site!r} must be a sublattice other than a_site {a_site} "
                             f"(usable sublattices: {subs})")
        return b_site
    centred = [s for s, f in offsets.items()
               if f is not None and np.max(np.abs(f - np.floor(f) - 0.5)) <= _CENTRE_TOLERANCE]
    if len(centred) != 1:
        found = {s: (None if f is None else np.round(f, 2).tolist()) for s, f in offsets.items()}
        raise InputError(f"cannot tell the B sublattice: {len(centred)} sublattices sit at the A-cell centre "
                         f"(fractional offsets {found}); give b_site")
    return centred[0]


def _cage_displacement(a, a_index, b, base, allow_partial):
    """Displacements (n, 2) nm, their variances, the corner counts and the ok flags."""
    # corners (j, i) in the order 00, 01, 11, 10: diagonals are corners (0, 2) and (1, 3)
    corners = [(0, 0), (1, 0), (1, 1), (0, 1)]
    rows = np.stack([a_index.find(b["site_i"] + base[1] + ci, b["site_j"] + base[0] + cj) for cj, ci in corners], 1)
    found = rows >= 0
    r = np.where(found, rows, 0)
    pos = np.stack([a["x"][r], a["y"][r]], -1)  # (n, 4, 2)
    err2 = np.stack([a["x_err"][r], a["y_err"][r]], -1) ** 2
    diag = np.stack([found[:, 0] & found[:, 2], found[:, 1] & found[:, 3]], 1)  # complete diagonals
    n_cage = found.sum(axis=1)
    ok = n_cage == 4 if not allow_partial else diag.any(axis=1)
    # centre = mean of the midpoints of the complete diagonals (all four corners: their mean)
    w = np.zeros((len(r), 4))
    w[:, [0, 2]] += diag[:, [0]]
    w[:, [1, 3]] += diag[:, [1]]
    w = w / np.maximum(2.0 * diag.sum(axis=1, keepdims=True), 1)
    centre = np.einsum("nk,nkc->nc", w, pos)
    var_centre = np.einsum("nk,nkc->nc", w**2, err2)
    d = np.column_stack([b["x"], b["y"]]) - centre
    var = np.column_stack([b["x_err"], b["y_err"]]) ** 2 + var_centre
    d[~ok] = np.nan
    var[~ok] = np.nan
    return d, var, n_cage, ok


def _as_table(b, d, var, n_cage, ok) -> pd.DataFrame:
    dx, dy = d[:, 0] * 1e3, d[:, 1] * 1e3
    sx, sy = np.sqrt(var[:, 0]) * 1e3, np.sqrt(var[:, 1]) * 1e3
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.hypot(dx, dy)
        p_err = np.sqrt((dx * sx) ** 2 + (dy * sy) ** 2) / p
        angle_err = np.degrees(np.sqrt((dy * sx) ** 2 + (dx * sy) ** 2) / p**2)
    return pd.DataFrame({"atom": b["label"], "site_i": b["site_i"], "site_j": b["site_j"], "x": b["x"], "y": b["y"],
                         "dx_pm": dx, "dy_pm": dy, "dx_err_pm": sx, "dy_err_pm": sy, "p_pm": p, "p_err_pm": p_err,
                         "angle_deg": np.degrees(np.arctan2(-dy, dx)), "angle_err_deg": angle_err,
                         "n_cage": n_cage, "ok": ok})


__all__ = ["polarisation", "polarisation_map"]
