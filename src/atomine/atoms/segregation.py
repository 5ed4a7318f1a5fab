"""Dopant segregation statistics on a classified atom table.

- :func:`warren_cowley`: short-range-order parameters alpha_m per neighbour shell with
  spatial block-bootstrap confidence intervals and the spread of a random arrangement
  at the same composition (permutation reference);
- :func:`pair_correlation`: class-resolved pair correlation g(r), normalised by all
  site pairs at the same distance so that the lattice itself and the image edges cancel
  (g = 1 for a random arrangement);
- :func:`cluster_sizes`: size distribution of connected dopant clusters on the site lattice;
- :func:`composition_profile`: dopant fraction against distance to an interface (a line)
  or a surface / region (a mask).

Only sites classified ``host`` or ``dopant`` take part in the pair statistics; ``vacancy``
and ``unknown`` sites are holes (an unknown class must not count as either).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.stats import t as student_t

from ..errors import InputError
from .intensity import check_table

_PAIR_CLASSES = ("host", "dopant")


def _select(table, sublattice, need_sites: bool) -> pd.DataFrame:
    """Rows of the analysed sublattice with a host or dopant class."""
    cols = ("x", "y") + (("site_i", "site_j") if need_sites else ())
    check_table(table, cols)
    if "cls" not in table:
        raise InputError("table has no 'cls' column; classify the atoms first (classify_atoms)")
    t = table
    if "sublattice" in table:
        if sublattice is None:
            with_dopants = pd.unique(table.loc[table["cls"] == "dopant", "sublattice"])
            if len(with_dopants) > 1:
                raise InputError(f"dopants sit on sublattices {sorted(with_dopants.tolist())}; "
                                 "choose one with sublattice=")
            if len(with_dopants) == 1:
                t = table[table["sublattice"] == with_dopants[0]]
        else:
            t = table[table["sublattice"] == sublattice]
            if len(t) == 0:
                have = sorted(pd.unique(table["sublattice"]).tolist())
                raise InputError(f"no atoms on sublattice {sublattice!r}; the table has sublattices {have}")
    t = t[t["cls"].isin(_PAIR_CLASSES)]
    dop = int((t["cls"] == "dopant").sum())
    if dop == 0 or dop == len(t):
        raise InputError(f"segregation needs both host and dopant sites; found {dop} dopants among {len(t)} "
                         "host/dopant sites")
    if need_sites and t.duplicated(["site_i", "site_j"]).any():
        raise InputError("two atoms share one (site_i, site_j) on this sublattice; choose a single sublattice")
    return t.reset_index(drop=True)


def _lattice_vectors(t) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares lattice vectors (nm) of r = origin + i a_i + j a_j."""
    design = np.c_[np.ones(len(t)), t["site_i"], t["site_j"]].astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, t[["x", "y"]].to_numpy(np.float64), rcond=None)
    ai, aj = coef[1], coef[2]
    if len(t) < 3 or abs(ai[0] * aj[1] - ai[1] * aj[0]) < 1e-6 * max(np.dot(ai, ai), np.dot(aj, aj), 1e-30):
        raise InputError("site_i/site_j do not span a 2-D lattice; assign sites (sublattice finding) first")
    return ai, aj


