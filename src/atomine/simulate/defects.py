"""Defects of a projected structure: dislocations, boundaries, dopants, vacancies, polar shifts.

Every function takes a :class:`~.structure.Structure` and returns a new one; the
input is never modified. Displacement fields are evaluated at the ideal lattice
positions (``x0_nm``, ``y0_nm``), so several fields superpose independently of
the order they are applied in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError
from . import _stem_checks as check
from .regions import check_partition
from .structure import Structure, element, merge_elements


# --- grain boundaries ----------------------------------------------------------------------
def prune_close_columns(structure: Structure, min_separation_nm: float) -> Structure:
    """Remove one column of every pair closer than ``min_separation_nm`` (nm).

    Where two lattices meet at a boundary (or crowd at a dislocation core) columns can
    overlap unphysically; of each close pair the one with the higher grain label (then the
    higher row index) is removed.
    """
    sep = check.positive("min_separation_nm", min_separation_nm)
    if len(structure) < 2:
        return structure
    pairs = cKDTree(np.column_stack([structure.x_nm, structure.y_nm])).query_pairs(sep, output_type="ndarray")
    if pairs.size == 0:
        return structure
    a, b = pairs[:, 0], pairs[:, 1]
    ga, gb = structure.grain[a], structure.grain[b]
    loser = np.where((gb > ga) | ((gb == ga) & (b > a)), b, a)
    keep = np.ones(len(structure), dtype=bool)
    keep[loser] = False
    out = structure.subset(keep)
    return out.with_step({"step": "prune_close_columns", "min_separation_nm": sep, "removed": int((~keep).sum())})


# --- dislocations --------------------------------------------------------------------------
@dataclass(frozen=True)
class EdgeDislocation:
    """A straight edge dislocation along the beam with the isotropic Volterra displacement field.

    In the frame with x' along the Burgers vector b and y' along n = (-b_y, b_x)/|b|
    (both in image coordinates, y down):

        u_x' = b/(2 pi) [theta + x'y' / (2(1 - nu) r^2)]
        u_y' = -b/(2 pi) [(1 - 2 nu)/(4(1 - nu)) ln(r^2/b^2) + (x'^2 - y'^2)/(4(1 - nu) r^2)]

    with theta = atan2(y', x'), so the cut (the slip plane, where u jumps by b) runs
    from the core along -b and the extra half-plane lies on the +n side (below the
    core as displayed for b along +x). A Burgers circuit walked clockwise as displayed
    through the real crystal fails to close by +b (finish minus start, in perfect-lattice
    steps). The ln term is referred to r = |b| (a rigid shift otherwise).

    Parameters
    ----------
    x_nm, y_nm : float
        Core position, nm.
    burgers_nm : (float, float)
        Burgers vector (b_x, b_y), nm (normally a lattice vector).
    poisson_ratio : float
        Poisson's ratio nu, in (-1, 0.5).
    """

    x_nm: float
    y_nm: float
    burgers_nm: tuple[float, float]
    poisson_ratio: float = 0.3

    def __post_init__(self):
        object.__setattr__(self, "x_nm", check.number("dislocation x_nm", self.x_nm))
        object.__setattr__(self, "y_nm", check.number("dislocation y_nm", self.y_nm))
        b = check.vector("burgers_nm", self.burgers_nm)
        if np.hypot(*b) == 0:
            raise InputError("burgers_nm must be a non-zero vector (nm)")
        object.__setattr__(self, "burgers_nm", (float(b[0]), float(b[1])))
        nu = check.number("poisson_ratio", self.poisson_ratio)
        if not -1 < nu < 0.5:
            raise InputError(f"poisson_ratio must lie in (-1, 0.5), got {nu!r}")
        object.__setattr__(self, "poisson_ratio", nu)

    def displacement(self, x_nm, y_nm) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (u_x, u_y) in nm at positions (x, y) in nm."""
        bx, by = self.burgers_nm
        b = np.hypot(bx, by)
        ex, ey = bx / b, by / b
        dx = np.asarray(x_nm, dtype=np.float64) - self.x_nm
        dy = np.asarray(y_nm, dtype=np.float64) - self.y_nm
        xp = dx * ex + dy * ey
        yp = -dx * ey + dy * ex
        # the field is singular at the core; a column there is only nudged, not thrown away
        r2 = np.maximum(xp**2 + yp**2, (0.05 * b) ** 2)
        nu = self.poisson_ratio
        u_par = b / (2 * np.pi) * (np.arctan2(yp, xp) + xp * yp / (2 * (1 - nu) * r2))
        u_perp = -b / (2 * np.pi) * ((1 - 2 * nu) / (4 * (1 - nu)) * np.log(r2 / b**2) + (xp**2 - yp**2) / (4 * (1 - nu) * r2))
        return u_par * ex - u_perp * ey, u_par * ey + u_perp * ex

    def describe(self) -> dict[str, Any]:
        return {"type": "edge", "x_nm": self.x_nm, "y_nm": self.y_nm, "burgers_nm": list(self.burgers_nm),
                "poisson_ratio": self.poisson_ratio}


