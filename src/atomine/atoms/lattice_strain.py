"""Local lattice, rotation and strain at every atom site from fitted column positions.

For each site (site_i, site_j) of one sublattice, the positions of the site and of its
neighbours on the same sublattice (the 8 sites of the 3x3 index block, or the 4
nearest) are fitted by weighted least squares with an affine lattice

    r(i + di, j + dj) = r0 + dj * a1 + di * a2,

so ``a1`` is the lattice vector of one step in ``site_j`` and ``a2`` of one step in
``site_i`` (nm, x right, y down). Fitting ``r0`` too keeps the result unbiased where a
neighbour is missing. With F = A A_ref^-1 (A: columns a1, a2), rotation and strain come
from the polar decomposition F = R U exactly as in ``atomine.fourier.local_lattice``:
rotation in degrees, counter-clockwise as displayed (a vector along +x turns toward -y);
``exx, eyy, exy`` the symmetric stretch U - 1, tensile positive.

Uncertainties: the weights are 1 / x_err^2 and 1 / y_err^2, so the covariance of
(a1, a2) is the inverse normal matrix of each coordinate; it is carried to rotation and
strain to first order through a numerical Jacobian. The reference lattice is treated as
exact (a median over many sites). Neighbouring sites share atoms, so their errors are
correlated; every per-site 1-sigma is nevertheless correct on its own.

This module also holds :func:`atom_map`, which puts per-atom values on the site grid or
interpolates them to a grid in nm (used for polarisation and strain maps).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..data import step
from ..errors import InputError

_OFFSETS = {8: [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)],
            4: [(-1, 0), (1, 0), (0, -1), (0, 1)]}
_QUANTITIES = ("a1x", "a1y", "a2x", "a2y", "rotation", "exx", "eyy", "exy")
UNITS = {"a1x": "nm", "a1y": "nm", "a2x": "nm", "a2y": "nm", "rotation": "deg", "exx": "1", "eyy": "1", "exy": "1"}
ROTATION_CONVENTION = "degrees, counter-clockwise as displayed (x right, y down)"
STRAIN_CONVENTION = "symmetric stretch U - 1 of F = A A_ref^-1 = R U, tensile positive"


def lattice_strain(table: pd.DataFrame, *, sublattice: int = 0, reference="median", reference_vectors=None,
                   neighbours: int = 8, min_neighbours: int = 3) -> pd.DataFrame:
    """Local lattice vectors, rotation and strain, with 1-sigma errors, at every site of one sublattice.

    Parameters
    ----------
    table : pandas.DataFrame
        Atom table (DESIGN.md): ``x``, ``y`` (nm), ``sublattice``, ``site_i``, ``site_j``, and
        ``x_err``, ``y_err`` (1-sigma, nm; without them the fit is unweighted and every error is
        NaN). Rows with ``fit_ok`` False or ``cls == "vacancy"`` are ignored.
    sublattice : int
        Which sublattice's lattice to measure (default 0, the brightest).
    reference : "median", box (x0, x1, y0, y1) in nm, or boolean mask over the table's rows
        Sites whose median lattice is the unstrained, unrotated reference.
    reference_vectors : array_like, shape (2, 2), optional
        Rows a1, a2 (nm) of an explicit reference lattice (e.g. the nominal cell, any basis of
        it); overrides ``reference``, so rotation and strain become absolute.
    neighbours : {8, 4}
        The 3x3 index block around each site, or only its four nearest index neighbours.
    min_neighbours : int
        Sites with fewer usable neighbours get NaN and ``ok`` False (at least 2).

    Returns
    -------
    pandas.DataFrame
        One row per usable site: ``atom`` (the input row's index label), ``site_i``, ``site_j``,
        ``x``, ``y`` (nm), ``a1x, a1y, a2x, a2y`` (nm), ``rotation`` (deg), ``exx, eyy, exy``,
        each with ``<name>_err`` (1-sigma), ``n_neighbours`` and ``ok``. ``attrs`` hold
        ``units``, ``reference_a_nm`` (rows a1, a2), the conventions and ``provenance``.
    """
    if neighbours not in _OFFSETS:
        raise InputError(f"neighbours must be 8 (3x3 block) or 4 (nearest), got {neighbours!r}")
    if not isinstance(min_neighbours, (int, np.integer)) or not 2 <= min_neighbours <= neighbours:
        raise InputError(f"min_neighbours must be an integer from 2 to {neighbours}, got {min_neighbours!r}")
    atoms = usable_atoms(table)
    sel = atoms["sublattice"] == sublattice
    if not np.any(sel):
        raise InputError(f"no usable atoms on sublattice {sublattice!r}; the table has sublattices "
                         f"{sorted(set(atoms['sublattice'].tolist()))}")
    sub = select_rows(atoms, sel)
    a, cov, n_nb = _local_vectors(sub, _OFFSETS[neighbours])
    ok = (n_nb >= min_neighbours) & np.all(np.isfinite(a.reshape(len(a), -1)), axis=1)
    a[~ok] = np.nan
    a_ref = _reference_lattice(a, ok, sub, table, reference, reference_vectors)
    values, errors = _derived_with_errors(a, cov, np.linalg.inv(a_ref))
    out = pd.DataFrame({"atom": sub["label"], "site_i": sub["site_i"], "site_j": sub["site_j"],
                        "x": sub["x"], "y": sub["y"]})
    for k, name in enumerate(_QUANTITIES):
        out[name] = values[:, k]
        out[name + "_err"] = errors[:, k] if sub["has_err"] else np.nan
    out["n_neighbours"] = n_nb
    out["ok"] = ok
    out.attrs = {"units": {"x": "nm", "y": "nm", **UNITS, **{k + "_err": u for k, u in UNITS.items()}},
                 "reference_a_nm": a_ref.T.tolist(), "rotation_convention": ROTATION_CONVENTION,
                 "strain_convention": STRAIN_CONVENTION,
                 "provenance": list(table.attrs.get("provenance", [])) + [step("atoms.lattice_strain", {
                     "sublattice": int(sublattice), "reference": _describe(reference, reference_vectors),
                     "neighbours": int(neighbours), "min_neighbours": int(min_neighbours)})]}
    return out


def strain_map(strain: pd.DataFrame, *, grid=None) -> xr.Dataset:
    """Rotation and strain (with errors) of :func:`lattice_strain` as maps; see :func:`atom_map` for ``grid``."""
    names = [n for q in ("rotation", "exx", "eyy", "exy") for n in (q, q + "_err")]
    return atom_map(strain, names, grid=grid)


# --- table checks and site lookup ------------------------------------------------------------
def usable_atoms(table) -> dict:
    """Validated numpy columns of the rows to use (fit_ok not False, not a vacancy).

    Keys: label, x, y, x_err, y_err (NaN where absent), sublattice, site_i, site_j, has_err.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"expected an atom table (pandas DataFrame), got {type(table).__name__}")
    missing = [c for c in ("x", "y", "sublattice", "site_i", "site_j") if c not in table.columns]
    if missing:
        raise InputError(f"the atom table lacks column(s) {missing}; assign sublattices and lattice sites first")
    if len(table) == 0:
        raise InputError("the atom table is empty; no atoms were found")
    keep = np.ones(len(table), dtype=bool)
    if "fit_ok" in table.columns:
        keep &= table["fit_ok"].to_numpy(dtype=bool)
    if "cls" in table.columns:
        keep &= table["cls"].astype(str).to_numpy() != "vacancy"
    rows = table[keep]
    has_err = "x_err" in table.columns and "y_err" in table.columns
    out = {"label": rows.index.to_numpy(), "has_err": has_err}
    for c in ("x", "y", "x_err", "y_err"):
        if c in ("x_err", "y_err") and not has_err:
            out[c] = np.full(len(rows), np.nan)
            continue
        v = pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise InputError(f"column {c!r} holds NaN, inf or non-numbers in rows marked usable; "
                             "flag those rows fit_ok=False")
        if c.endswith("_err") and np.any(v <= 0):
            raise InputError(f"column {c!r} must be a positive 1-sigma error in nm; found zero or negative values")
        out[c] = v
    for c in ("sublattice", "site_i", "site_j"):
        v = pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
            raise InputError(f"column {c!r} must hold integers in every usable row")
        out[c] = v.astype(np.int64)
    key = np.column_stack([out["sublattice"], out["site_i"], out["site_j"]])
    if len(np.unique(key, axis=0)) != len(key):
        raise InputError("two usable atoms share a (sublattice, site_i, site_j); the site assignment is ambiguous")
    return out