def _site_shells(t, n_shells: int, tol: float = 0.03):
    """Per shell: (distance nm, pairs (a, b) of row indices), each unordered pair once."""
    ai, aj = _lattice_vectors(t)
    rng = np.arange(-6, 7)
    di, dj = (a.ravel() for a in np.meshgrid(rng, rng, indexing="ij"))
    half = (di > 0) | ((di == 0) & (dj > 0))
    di, dj = di[half], dj[half]
    dist = np.hypot(*(np.outer(di, ai) + np.outer(dj, aj)).T)
    order = np.argsort(dist)
    di, dj, dist = di[order], dj[order], dist[order]
    new_shell = np.r_[True, np.diff(dist) > tol * dist[0]]
    shell_of = np.cumsum(new_shell) - 1
    ii, jj = t["site_i"].to_numpy(np.int64), t["site_j"].to_numpy(np.int64)
    i0, j0 = ii.min(), jj.min()
    grid = np.full((ii.max() - i0 + 7, jj.max() - j0 + 7), -1, dtype=np.int64)
    grid[ii - i0, jj - j0] = np.arange(len(t))
    out = []
    for m in range(n_shells):
        sel = shell_of == m
        if not sel.any():
            raise InputError(f"shell {m + 1} lies beyond the 6-site search range; ask for fewer shells")
        pa, pb = [], []
        for oi, oj in zip(di[sel], dj[sel]):
            ti, tj = ii - i0 + oi, jj - j0 + oj
            ok = (ti >= 0) & (tj >= 0) & (ti < grid.shape[0]) & (tj < grid.shape[1])
            b = np.full(len(t), -1)
            b[ok] = grid[ti[ok], tj[ok]]
            has = b >= 0
            pa.append(np.flatnonzero(has))
            pb.append(b[has])
        out.append((float(dist[sel][0]), np.concatenate(pa), np.concatenate(pb)))
    return out


def _distance_shells(t, n_shells: int, tol: float = 0.15):
    """Shells from the measured pair distances: groups separated by gaps > tol x nearest distance."""
    xy = t[["x", "y"]].to_numpy(np.float64)
    tree = cKDTree(xy)
    d_nn = float(np.median(tree.query(xy, k=2)[0][:, 1]))
    pairs = tree.query_pairs(d_nn * (n_shells + 1.5), output_type="ndarray")
    d = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
    order = np.argsort(d)
    pairs, d = pairs[order], d[order]
    shell_of = np.cumsum(np.r_[True, np.diff(d) > tol * d_nn]) - 1
    out = []
    for m in range(n_shells):
        sel = shell_of == m
        if not sel.any():
            raise InputError(f"only {m} distance shells found within {n_shells + 1.5:g} neighbour distances")
        out.append((float(np.median(d[sel])), pairs[sel, 0], pairs[sel, 1]))
    return out


def _alpha(n_unlike, n_pairs, n_dop, n_sites):
    c = n_dop / n_sites
    with np.errstate(all="ignore"):
        return 1.0 - n_unlike / (2.0 * c * (1.0 - c) * n_pairs)