def add_dislocations(structure: Structure, dislocations, *, min_separation_nm: float | None = None) -> Structure:
    """Displace every column by the summed field of edge dislocations.

    Parameters
    ----------
    structure : Structure
    dislocations : EdgeDislocation or sequence of EdgeDislocation
    min_separation_nm : float, optional
        Columns pushed closer than this near a core are pruned (see :func:`prune_close_columns`);
        default 0.5 x the smallest nearest-neighbour distance of the cells.
    """
    if isinstance(dislocations, EdgeDislocation):
        dislocations = [dislocations]
    dislocations = list(dislocations)
    if not dislocations or not all(isinstance(d, EdgeDislocation) for d in dislocations):
        raise InputError("dislocations must be one or more EdgeDislocation records")
    _require_structure(structure)
    ux, uy = np.zeros(len(structure)), np.zeros(len(structure))
    for d in dislocations:  # a loop over the few dislocations, vectorised over columns
        dx, dy = d.displacement(structure.x0_nm, structure.y0_nm)
        ux += dx
        uy += dy
    out = structure.replace(
        x_nm=structure.x_nm + ux, y_nm=structure.y_nm + uy, ux_nm=structure.ux_nm + ux, uy_nm=structure.uy_nm + uy,
        dislocations=tuple(structure.dislocations) + tuple(dislocations),
    ).with_step({"step": "add_dislocations", "dislocations": [d.describe() for d in dislocations]})
    if min_separation_nm is None:
        min_separation_nm = 0.5 * min(c.nearest_neighbour_nm() for c in structure.cells)
    return prune_close_columns(out, min_separation_nm)


# --- dopants and vacancies -----------------------------------------------------------------
class OccupancyGrid(NamedTuple):
    """Where an occupancy array sits on a sublattice: ``occupancy[site_i - i0, site_j - j0]``."""

    i0: int
    j0: int
    shape: tuple[int, int]


def occupancy_grid(structure: Structure, site: str, grain: int = 0) -> OccupancyGrid:
    """The index range of sublattice ``site`` in ``grain``, i.e. the shape an occupancy array must have."""
    _require_structure(structure)
    sel = _sublattice(structure, site, grain)
    i, j = structure.site_i[sel], structure.site_j[sel]
    return OccupancyGrid(int(i.min()), int(j.min()), (int(i.max() - i.min() + 1), int(j.max() - j.min() + 1)))


def random_occupancy(shape, *, dopant_fraction: float = 0.0, vacancy_fraction: float = 0.0, seed: int = 0) -> np.ndarray:
    """An int8 occupancy array (0 host, 1 dopant, -1 vacancy) drawn independently per site."""
    shape = tuple(check.integer("occupancy shape", s, minimum=1) for s in np.atleast_1d(shape))
    p_d = check.fraction("dopant_fraction", dopant_fraction)
    p_v = check.fraction("vacancy_fraction", vacancy_fraction)
    if p_d + p_v > 1:
        raise InputError(f"dopant_fraction + vacancy_fraction must be <= 1, got {p_d + p_v}")
    u = np.random.default_rng(check.integer("seed", seed)).random(shape)
    return np.where(u < p_d, 1, np.where(u < p_d + p_v, -1, 0)).astype(np.int8)


