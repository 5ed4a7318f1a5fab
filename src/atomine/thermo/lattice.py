"""Lattice geometry for lattice models: neighbour shells and point groups in index space.

A site is addressed by integer indices (i, j) on a grid, position r = i a1 + j a2.
Two topologies are supported:

- ``square``: a1 perpendicular to a2, |a1| = |a2|. Shells (offsets di, dj):
  1st (1, 0)-type, 2nd (1, 1)-type, 3rd (2, 0)-type; point group D4 (8 operations).
- ``triangular``: a1 and a2 at 60 degrees (a1 . a2 > 0), |a1| = |a2|; |r|^2 = i^2 + j^2 + ij.
  Shells: 1st |r| = a (6 sites), 2nd |r| = sqrt(3) a (6), 3rd |r| = 2 a (6); point group
  D6 (12 operations). A hexagonal image whose site indices use a 120-degree basis is
  re-indexed by :func:`to_sixty_degree_basis` before it gets here.

Spins follow the atomine lattice-model convention: +1 dopant, -1 host, 0 for a site
that is not part of the model (vacancy, unknown class, outside the imaged area), so
that a masked site drops out of every sum sigma_i sigma_j without special cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import InputError

KINDS = ("square", "triangular")
MAX_SHELLS = 3

_SHELLS = {
    "square": (
        ((1, 0), (0, 1), (-1, 0), (0, -1)),
        ((1, 1), (-1, 1), (-1, -1), (1, -1)),
        ((2, 0), (0, 2), (-2, 0), (0, -2)),
    ),
    "triangular": (
        ((1, 0), (0, 1), (-1, 1), (-1, 0), (0, -1), (1, -1)),
        ((1, 1), (-1, 2), (-2, 1), (-1, -1), (1, -2), (2, -1)),
        ((2, 0), (0, 2), (-2, 2), (-2, 0), (0, -2), (2, -2)),
    ),
}

# Generators of the point groups acting on index offsets (column vector (di, dj)).
_GENERATORS = {
    # rotation by 90 degrees: a1 -> a2, a2 -> -a1; mirror: a1 <-> a2
    "square": (np.array([[0, -1], [1, 0]]), np.array([[0, 1], [1, 0]])),
    # rotation by 60 degrees: a1 -> a2, a2 -> a2 - a1; mirror: a1 <-> a2
    "triangular": (np.array([[0, -1], [1, 1]]), np.array([[0, 1], [1, 0]])),
}


def check_kind(kind) -> str:
    """The lattice kind as a lower-case string, or an InputError naming the choices."""
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        raise InputError(f"unknown lattice {kind!r}; use one of {', '.join(KINDS)}")
    return kind.lower()


def shell_offsets(kind: str, shell: int) -> np.ndarray:
    """All (di, dj) offsets (n, 2) of neighbour shell ``shell`` (1-based), both directions."""
    kind = check_kind(kind)
    if isinstance(shell, bool) or not isinstance(shell, (int, np.integer)) or not 1 <= shell <= MAX_SHELLS:
        raise InputError(f"shell must be 1, 2 or 3, got {shell!r}")
    return np.array(_SHELLS[kind][int(shell) - 1], dtype=np.int64)


def half_shell_offsets(kind: str, shell: int) -> np.ndarray:
    """One offset of each +/- pair of the shell: summing over sites x these counts each unordered pair once."""
    off = shell_offsets(kind, shell)
    keep = (off[:, 0] > 0) | ((off[:, 0] == 0) & (off[:, 1] > 0))
    return off[keep]


def coordination(kind: str, shell: int) -> int:
    """Number of neighbours in a shell (square 4/4/4, triangular 6/6/6)."""
    return len(shell_offsets(kind, shell))


def shell_distance(kind: str, shell: int) -> float:
    """Distance of a shell in units of the lattice constant."""
    di, dj = shell_offsets(kind, shell)[0]
    if check_kind(kind) == "square":
        return float(np.hypot(di, dj))
    return float(np.sqrt(di * di + dj * dj + di * dj))


@lru_cache(maxsize=None)
def _group(kind: str) -> tuple[tuple[tuple[int, int], tuple[int, int]], ...]:
    gens = _GENERATORS[kind]
    elems = {((1, 0), (0, 1))}
    frontier = list(elems)
    while frontier:
        new = []
        for e in frontier:
            for g in gens:
                m = g @ np.array(e)
                key = tuple(map(tuple, m.tolist()))
                if key not in elems:
                    elems.add(key)
                    new.append(key)
        frontier = new
    return tuple(sorted(elems))


def point_group(kind: str) -> np.ndarray:
    """The lattice point group as integer matrices (n_ops, 2, 2) acting on offset column vectors."""
    return np.array(_group(check_kind(kind)), dtype=np.int64)


def cartesian(kind: str, offsets) -> np.ndarray:
    """Offsets (n, 2) in units of the lattice constant, on the ideal lattice (a1 along x)."""
    off = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    if check_kind(kind) == "square":
        return off.copy()
    return np.c_[off[:, 0] + 0.5 * off[:, 1], off[:, 1] * np.sqrt(3) / 2]


def to_sixty_degree_basis(site_i, site_j):
    """Re-index sites given on a 120-degree basis (a1, a2) to the 60-degree basis (a1, a1 + a2).

    r = i a1 + j a2 = (i - j) a1 + j (a1 + a2).
    """
    i = np.asarray(site_i, dtype=np.int64)
    j = np.asarray(site_j, dtype=np.int64)
    return i - j, j


def classify_basis(a1, a2, *, tol_deg: float = 8.0, tol_length: float = 0.1) -> tuple[str, bool]:
    """Lattice kind of a basis (a1, a2) in nm, and whether it is a 120-degree basis.

    Raises InputError for a basis that is neither square nor triangular (within the tolerances).
    """
    a1 = np.asarray(a1, dtype=np.float64)
    a2 = np.asarray(a2, dtype=np.float64)
    l1, l2 = np.hypot(*a1), np.hypot(*a2)
    if not (np.isfinite(l1) and np.isfinite(l2)) or min(l1, l2) <= 0:
        raise InputError("the site indices do not span a 2-D lattice")
    angle = float(np.degrees(np.arccos(np.clip(a1 @ a2 / (l1 * l2), -1, 1))))
    if abs(l1 - l2) > tol_length * max(l1, l2):
        raise InputError(f"the lattice vectors differ in length ({l1:.4g} vs {l2:.4g} nm): neither square nor "
                         "triangular; lattice models here need |a1| = |a2|")
    if abs(angle - 90) <= tol_deg:
        return "square", False
    if abs(angle - 60) <= tol_deg:
        return "triangular", False
    if abs(angle - 120) <= tol_deg:
        return "triangular", True
    raise InputError(f"the lattice vectors are {angle:.1f} degrees apart: neither square (90) nor triangular (60/120)")


@dataclass(frozen=True)
class Lattice:
    """An occupancy lattice: spins on an (n_i, n_j) index grid and its topology.

    Attributes
    ----------
    spins : ndarray of int8, shape (n_i, n_j)
        +1 dopant, -1 host, 0 not part of the model (vacancy, unknown, outside the image).
    kind : str
        ``square`` or ``triangular``.
    periodic : bool
        Whether the grid wraps around (simulations); image lattices are open.
    origin : (int, int)
        Index (site_i, site_j) of grid element [0, 0] in the source table's indexing.
    a_nm : float or None
        Lattice constant (nm) when known.
    positions_nm : ndarray (n_i, n_j, 2) or None
        (x, y) in nm of every grid element on the lattice fitted to an atom table (also where
        the site is masked), for fields that depend on position; None for bare arrays.
    """

    spins: np.ndarray
    kind: str = "square"
    periodic: bool = False
    origin: tuple[int, int] = (0, 0)
    a_nm: float | None = None
    positions_nm: np.ndarray | None = None

    def __post_init__(self):
        check_kind(self.kind)
        s = np.asarray(self.spins)
        if s.ndim != 2 or s.dtype != np.int8:
            raise InputError("Lattice.spins must be a 2-D int8 array of -1, 0, +1")

    @property
    def shape(self) -> tuple[int, int]:
        return self.spins.shape

    @property
    def valid(self) -> np.ndarray:
        """Sites that take part in the model (host or dopant)."""
        return self.spins != 0

    @property
    def n_sites(self) -> int:
        return int(np.count_nonzero(self.spins))

    @property
    def n_dopant(self) -> int:
        return int(np.count_nonzero(self.spins > 0))

    @property
    def composition(self) -> float:
        """Dopant fraction of the model sites."""
        n = self.n_sites
        return self.n_dopant / n if n else float("nan")


def neighbour_view(spins: np.ndarray, di: int, dj: int, periodic: bool) -> np.ndarray:
    """spins[..., i + di, j + dj] for every site of the last two axes (0 beyond an open boundary)."""
    if periodic:
        return np.roll(spins, (-di, -dj), axis=(-2, -1))
    out = np.zeros_like(spins)
    ni, nj = spins.shape[-2:]
    src_i = slice(max(di, 0), ni + min(di, 0))
    dst_i = slice(max(-di, 0), ni + min(-di, 0))
    src_j = slice(max(dj, 0), nj + min(dj, 0))
    dst_j = slice(max(-dj, 0), nj + min(-dj, 0))
    out[..., dst_i, dst_j] = spins[..., src_i, src_j]
    return out


def pair_sums(spins: np.ndarray, kind: str, n_shells: int = MAX_SHELLS, periodic: bool = True) -> np.ndarray:
    """r_m = sum over unordered pairs of shell m of sigma_i sigma_j, for m = 1..n_shells (float64).

    ``spins`` may carry leading axes (a stack of snapshots); the result is then (..., n_shells).
    These are the sufficient statistics of H = sum_m J_m r_m; masked sites (0) drop out.
    """
    s = np.asarray(spins).astype(np.int32)
    out = np.zeros(s.shape[:-2] + (n_shells,))
    for m in range(1, n_shells + 1):
        for di, dj in half_shell_offsets(kind, m):
            out[..., m - 1] += np.sum(s * neighbour_view(s, int(di), int(dj), periodic), axis=(-2, -1))
    return out


__all__ = [
    "KINDS", "MAX_SHELLS", "Lattice", "cartesian", "check_kind", "classify_basis", "coordination",
    "half_shell_offsets", "neighbour_view", "pair_sums", "point_group", "shell_distance", "shell_offsets",
    "to_sixty_degree_basis",
]
