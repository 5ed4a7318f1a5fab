"""Configuration classes resolved by site-field level, for models with a spatial field.

A field h f_i moves dopants toward where f is large without changing the composition, so the
whole-image histogram of local configurations barely sees it. Splitting every class by the
field level at its centre site (quantile bins of f over the counted sites) makes the histogram
sensitive to where configurations sit, which is what identifies h.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


class FieldBinnedDescriptor:
    """A descriptor whose classes are (field bin, configuration class) pairs."""

    def __init__(self, base, site_field: np.ndarray, valid: np.ndarray, n_bins: int = 5):
        f = np.asarray(site_field, dtype=np.float64)
        vals = f[valid]
        if vals.size == 0 or np.ptp(vals) <= 0:
            raise InputError("site_field is constant over the lattice: a uniform field is invisible at fixed "
                             "composition; give a profile that varies (e.g. with distance to an interface)")
        edges = np.unique(np.quantile(vals, np.linspace(0, 1, n_bins + 1)[1:-1]))
        self.base = base
        self.kind = base.kind
        self.name = f"{base.name}+field{len(edges) + 1}"
        self.n_bins = len(edges) + 1
        self.bin_of_site = np.searchsorted(edges, f, side="right").astype(np.int64)
        self.n_classes = base.n_classes * self.n_bins
        self.labels = tuple(f"{lab} | field bin {b + 1}/{self.n_bins}" for b in range(self.n_bins) for lab in base.labels)
        self.offsets = base.offsets

    def _combine(self, cls: np.ndarray) -> np.ndarray:
        return np.where(cls >= 0, self.bin_of_site * self.base.n_classes + cls, -1)

    def classify(self, spins, *, periodic: bool = False) -> np.ndarray:
        return self._combine(self.base.classify(spins, periodic=periodic))

    def histogram(self, spins, *, periodic: bool = False) -> np.ndarray:
        cls = self.classify(spins, periodic=periodic)
        return np.bincount(cls[cls >= 0], minlength=self.n_classes).astype(np.int64)

    def histograms(self, snapshots, *, periodic: bool = False) -> np.ndarray:
        stack = np.asarray(snapshots).reshape((-1,) + np.shape(snapshots)[-2:])
        return np.stack([self.histogram(s, periodic=periodic) for s in stack])