def substitute(structure: Structure, occupancy, *, site: str, dopant: str | None = None, grain: int = 0,
               atoms_per_column: int | None = None) -> Structure:
    """Place substitutional dopants and column vacancies on one sublattice from an occupancy array.

    Parameters
    ----------
    structure : Structure
    occupancy : array_like of int, shape ``occupancy_grid(structure, site, grain).shape``
        ``occupancy[site_i - i0, site_j - j0]``: 0 host, 1 dopant, -1 vacancy (the whole column
        is empty). Entries at sites without a column (outside the field, pruned) are ignored.
    site : str
        Sublattice (site name in the cell), e.g. "A" or "B" of a perovskite, "M" or "X2" of MoS2.
    dopant : str, optional
        Element that replaces the site's host element in dopant columns (needed if any entry is 1).
    grain : int
        Which grain's lattice the indices refer to.
    atoms_per_column : int, optional
        Host atoms replaced per dopant column; default all of them.
    """
    _require_structure(structure)
    sel = _sublattice(structure, site, grain)
    grid = occupancy_grid(structure, site, grain)
    occ = np.asarray(occupancy)
    if occ.dtype.kind not in "biuf":
        raise InputError(f"occupancy must be an integer array of 0, 1, -1, got dtype {occ.dtype}")
    if occ.shape != grid.shape:
        raise InputError(f"occupancy has shape {occ.shape} but sublattice {site!r} of grain {grain} spans {grid.shape} sites; "
                         "build it with occupancy_grid(structure, site, grain).shape")
    if occ.dtype.kind == "f" and not np.all(np.isfinite(occ)):
        raise InputError("occupancy contains NaN or inf; use 0 (host), 1 (dopant) or -1 (vacancy)")
    if not np.all(np.isin(occ, (-1, 0, 1))):
        raise InputError("occupancy may only hold 0 (host), 1 (dopant) or -1 (vacancy)")
    rows = np.flatnonzero(sel)
    value = occ[structure.site_i[rows] - grid.i0, structure.site_j[rows] - grid.j0].astype(np.int8)
    changed = rows[value != 0]
    if np.any(structure.cls[changed] != "host"):
        raise InputError(f"some {site!r} columns chosen by the occupancy are already dopants or vacancies")
    cell = structure.cells[structure.grain_phase[grain]]
    host = cell.host[cell.sites.index(site)]
    out = structure
    doped = rows[value == 1]
    if doped.size:
        if dopant is None:
            raise InputError("occupancy marks dopant sites (1) but no dopant element was given")
        dopant = element(dopant)
        if dopant == host:
            raise InputError(f"dopant {dopant!r} is the host element of site {site!r}; choose another element")
        out = merge_elements(out, (dopant,))
        h, d = out.elements.index(host), out.elements.index(dopant)
        n_host = out.counts[doped, h]
        m = n_host if atoms_per_column is None else np.minimum(
            check.integer("atoms_per_column", atoms_per_column, minimum=1), n_host)
        counts = out.counts.copy()
        counts[doped, h] -= m
        counts[doped, d] += m
        cls = out.cls.copy()
        cls[doped] = "dopant"
        out = out.replace(counts=counts, cls=cls)
    empty = rows[value == -1]
    if empty.size:
        counts = out.counts.copy()
        counts[empty] = 0
        cls = out.cls.copy()
        cls[empty] = "vacancy"
        out = out.replace(counts=counts, cls=cls)
    return out.with_step({"step": "substitute", "site": site, "grain": int(grain), "dopant": dopant,
                          "atoms_per_column": atoms_per_column, "occupancy_origin_ij": [grid.i0, grid.j0],
                          "occupancy": occ.astype(int).tolist(), "n_dopant": int(doped.size), "n_vacancy": int(empty.size)})