def select_rows(atoms: dict, sel) -> dict:
    """The rows ``sel`` of a :func:`usable_atoms` dict (array entries subset, flags kept)."""
    return {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in atoms.items()}


class SiteIndex:
    """Row lookup by integer site (i, j): sorted keys, so memory is O(n) whatever the index range."""

    def __init__(self, site_i: np.ndarray, site_j: np.ndarray):
        self._i0, self._j0 = (int(site_i.min()) - 2, int(site_j.min()) - 2) if len(site_i) else (0, 0)
        self._w = (int(site_j.max()) - self._j0 + 3) if len(site_j) else 1
        key = self._key(site_i, site_j)
        self._order = np.argsort(key)
        self._sorted = key[self._order]

    def _key(self, i, j):
        return (np.asarray(i, dtype=np.int64) - self._i0) * self._w + (np.asarray(j, dtype=np.int64) - self._j0)

    def find(self, i, j) -> np.ndarray:
        """Row numbers of sites (i, j) (broadcast), -1 where absent."""
        i, j = np.broadcast_arrays(np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64))
        inside = (j - self._j0 >= 0) & (j - self._j0 < self._w)
        key = self._key(i, j)
        pos = np.clip(np.searchsorted(self._sorted, key), 0, max(len(self._sorted) - 1, 0))
        hit = inside & (len(self._sorted) > 0)
        if len(self._sorted):
            hit &= self._sorted[pos] == key
        return np.where(hit, self._order[pos] if len(self._sorted) else -1, -1)


