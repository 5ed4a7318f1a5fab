"""Projected unit cells and lattice generation: single crystals, grains and phases.

Coordinates are the image's: x to the right, y downward, in nm, with (0, 0) at
the centre of pixel (0, 0). A rotation of ``theta`` degrees is counter-clockwise
as displayed (the lattice vector a1 = (a, 0) turns toward -y).

Each unit cell lists its projected columns ("sites") with their fractional
positions and the atoms one column holds through the whole specimen thickness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from . import _stem_checks as check
from .defects import prune_close_columns
from .regions import Disks, Voronoi, check_partition
from .structure import Structure, element


@dataclass(frozen=True)
class UnitCell:
    """A projected 2-D unit cell.

    Attributes
    ----------
    name : str
        Material and zone axis, e.g. ``"SrTiO3 [001]"``.
    a1_nm, a2_nm : (float, float)
        Lattice vectors (x, y) in nm before rotation; ``site_j`` counts a1, ``site_i`` counts a2.
    sites : tuple of str
        Site names, e.g. ``("A", "B", "X1", "X2")``.
    fractional : tuple of (float, float)
        Site positions as fractions of (a1, a2).
    composition : tuple of tuple of (str, int)
        Atoms of each element in one column of each site, whole thickness.
    host : tuple of str
        Element of each site that a substitutional dopant replaces.
    material : str
        Chemical formula.
    """

    name: str
    a1_nm: tuple[float, float]
    a2_nm: tuple[float, float]
    sites: tuple[str, ...]
    fractional: tuple[tuple[float, float], ...]
    composition: tuple[tuple[tuple[str, int], ...], ...]
    host: tuple[str, ...]
    material: str

    @property
    def elements(self) -> tuple[str, ...]:
        seen: list[str] = []
        for comp in self.composition:
            for el, _ in comp:
                if el not in seen:
                    seen.append(el)
        return tuple(seen)

    def nearest_neighbour_nm(self) -> float:
        """Shortest distance between two projected columns of this cell's lattice, nm."""
        a = np.array([self.a1_nm, self.a2_nm]).T
        frac = np.array(self.fractional)
        shifts = np.array([(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=np.float64)
        pts = (frac[:, None, :] + shifts[None, :, :]).reshape(-1, 2) @ a.T
        base = frac @ a.T
        d = np.sqrt(((base[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
        return float(d[d > 1e-9].min())

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "material": self.material,
            "a1_nm": list(self.a1_nm), "a2_nm": list(self.a2_nm),
            "sites": {s: {"fractional": list(f), "atoms": dict(c), "host": h}
                      for s, f, c, h in zip(self.sites, self.fractional, self.composition, self.host)},
        }


def perovskite_cell(a_nm: float = 0.3905, *, A: str = "Sr", B: str = "Ti", X: str = "O",
                    thickness_cells: int = 10) -> UnitCell:
    """Cubic perovskite ABX3 viewed along [001].

    Four column types per cell: pure A at (0, 0); B-X at (1/2, 1/2) holding one B
    and one X per cell along the beam; two pure-X columns at (1/2, 0) and (0, 1/2).

    Parameters
    ----------
    a_nm : float
        Cubic lattice constant, nm (SrTiO3: 0.3905).
    A, B, X : str
        Element symbols.
    thickness_cells : int
        Specimen thickness in unit cells along the beam (atoms per column).
    """
    a = check.positive("a_nm", a_nm)
    t = check.integer("thickness_cells", thickness_cells, minimum=1)
    A, B, X = element(A), element(B), element(X)
    material = f"{A}{B}{X}3"
    return UnitCell(
        name=f"{material} [001]", a1_nm=(a, 0.0), a2_nm=(0.0, a),
        sites=("A", "B", "X1", "X2"),
        fractional=((0.0, 0.0), (0.5, 0.5), (0.5, 0.0), (0.0, 0.5)),
        composition=(((A, t),), ((B, t), (X, t)), ((X, t),), ((X, t),)),
        host=(A, B, X, X), material=material,
    )


def mos2_cell(a_nm: float = 0.316, *, M: str = "Mo", X: str = "S") -> UnitCell:
    """A monolayer MX2 transition-metal dichalcogenide (2H) viewed along [001].

    Hexagonal lattice a1 = (a, 0), a2 = (a/2, a*sqrt(3)/2); the metal column "M"
    (one atom) at (1/3, 1/3) and the chalcogen column "X2" (two atoms, top and
    bottom layer, superposed in projection) at (2/3, 2/3): a honeycomb of
    column spacing a/sqrt(3).
    """
    a = check.positive("a_nm", a_nm)
    M, X = element(M), element(X)
    material = f"{M}{X}2"
    return UnitCell(
        name=f"{material} monolayer [001]", a1_nm=(a, 0.0), a2_nm=(a / 2, a * np.sqrt(3) / 2),
        sites=("M", "X2"), fractional=((1 / 3, 1 / 3), (2 / 3, 2 / 3)),
        composition=(((M, 1),), ((X, 2),)), host=(M, X), material=material,
    )


def rocksalt_cell(a_nm: float = 0.4177, *, cation: str = "Ni", anion: str = "O",
                  thickness_cells: int = 10) -> UnitCell:
    """Rock salt MX viewed along [001]: a square lattice of mixed columns, spacing a/2.

    Every projected column alternates cation and anion along the beam, one of each
    per conventional cell.
    """
    a = check.positive("a_nm", a_nm)
    t = check.integer("thickness_cells", thickness_cells, minimum=1)
    cation, anion = element(cation), element(anion)
    material = f"{cation}{anion}"
    return UnitCell(
        name=f"{material} rock salt [001]", a1_nm=(a / 2, 0.0), a2_nm=(0.0, a / 2),
        sites=("MX",), fractional=((0.0, 0.0),), composition=(((cation, t), (anion, t)),),
        host=(cation,), material=material,
    )


def rotation_matrix(rotation_deg: float) -> np.ndarray:
    """2x2 matrix turning (x, y) image vectors counter-clockwise as displayed (y down)."""
    t = np.deg2rad(rotation_deg)
    return np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])


def _cell_lattice(cell: UnitCell, rotation_deg: float, origin: np.ndarray, bounds: tuple[float, float, float, float]):
    """All columns of one rotated lattice inside ``bounds`` = (xmin, xmax, ymin, ymax)."""
    basis = rotation_matrix(rotation_deg) @ np.array([cell.a1_nm, cell.a2_nm]).T  # columns: a1, a2
    xmin, xmax, ymin, ymax = bounds
    corners = np.array([[xmin, ymin], [xmax, ymin], [xmin, ymax], [xmax, ymax]]) - origin
    frac = np.linalg.solve(basis, corners.T)  # rows: a1 and a2 coefficients
    j = np.arange(np.floor(frac[0].min()) - 1, np.ceil(frac[0].max()) + 2, dtype=np.int64)
    i = np.arange(np.floor(frac[1].min()) - 1, np.ceil(frac[1].max()) + 2, dtype=np.int64)
    if i.size * j.size * len(cell.sites) > 20_000_000:
        raise InputError("the field of view holds more than 20 million columns; "
                         "use a smaller fov_nm or a larger lattice constant")
    jj, ii = np.meshgrid(j, i)
    out = []
    for s, (f1, f2) in enumerate(cell.fractional):  # a loop over the few sites of a cell
        pos = origin[:, None] + basis @ np.vstack([jj.ravel() + f1, ii.ravel() + f2])
        inside = (pos[0] >= xmin) & (pos[0] <= xmax) & (pos[1] >= ymin) & (pos[1] <= ymax)
        out.append((pos[0][inside], pos[1][inside], ii.ravel()[inside], jj.ravel()[inside], np.full(inside.sum(), s)))
    return [np.concatenate(parts) for parts in zip(*out)]


def _composition_counts(cells: Sequence[UnitCell], elements: tuple[str, ...]) -> list[np.ndarray]:
    """Per cell: an (n_sites, n_elements) count matrix."""
    index = {e: k for k, e in enumerate(elements)}
    tables = []
    for cell in cells:
        m = np.zeros((len(cell.sites), len(elements)), dtype=np.int32)
        for s, comp in enumerate(cell.composition):
            for el, n in comp:
                m[s, index[el]] += n
        tables.append(m)
    return tables


def polycrystal(cells: Sequence[UnitCell], partition=None, *, fov_nm, rotations_deg=0.0, origins_nm=None,
                min_separation_nm: float | None = None, margin_nm: float = 1.0) -> Structure:
    """Fill each region of a partition with its own rotated lattice.

    Parameters
    ----------
    cells : sequence of UnitCell
        One cell per region of ``partition`` (the same cell may repeat: grains of one phase).
    partition : regions.Voronoi, regions.Disks, regions.Stripes or None
        Which region each point belongs to; None is a single crystal.
    fov_nm : float or (float, float)
        Field of view (height, width) in nm; columns are generated over it plus ``margin_nm``
        on every side, so the probe tails of columns just outside the image are included.
    rotations_deg : float or sequence of float
        Rotation of each region's lattice, degrees counter-clockwise as displayed.
    origins_nm : sequence of (x, y), optional
        Position in nm of each region's site (0, 0) lattice point; by default the region's
        representative point (Voronoi seed, disk centre, field-of-view centre).
    min_separation_nm : float, optional
        At region boundaries, of two columns closer than this the one from the higher
        region label is removed. Default: 0.6 x the smallest nearest-neighbour distance.
    margin_nm : float
        Extra band around the field of view that is also filled, nm.

    Returns
    -------
    Structure
    """
    if isinstance(cells, UnitCell):
        cells = [cells]
    cells = list(cells)
    if not cells or not all(isinstance(c, UnitCell) for c in cells):
        raise InputError("cells must be a non-empty list of UnitCell (see perovskite_cell, mos2_cell, rocksalt_cell)")
    partition = check_partition(partition)
    n_regions = partition.n_regions
    if len(cells) == 1 and n_regions > 1:
        cells = cells * n_regions
    if len(cells) != n_regions:
        raise InputError(f"{len(cells)} unit cells given for a partition of {n_regions} regions; give one per region")
    height, width = check.fov(fov_nm)
    margin = check.non_negative("margin_nm", margin_nm)
    rotations = check.numbers("rotations_deg", rotations_deg, n_regions)
    origins = partition.centres((height, width)) if origins_nm is None else check.points("origins_nm", origins_nm)
    if origins.shape[0] != n_regions:
        raise InputError(f"origins_nm has {origins.shape[0]} points for {n_regions} regions")

    unique: list[UnitCell] = []
    grain_phase = []
    for c in cells:
        if c not in unique:
            unique.append(c)
        grain_phase.append(unique.index(c))
    elements = tuple(dict.fromkeys(e for c in unique for e in c.elements))
    counts_of = _composition_counts(unique, elements)

    bounds = (-margin, width + margin, -margin, height + margin)
    parts = []
    for g in range(n_regions):  # a loop over the few regions, vectorised over columns
        x, y, i, j, s = _cell_lattice(cells[g], rotations[g], origins[g], bounds)
        mine = partition.label(x, y) == g
        parts.append((x[mine], y[mine], i[mine], j[mine], s[mine], np.full(mine.sum(), g), np.full(mine.sum(), grain_phase[g])))
    x, y, i, j, s, grain, phase = (np.concatenate(p) for p in zip(*parts))
    counts = _counts(counts_of, phase, s, len(elements))
    site_names = np.empty(len(x), dtype=object)
    for p, cell in enumerate(unique):
        for k, name in enumerate(cell.sites):
            site_names[(phase == p) & (s == k)] = name

    n = len(x)
    zeros = np.zeros(n)
    structure = Structure(
        x_nm=x, y_nm=y, x0_nm=x.copy(), y0_nm=y.copy(), counts=counts, elements=elements, site=site_names,
        phase=phase.astype(np.int32), grain=grain.astype(np.int32), site_i=i, site_j=j,
        cls=np.full(n, "host", dtype=object), ux_nm=zeros, uy_nm=zeros.copy(), dx_pm=zeros.copy(), dy_pm=zeros.copy(),
        fov_nm=(height, width), cells=tuple(unique), grain_phase=tuple(grain_phase),
        grain_rotation_deg=tuple(float(r) for r in rotations), grain_origin_nm=tuple(tuple(map(float, o)) for o in origins),
        partition=partition,
        history=({"step": "polycrystal", "cells": [c.name for c in cells], "partition": partition.describe(),
                  "rotations_deg": rotations.tolist(), "origins_nm": origins.tolist(), "fov_nm": [height, width],
                  "margin_nm": margin},),
    )
    if n_regions > 1:
        if min_separation_nm is None:
            min_separation_nm = 0.6 * min(c.nearest_neighbour_nm() for c in unique)
        structure = prune_close_columns(structure, check.positive("min_separation_nm", min_separation_nm))
    return structure


def _counts(counts_of: list[np.ndarray], phase: np.ndarray, site: np.ndarray, n_elements: int) -> np.ndarray:
    out = np.zeros((phase.size, n_elements), dtype=np.int32)
    for p, table in enumerate(counts_of):
        sel = phase == p
        out[sel] = table[site[sel]]
    return out


def lattice(cell: UnitCell, *, fov_nm, rotation_deg: float = 0.0, origin_nm=None, margin_nm: float = 1.0) -> Structure:
    """A single crystal of ``cell`` filling the field of view.

    Parameters
    ----------
    cell : UnitCell
    fov_nm : float or (float, float)
        Field of view (height, width), nm.
    rotation_deg : float
        Lattice rotation, degrees counter-clockwise as displayed.
    origin_nm : (float, float), optional
        Position (x, y) in nm of lattice point (site_i, site_j) = (0, 0); default: a quarter
        cell from the field-of-view centre, so no column sits exactly on a pixel centre.
    margin_nm : float
        Band around the field of view also filled, nm.
    """
    if not isinstance(cell, UnitCell):
        raise InputError(f"cell must be a UnitCell (see perovskite_cell, mos2_cell), got {type(cell).__name__}")
    height, width = check.fov(fov_nm)
    if origin_nm is None:
        rotation = rotation_matrix(check.number("rotation_deg", rotation_deg))
        quarter = rotation @ (0.25 * (np.array(cell.a1_nm) + np.array(cell.a2_nm)))
        origin_nm = np.array([width / 2, height / 2]) + quarter
    return polycrystal([cell], None, fov_nm=(height, width), rotations_deg=rotation_deg,
                       origins_nm=[check.vector("origin_nm", origin_nm)], margin_nm=margin_nm)


def grains(cell: UnitCell | Sequence[UnitCell], *, seeds_nm, rotations_deg, fov_nm, origins_nm=None,
           min_separation_nm: float | None = None, margin_nm: float = 1.0) -> Structure:
    """Grains with straight boundaries: the Voronoi cells of ``seeds_nm``, each with its own rotation.

    Parameters
    ----------
    cell : UnitCell or sequence of UnitCell
        The phase of every grain, or one cell per grain.
    seeds_nm : array_like, shape (n, 2)
        Grain seeds (x, y) in nm; grain k is the set of points nearest seed k.
    rotations_deg : sequence of float
        Lattice rotation of each grain, degrees counter-clockwise as displayed.
    fov_nm, origins_nm, min_separation_nm, margin_nm
        As in :func:`polycrystal`.
    """
    partition = Voronoi(seeds_nm)
    cells = [cell] * partition.n_regions if isinstance(cell, UnitCell) else list(cell)
    return polycrystal(cells, partition, fov_nm=fov_nm, rotations_deg=rotations_deg, origins_nm=origins_nm,
                       min_separation_nm=min_separation_nm, margin_nm=margin_nm)


def phases(host: UnitCell, inclusion: UnitCell, *, centres_nm, radii_nm, fov_nm, host_rotation_deg: float = 0.0,
           inclusion_rotation_deg: float = 0.0, min_separation_nm: float | None = None, margin_nm: float = 1.0) -> Structure:
    """A matrix of ``host`` with circular inclusions of a second phase.

    Grain 0 is the matrix (phase 0); grain k + 1 is inclusion k (phase 1), whose lattice
    origin is at the inclusion centre.

    Parameters
    ----------
    host, inclusion : UnitCell
    centres_nm : array_like, shape (n, 2)
        Inclusion centres (x, y), nm.
    radii_nm : float or array_like
        Inclusion radii, nm.
    host_rotation_deg, inclusion_rotation_deg : float
        Lattice rotations, degrees counter-clockwise as displayed.
    """
    partition = Disks(centres_nm, radii_nm)
    n = partition.n_regions
    rotations = ([check.number("host_rotation_deg", host_rotation_deg)]
                 + [check.number("inclusion_rotation_deg", inclusion_rotation_deg)] * (n - 1))
    return polycrystal([host] + [inclusion] * (n - 1), partition, fov_nm=fov_nm, rotations_deg=rotations,
                       min_separation_nm=min_separation_nm, margin_nm=margin_nm)


__all__ = ["UnitCell", "perovskite_cell", "mos2_cell", "rocksalt_cell", "rotation_matrix", "polycrystal",
           "lattice", "grains", "phases"]