def warren_cowley(table: pd.DataFrame, shells: Sequence[int] = (1, 2, 3), *, by: str = "sites",
                  sublattice: int | None = None, n_boot: int = 1000, block_size: float | None = None,
                  confidence: float = 0.95, n_perm: int = 200, random_state: int | None = 0) -> pd.DataFrame:
    """Warren-Cowley short-range order of dopants vs hosts per neighbour shell, with intervals.

    ``alpha_m = 1 - P(host neighbour | dopant) / c_host = 1 - N_unlike / (2 c (1 - c) N_pairs)``
    over the unordered site pairs of shell m whose two sites are host or dopant; c is the
    dopant fraction of those sites. 0 for a random arrangement, > 0 when like atoms cluster,
    < 0 when they alternate (-1 for a checkerboard at c = 1/2).

    Parameters
    ----------
    table : pandas.DataFrame
        Classified atom table: ``x``, ``y`` (nm), ``cls``, and for ``by="sites"`` ``site_i``,
        ``site_j``; ``sublattice`` when several are present.
    shells : sequence of int
        Shell numbers (1 = nearest neighbours), counted by distinct site-lattice distance.
    by : {"sites", "distance"}
        Neighbours from the integer site lattice (shell distances from the fitted lattice
        vectors) or from the measured distances (no site indices needed).
    sublattice : int, optional
        Sublattice to analyse; default the one that holds the dopants.
    n_boot : int
        Bootstrap resamples of spatial blocks.
    block_size : float, optional
        Block edge in sites (``by="sites"``) or nearest-neighbour distances. Default: the
        larger of 6 and the edge giving about 25 blocks, so blocks span several correlation
        lengths of short-range order yet are many enough to resample.
    confidence : float
        Two-sided coverage of the interval.
    n_perm : int
        Random rearrangements (permutations of the classes over the same sites) for the
        random-arrangement reference.
    random_state : int, optional

    Returns
    -------
    pandas.DataFrame
        One row per shell: ``shell``, ``distance_nm``, ``n_pairs``, ``alpha``, ``ci_low``,
        ``ci_high`` (block bootstrap: alpha -+ t quantile x bootstrap sd, t with n_blocks - 1
        degrees of freedom), ``se``, ``random_mean``, ``random_sd`` (permutation reference),
        ``p_random`` (two-sided permutation p-value). ``attrs``: n_sites, n_dopant,
        concentration, block_size, n_blocks.
    """
    shells = [int(s) for s in np.atleast_1d(shells)]
    if not shells or min(shells) < 1 or max(shells) > 8:
        raise InputError(f"shells must be integers 1..8, got {shells!r}")
    if by not in ("sites", "distance"):
        raise InputError(f"by must be 'sites' or 'distance', got {by!r}")
    if int(n_boot) < 50 or int(n_perm) < 0 or not 0.5 < float(confidence) < 1.0:
        raise InputError(f"need n_boot >= 50, n_perm >= 0 and 0.5 < confidence < 1; got {n_boot}, {n_perm}, "
                         f"{confidence}")
    t = _select(table, sublattice, by == "sites")
    found = _site_shells(t, max(shells)) if by == "sites" else _distance_shells(t, max(shells))
    dop = (t["cls"] == "dopant").to_numpy()
    rng = np.random.default_rng(random_state)

    # Blocks in site (or nearest-neighbour) units; each pair belongs to the block of its first site.
    if by == "sites":
        u = t[["site_i", "site_j"]].to_numpy(np.float64)
    else:
        u = t[["x", "y"]].to_numpy(np.float64) / found[0][0]
    extent = np.ptp(u, axis=0) + 1
    b = float(block_size) if block_size is not None else max(6.0, float(np.sqrt(extent.prod() / 25.0)))
    if not np.isfinite(b) or b <= 0:
        raise InputError(f"block_size must be a positive number of sites, got {block_size!r}")
    key = np.floor((u - u.min(axis=0)) / b).astype(np.int64)
    _, block = np.unique(key[:, 0] * (key[:, 1].max() + 1) + key[:, 1], return_inverse=True)
    n_blocks = int(block.max()) + 1
    if n_blocks < 4:
        raise InputError(f"only {n_blocks} bootstrap blocks of {b:g} sites; give a smaller block_size or more sites")
    site_counts = np.c_[np.bincount(block, minlength=n_blocks), np.bincount(block, dop, minlength=n_blocks)]
    boot_w = rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=int(n_boot)).astype(np.float64)
    boot_sites = boot_w @ site_counts
    tq = float(student_t.ppf(0.5 + confidence / 2, n_blocks - 1))
    perms = [rng.permutation(dop) for _ in range(int(n_perm))]

    rows = []
    for m in shells:
        dist, pa, pb = found[m - 1]
        unlike = dop[pa] != dop[pb]
        alpha = float(_alpha(unlike.sum(), pa.size, dop.sum(), dop.size))
        pair_counts = np.c_[np.bincount(block[pa], minlength=n_blocks),
                            np.bincount(block[pa], unlike, minlength=n_blocks)]
        bp = boot_w @ pair_counts
        boot = _alpha(bp[:, 1], bp[:, 0], boot_sites[:, 1], boot_sites[:, 0])
        # The bootstrap variance of a sum of n_blocks resampled blocks is (n - 1) / n of the unbiased one.
        se = float(np.nanstd(boot, ddof=1) * np.sqrt(n_blocks / (n_blocks - 1)))
        ref = np.array([_alpha((p[pa] != p[pb]).sum(), pa.size, p.sum(), p.size) for p in perms])
        r_mean = float(ref.mean()) if ref.size else np.nan
        r_sd = float(ref.std(ddof=1)) if ref.size > 1 else np.nan
        extreme = np.sum(np.abs(ref - r_mean) >= abs(alpha - r_mean))
        p_val = float((1 + extreme) / (1 + ref.size)) if ref.size else np.nan
        rows.append({"shell": m, "distance_nm": dist, "n_pairs": int(pa.size), "alpha": alpha,
                     "ci_low": alpha - tq * se, "ci_high": alpha + tq * se, "se": se,
                     "random_mean": r_mean, "random_sd": r_sd, "p_random": p_val})
    out = pd.DataFrame(rows)
    out.attrs.update({"n_sites": int(dop.size), "n_dopant": int(dop.sum()), "concentration": float(dop.mean()),
                      "block_size": b, "n_blocks": n_blocks, "confidence": float(confidence), "by": by})
    return out


