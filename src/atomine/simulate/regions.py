"""Partitions of the specimen plane into labelled regions (grains, phases, domains).

A partition maps physical positions (x, y) in nm to integer region labels
0..n_regions-1. Grains and phases use one to decide which lattice fills which
point; polar domains use one to decide which displacement a column gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from . import _stem_checks as check


@dataclass(frozen=True, eq=False)
class Whole:
    """The whole plane is one region (a single crystal)."""

    @property
    def n_regions(self) -> int:
        return 1

    def label(self, x_nm, y_nm) -> np.ndarray:
        """Region label (all 0) at each position."""
        return np.zeros(np.broadcast(np.asarray(x_nm), np.asarray(y_nm)).shape, dtype=np.int32)

    def centres(self, fov_nm: tuple[float, float]) -> np.ndarray:
        """A representative point (x, y) in nm of each region: here the field-of-view centre."""
        return np.array([[fov_nm[1] / 2, fov_nm[0] / 2]])

    def describe(self) -> dict[str, Any]:
        return {"type": "whole"}


@dataclass(frozen=True, eq=False)
class Voronoi:
    """Nearest-seed regions: region k holds the points closer to seed k than to any other.

    Two seeds give one straight boundary (their perpendicular bisector), more
    seeds give polygonal grains.

    Parameters
    ----------
    seeds_nm : array_like, shape (n, 2)
        Seed positions (x, y) in nm.
    """

    seeds_nm: Any

    def __post_init__(self):
        object.__setattr__(self, "seeds_nm", check.points("seeds_nm", self.seeds_nm, minimum=1))

    @property
    def n_regions(self) -> int:
        return int(self.seeds_nm.shape[0])

    def label(self, x_nm, y_nm) -> np.ndarray:
        x, y = np.broadcast_arrays(np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64))
        best = np.full(x.shape, np.inf)
        out = np.zeros(x.shape, dtype=np.int32)
        # a loop over the few seeds, vectorised over all points
        for k, (sx, sy) in enumerate(self.seeds_nm):
            d2 = (x - sx) ** 2 + (y - sy) ** 2
            closer = d2 < best
            out[closer] = k
            best = np.where(closer, d2, best)
        return out

    def centres(self, fov_nm: tuple[float, float]) -> np.ndarray:
        return self.seeds_nm.copy()

    def describe(self) -> dict[str, Any]:
        return {"type": "voronoi", "seeds_nm": self.seeds_nm.tolist()}


@dataclass(frozen=True, eq=False)
class Disks:
    """A matrix (region 0) with circular inclusions (region k + 1 inside disk k).

    Parameters
    ----------
    centres_nm : array_like, shape (n, 2)
        Inclusion centres (x, y) in nm.
    radii_nm : float or array_like, shape (n,)
        Inclusion radii in nm. Where disks overlap the lower index wins.
    """

    centres_nm: Any
    radii_nm: Any

    def __post_init__(self):
        centres = check.points("centres_nm", self.centres_nm, minimum=1)
        radii = check.numbers("radii_nm", self.radii_nm, centres.shape[0])
        if np.any(radii <= 0):
            raise InputError(f"radii_nm must all be > 0, got {radii.tolist()}")
        object.__setattr__(self, "centres_nm", centres)
        object.__setattr__(self, "radii_nm", radii)

    @property
    def n_regions(self) -> int:
        return int(self.centres_nm.shape[0]) + 1

    def label(self, x_nm, y_nm) -> np.ndarray:
        x, y = np.broadcast_arrays(np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64))
        out = np.zeros(x.shape, dtype=np.int32)
        for k in range(self.centres_nm.shape[0] - 1, -1, -1):  # reversed so the lower index wins
            cx, cy = self.centres_nm[k]
            inside = (x - cx) ** 2 + (y - cy) ** 2 <= self.radii_nm[k] ** 2
            out[inside] = k + 1
        return out

    def centres(self, fov_nm: tuple[float, float]) -> np.ndarray:
        return np.vstack([[fov_nm[1] / 2, fov_nm[0] / 2], self.centres_nm])

    def describe(self) -> dict[str, Any]:
        return {"type": "disks", "centres_nm": self.centres_nm.tolist(), "radii_nm": self.radii_nm.tolist()}


@dataclass(frozen=True, eq=False)
class Stripes:
    """Two alternating domain types in parallel stripes (region 0, 1, 0, 1, ...).

    Parameters
    ----------
    width_nm : float
        Width of each stripe in nm (the period is twice this).
    normal_deg : float
        Direction of the stripe normal, degrees counter-clockwise from +x as
        displayed (0: vertical walls, 90: horizontal walls).
    offset_nm : float
        Position of a wall along the normal, measured from the origin.
    """

    width_nm: float
    normal_deg: float = 0.0
    offset_nm: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "width_nm", check.positive("width_nm", self.width_nm))
        object.__setattr__(self, "normal_deg", check.number("normal_deg", self.normal_deg))
        object.__setattr__(self, "offset_nm", check.number("offset_nm", self.offset_nm))

    @property
    def n_regions(self) -> int:
        return 2

    def _coordinate(self, x, y):
        t = np.deg2rad(self.normal_deg)
        # y grows downward, so counter-clockwise as displayed is toward -y
        return np.asarray(x) * np.cos(t) - np.asarray(y) * np.sin(t) - self.offset_nm

    def label(self, x_nm, y_nm) -> np.ndarray:
        s = self._coordinate(np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64))
        return (np.floor(s / self.width_nm).astype(np.int64) % 2).astype(np.int32)

    def centres(self, fov_nm: tuple[float, float]) -> np.ndarray:
        c = np.array([fov_nm[1] / 2, fov_nm[0] / 2])
        return np.vstack([c, c])

    def describe(self) -> dict[str, Any]:
        return {"type": "stripes", "width_nm": self.width_nm, "normal_deg": self.normal_deg, "offset_nm": self.offset_nm}


def check_partition(partition: Any) -> Any:
    """Accept any object with ``n_regions``, ``label``, ``centres`` and ``describe``."""
    needed = ("n_regions", "label", "centres", "describe")
    if partition is None:
        return Whole()
    if not all(hasattr(partition, name) for name in needed):
        raise InputError(
            f"partition must be a regions.Voronoi, Disks, Stripes or Whole, got {type(partition).__name__}")
    return partition


__all__ = ["Whole", "Voronoi", "Disks", "Stripes", "check_partition"]