# --- local lattice ------------------------------------------------------------------------------
def _local_vectors(sub, offsets):
    """(n, 2, 2) lattice matrices A (columns a1, a2), their per-coordinate 2x2 covariances, neighbour counts."""
    index = SiteIndex(sub["site_i"], sub["site_j"])
    n = len(sub["x"])
    block = [(0, 0)] + list(offsets)
    di = np.array([o[0] for o in block])
    dj = np.array([o[1] for o in block])
    rows = index.find(sub["site_i"][:, None] + di[None, :], sub["site_j"][:, None] + dj[None, :])  # (n, k)
    found = rows >= 0
    n_nb = found[:, 1:].sum(axis=1)
    r = np.where(found, rows, 0)
    design = np.stack([np.ones_like(di), dj, di], axis=1).astype(np.float64)  # (k, 3): r0, a1, a2
    a = np.full((n, 2, 2), np.nan)
    cov = np.full((n, 2, 2, 2), np.nan)  # [coordinate x|y] 2x2 covariance of (a1c, a2c)
    for c, name in enumerate(("x", "y")):  # two coordinates, each vectorised over all sites
        err = sub[name + "_err"]
        w = np.where(found, 1.0 / err[r] ** 2 if sub["has_err"] else 1.0, 0.0)  # (n, k)
        normal = np.einsum("nk,ka,kb->nab", w, design, design)
        rhs = np.einsum("nk,ka,nk->na", w, design, sub[name][r])
        good = np.abs(np.linalg.det(normal)) > 1e-9 * np.max(np.abs(normal), axis=(1, 2)) ** 3
        inv = np.full_like(normal, np.nan)
        inv[good] = np.linalg.inv(normal[good])
        coef = np.einsum("nab,nb->na", inv, rhs)
        a[:, c, 0], a[:, c, 1] = coef[:, 1], coef[:, 2]
        cov[:, c] = inv[:, 1:, 1:]
    return a, cov, n_nb


def _reference_lattice(a, ok, sub, table, reference, reference_vectors) -> np.ndarray:
    """Reference matrix A_ref (columns a1, a2), nm."""
    good = ok.copy()
    if reference_vectors is not None:
        return index_reference(reference_vectors, np.nanmedian(a[ok], axis=0) if np.any(ok) else None)
    if isinstance(reference, str):
        if reference != "median":
            raise InputError(f"reference must be 'median', a box (x0, x1, y0, y1) in nm or a boolean mask over the "
                             f"table's rows, got {reference!r}")
    else:
        ref = np.asarray(reference)
        if ref.dtype == bool and ref.shape == (len(table),):
            good &= pd.Index(sub["label"]).isin(table.index[ref])
        elif ref.shape == (4,) and ref.dtype.kind in "iuf" and np.all(np.isfinite(ref)):
            x0, x1, y0, y1 = ref.astype(float)
            good &= ((sub["x"] >= min(x0, x1)) & (sub["x"] <= max(x0, x1))
                     & (sub["y"] >= min(y0, y1)) & (sub["y"] <= max(y0, y1)))
        else:
            raise InputError(f"reference must be 'median', a box (x0, x1, y0, y1) in nm or a boolean mask of length "
                             f"{len(table)}; got an array of shape {ref.shape}")
    if not np.any(good):
        raise InputError("no site with a measurable local lattice lies in the reference region; choose another region")
    return np.median(a[good], axis=0)