# --- polar displacements -------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PolarDisplacement:
    """Displacement (dx, dy) in pm of one sublattice: uniform, per domain, or a function of position.

    Exactly one of: ``vectors_pm`` of shape (1, 2) (uniform); ``vectors_pm`` of shape
    (n_domains, 2) with a ``domains`` partition; or ``field(x_nm, y_nm) -> (dx_pm, dy_pm)``.
    """

    site: str
    vectors_pm: np.ndarray | None = None
    domains: Any = None
    field: Callable | None = None

    def at(self, x_nm, y_nm) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) in pm at positions (x, y) in nm."""
        x, y = np.broadcast_arrays(np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64))
        if self.field is not None:
            try:
                dx, dy = self.field(x, y)
                return (np.broadcast_to(np.asarray(dx, dtype=np.float64), x.shape).copy(),
                        np.broadcast_to(np.asarray(dy, dtype=np.float64), x.shape).copy())
            except (TypeError, ValueError) as exc:
                raise InputError("the polar displacement field must return finite (dx_pm, dy_pm) arrays shaped like "
                                 f"its inputs ({exc})") from None
        labels = np.zeros(x.shape, dtype=np.int64) if self.domains is None else self.domains.label(x, y)
        v = self.vectors_pm[labels]
        return v[..., 0], v[..., 1]

    def describe(self) -> dict[str, Any]:
        return {"site": self.site,
                "vectors_pm": None if self.vectors_pm is None else self.vectors_pm.tolist(),
                "domains": None if self.domains is None else self.domains.describe(),
                "field": None if self.field is None else getattr(self.field, "__name__", "callable")}


def polar_displacement(structure: Structure, *, site: str, displacement_pm, domains=None) -> Structure:
    """Displace every column of sublattice ``site`` by a polar displacement in pm.

    Parameters
    ----------
    structure : Structure
    site : str
        Sublattice to move (site name in the cell, e.g. "B" for the B-site of a perovskite).
    displacement_pm : (dx, dy), array of shape (n_domains, 2), or callable
        Uniform (dx, dy) in pm; one (dx, dy) per region of ``domains``; or a function
        ``f(x_nm, y_nm) -> (dx_pm, dy_pm)`` of the ideal column position.
    domains : regions partition, optional
        Needed with one vector per domain (e.g. ``regions.Voronoi`` for a straight domain wall,
        ``regions.Stripes`` for a periodic array).
    """
    _require_structure(structure)
    sel = structure.site == site
    if not np.any(sel):
        raise InputError(f"no sublattice named {site!r}; the structure has {sorted(set(structure.site))}")
    if callable(displacement_pm):
        polar = PolarDisplacement(site, field=displacement_pm)
    else:
        if domains is None:
            vectors = check.vector("displacement_pm", displacement_pm)[None, :]
        else:
            domains = check_partition(domains)
            vectors = check.points("displacement_pm", displacement_pm)
            if vectors.shape != (domains.n_regions, 2):
                raise InputError(f"displacement_pm must have shape ({domains.n_regions}, 2): one (dx, dy) per domain; "
                                 f"got {vectors.shape}")
        polar = PolarDisplacement(site, vectors_pm=vectors, domains=domains)
    dx, dy = polar.at(structure.x0_nm[sel], structure.y0_nm[sel])
    if dx.shape != (int(sel.sum()),) or not (np.all(np.isfinite(dx)) and np.all(np.isfinite(dy))):
        raise InputError("the polar displacement field must return finite (dx_pm, dy_pm) arrays shaped like its inputs")
    limit_pm = 250.0 * min(c.nearest_neighbour_nm() for c in structure.cells)  # a quarter of the column spacing
    if np.max(np.hypot(dx, dy)) > limit_pm:
        raise InputError(f"polar displacement up to {np.max(np.hypot(dx, dy)):.0f} pm exceeds a quarter of the column spacing "
                         f"({limit_pm:.0f} pm); give it in pm")
    fx, fy = structure.dx_pm.copy(), structure.dy_pm.copy()
    fx[sel] += dx
    fy[sel] += dy
    x, y = structure.x_nm.copy(), structure.y_nm.copy()
    x[sel] += dx * 1e-3
    y[sel] += dy * 1e-3
    return structure.replace(x_nm=x, y_nm=y, dx_pm=fx, dy_pm=fy, polar=tuple(structure.polar) + (polar,)).with_step(
        {"step": "polar_displacement", **polar.describe()})


# --- helpers -------------------------------------------------------------------------------
def _require_structure(structure: Any) -> None:
    if not isinstance(structure, Structure):
        raise InputError(f"expected a Structure (from crystal.lattice, grains, phases), got {type(structure).__name__}")
    if len(structure) == 0:
        raise InputError("the structure has no columns; enlarge the field of view")


def _sublattice(structure: Structure, site: str, grain: int) -> np.ndarray:
    grain = check.integer("grain", grain, minimum=0)
    if grain >= len(structure.grain_phase):
        raise InputError(f"grain {grain} does not exist; the structure has {len(structure.grain_phase)} grain(s)")
    sel = (structure.site == site) & (structure.grain == grain)
    if not np.any(sel):
        names = sorted(set(structure.site[structure.grain == grain]))
        raise InputError(f"no sublattice named {site!r} in grain {grain}; choose one of {names}")
    return sel


__all__ = ["EdgeDislocation", "OccupancyGrid", "PolarDisplacement", "add_dislocations", "occupancy_grid",
           "polar_displacement", "prune_close_columns", "random_occupancy", "substitute"]