def pair_correlation(table: pd.DataFrame, pair: tuple[str, str] = ("dopant", "dopant"), *,
                     r_max_nm: float | None = None, bin_nm: float | None = None,
                     sublattice: int | None = None) -> pd.DataFrame:
    """Class-resolved pair correlation g_ab(r) on the sites of one sublattice.

    ``g_ab(r) = [N_ab(r) / N_all(r)] / f_ab`` where N counts unordered site pairs in the
    distance bin, N_all over all host/dopant sites, and f_ab is the fraction of pairs that
    are (a, b) when classes are assigned at random (``n_a n_b / C(n, 2)`` for a != b,
    ``C(n_a, 2) / C(n, 2)`` for a == b). Dividing by all site pairs at the same distance
    removes the lattice's own peaks and the image edges: g = 1 for a random arrangement.

    Parameters
    ----------
    table : pandas.DataFrame
        Classified atom table (``x``, ``y`` nm, ``cls``).
    pair : (str, str)
        Classes a, b (``host`` or ``dopant``).
    r_max_nm, bin_nm : float, optional
        Range and bin width (nm); default 5 and 0.1 nearest-neighbour distances.
    sublattice : int, optional

    Returns
    -------
    pandas.DataFrame
        ``r_nm`` (bin centre), ``n_pairs`` (a-b pairs), ``n_all`` (all pairs), ``g`` (NaN
        where no site pairs fall in a bin).
    """
    if len(pair) != 2 or any(p not in _PAIR_CLASSES for p in pair):
        raise InputError(f"pair must be two of {_PAIR_CLASSES}, got {pair!r}")
    t = _select(table, sublattice, False)
    xy = t[["x", "y"]].to_numpy(np.float64)
    tree = cKDTree(xy)
    d_nn = float(np.median(tree.query(xy, k=2)[0][:, 1]))
    r_max = 5 * d_nn if r_max_nm is None else float(r_max_nm)
    width = 0.1 * d_nn if bin_nm is None else float(bin_nm)
    if not (np.isfinite(r_max) and np.isfinite(width) and 0 < width < r_max) or r_max / width > 1e5:
        raise InputError(f"need 0 < bin_nm < r_max_nm (and < 1e5 bins), got {bin_nm!r}, {r_max_nm!r}")
    pairs = tree.query_pairs(r_max, output_type="ndarray")
    d = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
    cls = t["cls"].to_numpy()
    ca, cb = cls[pairs[:, 0]], cls[pairs[:, 1]]
    match = ((ca == pair[0]) & (cb == pair[1])) | ((ca == pair[1]) & (cb == pair[0]))
    # Bin centres at multiples of the width, so lattice distances sit mid-bin, not on an edge.
    edges = np.arange(0.5 * width, r_max + width, width)
    n_all, _ = np.histogram(d, edges)
    n_ab, _ = np.histogram(d[match], edges)
    n, na, nb = len(t), int((cls == pair[0]).sum()), int((cls == pair[1]).sum())
    f = na * (na - 1) / (n * (n - 1)) if pair[0] == pair[1] else 2.0 * na * nb / (n * (n - 1))
    with np.errstate(all="ignore"):
        g = np.where(n_all > 0, n_ab / n_all / f, np.nan)
    return pd.DataFrame({"r_nm": (edges[:-1] + edges[1:]) / 2, "n_pairs": n_ab, "n_all": n_all, "g": g})