def index_reference(reference_vectors, measured) -> np.ndarray:
    """An explicit lattice (rows in nm, any basis) re-expressed on the measured site basis (columns a1, a2).

    Each given vector is indexed on the measured lattice (integer steps in site_j, site_i), so
    the reference's a1 and a2 are the nominal vectors of one step in site_j and in site_i.
    """
    r = np.asarray(reference_vectors, dtype=np.float64)
    if r.shape != (2, 2) or not np.all(np.isfinite(r)) or abs(np.linalg.det(r)) < 1e-12:
        raise InputError("reference_vectors must be two finite, non-collinear rows a1, a2 in nm")
    if measured is None:
        raise InputError("no site has a measurable local lattice to index reference_vectors on")
    n = np.rint(r @ np.linalg.inv(measured).T)  # row k: steps (site_j, site_i) of given vector k
    if abs(abs(np.linalg.det(n)) - 1) > 1e-6:
        raise InputError("reference_vectors are not a basis of the measured lattice (their indices on it "
                         f"{n.astype(int).tolist()} are not unimodular); give the nominal cell of this sublattice")
    return (np.linalg.inv(n) @ r).T


# --- rotation and strain ------------------------------------------------------------------------
def polar_decomposition(f: np.ndarray):
    """Rotation (rad, counter-clockwise as displayed) and stretch U (symmetric) of F = R U, batched (..., 2, 2)."""
    theta = np.arctan2(f[..., 0, 1] - f[..., 1, 0], f[..., 0, 0] + f[..., 1, 1])
    c, s = np.cos(theta), np.sin(theta)
    # R = [[c, s], [-s, c]] turns +x toward -y (counter-clockwise with y down); U = R^T F
    u = np.stack([np.stack([c * f[..., 0, 0] - s * f[..., 1, 0], c * f[..., 0, 1] - s * f[..., 1, 1]], -1),
                  np.stack([s * f[..., 0, 0] + c * f[..., 1, 0], s * f[..., 0, 1] + c * f[..., 1, 1]], -1)], -2)
    return theta, u


def _derived(a, a_ref_inv):
    with np.errstate(invalid="ignore"):
        theta, u = polar_decomposition(a @ a_ref_inv)
        return np.stack([a[..., 0, 0], a[..., 1, 0], a[..., 0, 1], a[..., 1, 1], np.degrees(theta),
                         u[..., 0, 0] - 1, u[..., 1, 1] - 1, 0.5 * (u[..., 0, 1] + u[..., 1, 0])], -1)


def _derived_with_errors(a, cov, a_ref_inv):
    values = _derived(a, a_ref_inv)
    h = 1e-7 * np.nanmax(np.abs(np.linalg.inv(a_ref_inv)))
    var = np.zeros_like(values)
    for c in range(2):  # x and y components are independent; within one, (a1c, a2c) are correlated
        jac = []
        for k in range(2):
            ap = a.copy()
            ap[:, c, k] += h
            jac.append((_derived(ap, a_ref_inv) - values) / h)
        jac = np.stack(jac, -1)  # (n, q, 2)
        var += np.einsum("nqa,nab,nqb->nq", jac, cov[:, c], jac)
    return values, np.sqrt(var)


def _describe(reference, reference_vectors):
    if reference_vectors is not None:
        return {"vectors_nm": np.asarray(reference_vectors, dtype=float).tolist()}
    if isinstance(reference, str):
        return reference
    ref = np.asarray(reference)
    if ref.shape == (4,) and ref.dtype != bool:
        return {"box_nm": ref.astype(float).tolist()}
    return {"mask_rows": int(ref.sum())}


