"""Structure-property mining: every structural descriptor map against every spectral one.

For each pair (structure s, property p) of maps on the spectral grid:

* ``r`` - Pearson (or Spearman) correlation over the pixels where both are finite;
* ``p`` - from toroidal shifts: the property map, mirror-tiled to twice its size so that it
  is periodic without seams, is shifted cyclically by every (dy, dx) at least
  ``exclusion_radius`` px long, which keeps both maps' spatial autocorrelation
  (pixel shuffling would not, and declares chance alignments of smooth maps significant);
  all shifts come from a few FFTs, so the permutation distribution is exact and complete;
* ``q`` - Benjamini-Hochberg over all pairs;
* ``cv_r2`` - spatial block cross-validated R^2 of the model property ~ structure;
* ``effect`` - the OLS slope, property units per structure unit.

Plus canonical correlation, PLS, and a ridge model on all structural descriptors per
property, scored by the same spatial blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from ..errors import InputError
from . import _permutation as perm
from . import models as _models

MIN_VALID_PIXELS = 16
MIN_SHIFT_PX = 3


@dataclass
class MiningResult:
    """What :func:`mine` found.

    Attributes
    ----------
    links : pandas.DataFrame
        One row per tested pair: ``structure``, ``property``, ``r``, ``p``, ``q``, ``cv_r2``,
        ``n`` (pixels), ``effect`` (property units per structure unit), ``n_permutations``;
        ranked by q, then |r| (descending).
    cca, pls : dict
        First canonical pair (``r``, ``cv_r``, loadings) and PLS (``r2``, ``cv_r2`` per property, loadings).
    multivariate_cv_r2 : dict
        Property -> block-CV R^2 of a ridge model on all structural descriptors.
    notes : list of str
        Exclusions, caps and warnings (e.g. that q < 0.01 is out of reach).
    n_permutations : int
        Shifts per test (the smallest over the tests).
    q_floor : float
        The smallest q the top link can reach: ``m / (1 + n_permutations)``.
    q_reachable : bool
        Whether ``q_floor < 0.01``.
    exclusion_radius_px : float, correlation_length_px : dict, block_px : int
        Settings used (pixels).
    """

    links: pd.DataFrame
    cca: dict
    pls: dict
    multivariate_cv_r2: dict
    notes: list = field(default_factory=list)
    n_permutations: int = 0
    q_floor: float = float("nan")
    q_reachable: bool = False
    exclusion_radius_px: float = float("nan")
    correlation_length_px: dict = field(default_factory=dict)
    block_px: int = 0
    method: str = "pearson"


def _check_grids(structure, spectra) -> tuple[int, int]:
    for name, ds in (("structure", structure), ("spectra", spectra)):
        if not isinstance(ds, xr.Dataset) or not ds.data_vars:
            raise InputError(f"{name} must be a non-empty xarray.Dataset of (y, x) descriptor maps")
        for v, da in ds.data_vars.items():
            if da.dims != ("y", "x"):
                raise InputError(f"{name} descriptor {v!r} has dims {da.dims}; every descriptor must be a (y, x) map")
    shape = tuple(structure.sizes[d] for d in ("y", "x"))
    if tuple(spectra.sizes[d] for d in ("y", "x")) != shape:
        raise InputError(f"structure and spectra are on different grids ({shape} vs "
                         f"{(spectra.sizes['y'], spectra.sizes['x'])}); resample the structure onto the spectral "
                         "grid first (atomine.correlate.grid)")
    for d in ("y", "x"):
        if d in structure.coords and d in spectra.coords and not np.allclose(
                structure[d].values, spectra[d].values, rtol=1e-6, atol=1e-9):
            raise InputError(f"structure and spectra have different '{d}' coordinates (different grids); "
                             "resample the structure onto the spectral grid first")
    return shape


def _usable(ds: xr.Dataset, kind: str, min_valid: float, notes: list) -> tuple[list[str], np.ndarray]:
    names, maps = [], []
    for v, da in ds.data_vars.items():
        a = np.asarray(da.values, dtype=float)
        a = np.where(np.isfinite(a), a, np.nan)
        ok = np.isfinite(a)
        if not ok.any():
            raise InputError(f"{kind} descriptor {v!r} is all NaN; drop it or fix its computation")
        if ok.sum() < MIN_VALID_PIXELS:
            raise InputError(f"{kind} descriptor {v!r} has only {int(ok.sum())} valid pixels "
                             f"(need >= {MIN_VALID_PIXELS}); use a larger field of view or drop it")
        if ok.mean() < min_valid:
            notes.append(f"{kind} descriptor {v!r} excluded: only {ok.mean():.0%} of pixels valid "
                         f"(min_valid={min_valid:g})")
            continue
        if np.nanstd(a) == 0:
            notes.append(f"{kind} descriptor {v!r} excluded: constant map, its correlation is undefined")
            continue
        names.append(str(v))
        maps.append(a)
    if not names:
        raise InputError(f"no usable {kind} descriptor left (see the exclusion reasons: {'; '.join(notes)})")
    return names, np.stack(maps)


def _ranks(maps: np.ndarray) -> np.ndarray:
    out = np.full(maps.shape, np.nan)
    for k in range(maps.shape[0]):  # one rank transform per descriptor map
        ok = np.isfinite(maps[k])
        out[k][ok] = rankdata(maps[k][ok])
    return out


def _slopes(S: np.ndarray, P: np.ndarray) -> np.ndarray:
    """OLS slope of each property on each structure map over the pixels valid in both."""
    out = np.full((S.shape[0], P.shape[0]), np.nan)
    for i in range(S.shape[0]):
        for j in range(P.shape[0]):
            ok = np.isfinite(S[i]) & np.isfinite(P[j])
            x, y = S[i][ok], P[j][ok]
            vx = np.var(x)
            if x.size >= 3 and vx > 0:
                out[i, j] = np.mean((x - x.mean()) * (y - y.mean())) / vx
    return out


def _shifts(shape, radius: float, n_permutations, rng, notes: list) -> np.ndarray:
    dist = perm.toroidal_distance(shape)
    dy, dx = np.nonzero(dist >= radius)
    shifts = np.column_stack([dy, dx])
    if n_permutations is not None:
        k = int(n_permutations)
        if k < 1:
            raise InputError(f"n_permutations must be >= 1 or None (all admissible shifts), got {n_permutations}")
        if k < len(shifts):
            shifts = shifts[np.sort(rng.choice(len(shifts), size=k, replace=False))]
        elif k > len(shifts):
            notes.append(f"n_permutations={k} asked, but the grid only has {len(shifts)} cyclic shifts "
                         f">= {radius:.1f} px; all were used")
    return shifts


def mine(structure: xr.Dataset, spectra: xr.Dataset, *, n_permutations: int | None = None,
         method: str = "pearson", fdr: float = 0.05, min_valid: float = 0.5, block_size: int | None = None,
         random_state=0, exclusion_radius: float | None = None, permutation: str = "toroidal",
         models: bool = True) -> MiningResult:
    """Correlate every structural descriptor map with every spectral descriptor map.

    Parameters
    ----------
    structure, spectra : xarray.Dataset
        Descriptor maps, every variable (y, x), both on the same (spectral) grid; NaN = no data.
    n_permutations : int or None
        None: every cyclic shift of the mirror-tiled (2ny x 2nx) property map at least
        ``exclusion_radius`` long (the exact shift distribution, ~9000 shifts for 48 x 48);
        an int: that many of them, drawn at random.
    method : {"pearson", "spearman"}
        Spearman ranks each map over its own valid pixels (exact when both maps are valid
        at the same pixels).
    fdr : float
        Level recorded in the notes (links with q <= fdr are called significant).
    min_valid : float
        Descriptors with a smaller fraction of finite pixels are excluded (with a note).
    block_size : int or None
        Side (px) of the spatial CV blocks; None gives a 4 x 4 block layout.
    random_state : int or numpy Generator
        For drawing a subset of shifts and for the i.i.d. comparison.
    exclusion_radius : float or None
        Shortest shift (px) used; None: max(3 px, the largest 1/e correlation length of
        any descriptor), capped at a quarter of the smaller grid side (noted).
    permutation : {"toroidal", "iid"}
        "iid" shuffles pixels instead (999 permutations or ``n_permutations``): it ignores
        spatial autocorrelation and is offered only to show why it must not be used.
    models : bool
        False skips cross-validation, CCA and PLS (cv_r2 = NaN), e.g. for many null seeds.

    Returns
    -------
    MiningResult
    """
    if method not in ("pearson", "spearman"):
        raise InputError(f"method must be 'pearson' or 'spearman', got {method!r}")
    if permutation not in ("toroidal", "iid"):
        raise InputError(f"permutation must be 'toroidal' or 'iid', got {permutation!r}")
    if not 0 < float(min_valid) <= 1:
        raise InputError(f"min_valid must be a fraction in (0, 1], got {min_valid}")
    if not 0 < float(fdr) < 1:
        raise InputError(f"fdr must be in (0, 1), got {fdr}")
    shape = _check_grids(structure, spectra)
    rng = np.random.default_rng(random_state)
    notes: list[str] = []
    s_names, S = _usable(structure, "structure", min_valid, notes)
    p_names, P = _usable(spectra, "spectral", min_valid, notes)
    Sx, Px = (_ranks(S), _ranks(P)) if method == "spearman" else (S, P)

    r_all, n_all = perm.shift_correlations(*perm.mirror_periodise(Sx, Px))
    r0, n0 = r_all[..., 0, 0], n_all[..., 0, 0].astype(int)
    lengths = perm.correlation_lengths(np.concatenate([S, P]))
    corr_len = dict(zip(s_names + p_names, map(float, lengths)))
    if exclusion_radius is None:
        radius = max(float(MIN_SHIFT_PX), float(np.ceil(lengths.max())))
        cap = min(shape) / 4.0
        if radius > cap:
            notes.append(f"correlation length {lengths.max():.1f} px is long for a {shape[0]}x{shape[1]} grid; "
                         f"shifts >= {cap:.1f} px used, p-values may be optimistic (trend or too small a field)")
            radius = cap
    else:
        radius = float(exclusion_radius)
        if radius < 0:
            raise InputError(f"exclusion_radius must be >= 0 px, got {exclusion_radius}")

    if permutation == "toroidal":
        shifts = _shifts(r_all.shape[-2:], radius, n_permutations, rng, notes)
        if len(shifts) == 0:
            raise InputError(f"no cyclic shift is >= {radius:.1f} px on a {shape[0]}x{shape[1]} grid; "
                             "lower exclusion_radius or use a larger grid")
        p, n_perm = perm.toroidal_pvalues(r_all, n_all, shifts)
    else:
        k = 999 if n_permutations is None else int(n_permutations)
        p = perm.iid_pvalues(Sx, Px, k, rng)
        n_perm = np.full(p.shape, k)
    small = (n0 < MIN_VALID_PIXELS) | ~np.isfinite(r0)
    for i, j in zip(*np.nonzero(small)):
        notes.append(f"pair ({s_names[i]}, {p_names[j]}) excluded: {n0[i, j]} common valid pixels or undefined r")
    p = np.where(small, np.nan, p)
    q = perm.benjamini_hochberg(p)

    block = int(block_size) if block_size is not None else int(np.ceil(max(shape) / 4))
    if block < 1:
        raise InputError(f"block_size must be >= 1 px, got {block_size}")
    cv = np.full(p.shape, np.nan)
    multi, cca, pls = {}, {}, {}
    if models:
        folds = _models.block_folds(shape, block, int(np.ceil(radius)))
        Sf = S.reshape(len(s_names), -1)
        Pf = P.reshape(len(p_names), -1)
        for i in range(len(s_names)):
            for j in range(len(p_names)):
                if not small[i, j]:
                    cv[i, j] = _models.cv_r2_single(Sf[i], Pf[j], folds)
        multi = {pn: _models.cv_r2_multi(Sf.T, Pf[j], folds) for j, pn in enumerate(p_names)}
        cca = _models.cca_summary(Sf.T, Pf.T, folds, s_names, p_names)
        pls = _models.pls_summary(Sf.T, Pf.T, folds, s_names, p_names)

    effect = _slopes(S, P)
    ii, jj = np.nonzero(~small)
    links = pd.DataFrame({
        "structure": [s_names[i] for i in ii], "property": [p_names[j] for j in jj],
        "r": r0[ii, jj], "p": p[ii, jj], "q": q[ii, jj], "cv_r2": cv[ii, jj], "n": n0[ii, jj],
        "effect": effect[ii, jj], "n_permutations": n_perm[ii, jj].astype(int),
    })
    links = (links.assign(_abs=links["r"].abs()).sort_values(["q", "_abs"], ascending=[True, False], kind="stable")
             .drop(columns="_abs").reset_index(drop=True))

    m = len(links)
    n_min = int(links["n_permutations"].min()) if m else 0
    q_floor = m / (1.0 + n_min) if m else float("nan")
    if m and not q_floor < 0.01:
        notes.append(f"q < 0.01 is unreachable: {m} tests with {n_min} permutations give q >= {q_floor:.3g}; "
                     "use a larger grid, fewer descriptors or a smaller exclusion radius")
    notes.append(f"{int((links['q'] <= fdr).sum())} of {m} links significant at FDR {fdr:g}")
    return MiningResult(links=links, cca=cca, pls=pls, multivariate_cv_r2=multi, notes=notes,
                        n_permutations=n_min, q_floor=q_floor, q_reachable=bool(m and q_floor < 0.01),
                        exclusion_radius_px=radius, correlation_length_px=corr_len, block_px=block, method=method)


__all__ = ["mine", "MiningResult"]