def cluster_sizes(table: pd.DataFrame, *, cls: str = "dopant", shells: Sequence[int] = (1,),
                  sublattice: int | None = None, n_perm: int = 100,
                  random_state: int | None = 0) -> pd.DataFrame:
    """Size distribution of connected clusters of one class on the site lattice.

    Two sites of class ``cls`` are connected when they are neighbours in one of ``shells``
    (1 = nearest neighbours, via ``site_i``/``site_j``).

    Returns
    -------
    pandas.DataFrame
        ``size`` (sites per cluster), ``count`` (clusters of that size), ``count_random``
        (mean count over ``n_perm`` random rearrangements at the same composition).
        ``attrs``: ``mean_size`` (site-weighted mean cluster size), ``mean_size_random``.
    """
    if cls not in _PAIR_CLASSES:
        raise InputError(f"cls must be one of {_PAIR_CLASSES}, got {cls!r}")
    shells = [int(s) for s in np.atleast_1d(shells)]
    if not shells or min(shells) < 1 or max(shells) > 8:
        raise InputError(f"shells must be integers 1..8, got {shells!r}")
    t = _select(table, sublattice, True)
    found = _site_shells(t, max(shells))
    pa = np.concatenate([found[m - 1][1] for m in shells])
    pb = np.concatenate([found[m - 1][2] for m in shells])
    member = (t["cls"] == cls).to_numpy()

    def sizes(mask):
        keep = mask[pa] & mask[pb]
        graph = coo_matrix((np.ones(int(keep.sum())), (pa[keep], pb[keep])), shape=(mask.size, mask.size))
        _, lab = connected_components(graph, directed=False)
        return np.bincount(np.bincount(lab[mask]))[1:] if mask.any() else np.zeros(0, dtype=np.int64)

    obs = sizes(member)
    rng = np.random.default_rng(random_state)
    rand = [sizes(rng.permutation(member)) for _ in range(int(n_perm))]
    top = max([obs.size] + [r.size for r in rand])
    pad = lambda a: np.r_[a, np.zeros(top - a.size)]  # noqa: E731
    count_random = np.mean([pad(r) for r in rand], axis=0) if rand else np.full(top, np.nan)
    s = np.arange(1, top + 1)
    out = pd.DataFrame({"size": s, "count": pad(obs).astype(np.int64), "count_random": count_random})
    out = out[(out["count"] > 0) | (out["count_random"] > 0)].reset_index(drop=True)
    weighted = lambda c: float((s ** 2 * c).sum() / max((s * c).sum(), 1e-300))  # noqa: E731
    out.attrs.update({"mean_size": weighted(pad(obs)), "mean_size_random": weighted(count_random)})
    return out