# --- maps ---------------------------------------------------------------------------------------
def atom_map(table: pd.DataFrame, columns, *, grid=None) -> xr.Dataset:
    """Per-atom values as maps: on the (site_i, site_j) grid, or interpolated to a grid in nm.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with ``x``, ``y`` (nm), ``site_i``, ``site_j`` and the ``columns`` to map, e.g. the
        output of :func:`lattice_strain` or ``polarisation``. ``attrs["units"]`` names the units.
    columns : sequence of str
    grid : None, float, or xarray.DataArray
        None: a Dataset on dims (site_i, site_j) with 2D coords ``x``, ``y`` (nm), NaN at
        empty sites. A float: spacing in nm of a regular (y, x) grid over the atoms' extent.
        A DataArray with ``x``, ``y`` coords in nm (e.g. the image): that grid. Off-site values
        are linear (Delaunay) interpolations, NaN outside the atoms' convex hull; interpolated
        errors are the interpolated per-site 1-sigma, not propagated.
    """
    from scipy.interpolate import LinearNDInterpolator

    columns = list(columns)
    missing = [c for c in ["x", "y", "site_i", "site_j"] + columns if c not in table.columns]
    if missing:
        raise InputError(f"the table lacks column(s) {missing} to map")
    if len(table) == 0:
        raise InputError("the table is empty; nothing to map")
    units = dict(table.attrs.get("units", {}))
    attrs = {k: v for k, v in table.attrs.items() if k not in ("units", "provenance")}
    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    if grid is None:
        i, j = table["site_i"].to_numpy(np.int64), table["site_j"].to_numpy(np.int64)
        ii, jj = np.arange(i.min(), i.max() + 1), np.arange(j.min(), j.max() + 1)
        shape = (len(ii), len(jj))
        flat = (i - ii[0]) * shape[1] + (j - jj[0])

        def place(v):
            out = np.full(shape[0] * shape[1], np.nan)
            out[flat] = v
            return out.reshape(shape)

        dims = ("site_i", "site_j")
        data = {c: (dims, place(table[c].to_numpy(float)), {"units": units.get(c, "")}) for c in columns}
        coords = {"site_i": ii, "site_j": jj, "x": (dims, place(x), {"units": "nm"}),
                  "y": (dims, place(y), {"units": "nm"})}
        return xr.Dataset(data, coords=coords, attrs=attrs)
    if isinstance(grid, xr.DataArray):
        if "x" not in grid.coords or "y" not in grid.coords:
            raise InputError("grid must be an image DataArray with x and y coords in nm")
        gx, gy = grid.coords["x"].values.astype(float), grid.coords["y"].values.astype(float)
    else:
        spacing = float(grid)
        if not np.isfinite(spacing) or spacing <= 0:
            raise InputError(f"grid spacing must be a positive number of nm, got {grid!r}")
        if (np.ptp(x) / spacing + 1) * (np.ptp(y) / spacing + 1) > 1e8:
            raise InputError(f"a {spacing} nm grid over these atoms would exceed 1e8 points; use a coarser spacing")
        gx = x.min() + spacing * np.arange(int(np.floor(np.ptp(x) / spacing)) + 1)
        gy = y.min() + spacing * np.arange(int(np.floor(np.ptp(y) / spacing)) + 1)
    px, py = np.meshgrid(gx, gy)
    values = table[columns].to_numpy(float)
    finite = np.isfinite(values)
    data = {}
    # one triangulation per distinct set of finite rows (usually one for all columns): Delaunay dominates the cost
    for mask in np.unique(finite, axis=1).T:
        group = [k for k in range(len(columns)) if np.array_equal(finite[:, k], mask)]
        if mask.sum() < 3:
            out = np.full(px.shape + (len(group),), np.nan)
        else:
            out = LinearNDInterpolator(np.column_stack([x[mask], y[mask]]), values[mask][:, group])(px, py)
        for n, k in enumerate(group):
            data[columns[k]] = (("y", "x"), out[..., n], {"units": units.get(columns[k], "")})
    data = {c: data[c] for c in columns}
    return xr.Dataset(data, coords={"y": ("y", gy, {"units": "nm"}), "x": ("x", gx, {"units": "nm"})}, attrs=attrs)


__all__ = ["ROTATION_CONVENTION", "STRAIN_CONVENTION", "UNITS", "SiteIndex", "atom_map", "index_reference",
           "lattice_strain", "polar_decomposition", "select_rows", "strain_map", "usable_atoms"]