def composition_profile(table: pd.DataFrame, *, line=None, mask=None, pixel_size_nm: float | None = None,
                        bin_nm: float | None = None, cls: str = "dopant",
                        sublattice: int | None = None) -> pd.DataFrame:
    """Fraction of ``cls`` among host/dopant sites against distance to an interface or region.

    Parameters
    ----------
    table : pandas.DataFrame
        Classified atom table (``x``, ``y`` nm, ``cls``; ``x_px``, ``y_px`` with a mask).
    line : ((x0, y0), (x1, y1)), optional
        Two points (nm) on a straight interface. Signed distance, positive on the side of
        the normal (-(y1 - y0), x1 - x0).
    mask : array_like of bool (y, x) or xarray.DataArray, optional
        Region in the image's pixel geometry (e.g. vacuum beyond a surface, a precipitate).
        Distance to its edge, negative inside, positive outside.
    pixel_size_nm : float, optional
        Pixel size of a plain-array mask; default from a DataArray's coords, else from the
        table's ``x`` against ``x_px``.
    bin_nm : float, optional
        Bin width (nm); default the nearest-neighbour distance.
    cls : str
        Class whose fraction is profiled.
    sublattice : int, optional

    Returns
    -------
    pandas.DataFrame
        ``distance_nm`` (bin centre), ``n_sites``, ``n_cls``, ``fraction``, ``fraction_err``
        (binomial 1-sigma, sqrt(f (1 - f) / n)); empty bins are dropped.
    """
    if (line is None) == (mask is None):
        raise InputError("give exactly one of line= (two points in nm) or mask= (boolean image)")
    if cls not in _PAIR_CLASSES:
        raise InputError(f"cls must be one of {_PAIR_CLASSES}, got {cls!r}")
    t = _select(table, sublattice, False)
    xy = t[["x", "y"]].to_numpy(np.float64)
    if line is not None:
        try:
            p0, p1 = (np.asarray(p, dtype=np.float64).reshape(2) for p in line)
        except (TypeError, ValueError):
            raise InputError(f"line must be two (x, y) points in nm, got {line!r}") from None
        d = p1 - p0
        if not np.isfinite(np.r_[p0, p1]).all() or np.hypot(*d) == 0:
            raise InputError("line needs two distinct finite points (nm)")
        normal = np.array([-d[1], d[0]]) / np.hypot(*d)
        dist = (xy - p0) @ normal
    else:
        dist = _mask_distance(t, mask, pixel_size_nm)
    width = bin_nm
    if width is None:
        width = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1]))
    width = float(width)
    if not np.isfinite(width) or width <= 0 or np.ptp(dist) / width > 1e5:
        raise InputError(f"bin_nm must be a positive number of nm (and < 1e5 bins), got {bin_nm!r}")
    b = np.floor(dist / width).astype(np.int64)
    is_cls = (t["cls"] == cls).to_numpy()
    ub, inv = np.unique(b, return_inverse=True)
    n = np.bincount(inv)
    k = np.bincount(inv, is_cls)
    f = k / n
    return pd.DataFrame({"distance_nm": (ub + 0.5) * width, "n_sites": n, "n_cls": k.astype(np.int64),
                         "fraction": f, "fraction_err": np.sqrt(f * (1 - f) / n)})


def _mask_distance(t, mask, pixel_size_nm) -> np.ndarray:
    m = np.asarray(getattr(mask, "values", mask))
    if m.ndim != 2 or m.dtype.kind != "b" or 0 in m.shape:
        raise InputError(f"mask must be a 2-D boolean array (y, x), got {m.dtype} {m.shape}")
    if not m.any() or m.all():
        raise InputError("mask must contain both True and False pixels to define an edge")
    check_table(t, ("x_px", "y_px"))
    if pixel_size_nm is None and hasattr(mask, "coords") and "x" in mask.coords and mask.sizes["x"] > 1:
        pixel_size_nm = float(abs(mask.coords["x"].values[1] - mask.coords["x"].values[0]))
    if pixel_size_nm is None:
        slope = np.polyfit(t["x_px"].to_numpy(np.float64), t["x"].to_numpy(np.float64), 1)[0]
        pixel_size_nm = float(abs(slope))
    if not np.isfinite(pixel_size_nm) or pixel_size_nm <= 0:
        raise InputError(f"pixel_size_nm must be positive, got {pixel_size_nm!r}")
    # Signed distance to the edge, in pixels: outside > 0, inside < 0 (half a pixel each side).
    signed = ndi.distance_transform_edt(~m) - ndi.distance_transform_edt(m)
    yx = [t["y_px"].to_numpy(np.float64), t["x_px"].to_numpy(np.float64)]
    return ndi.map_coordinates(signed.astype(np.float64), yx, order=1, mode="nearest") * pixel_size_nm


__all__ = ["warren_cowley", "pair_correlation", "cluster_sizes", "composition_profile"]
