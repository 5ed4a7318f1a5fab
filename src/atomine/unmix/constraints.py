"""Constraints of MCR-ALS (:class:`atomine.unmix.MCRALS`): small objects, each entering one half-step.

MCR-ALS fits X ~ C S, with C (n_samples, k) the abundances and S (k, n_features) the
component spectra, by solving for C with S fixed (the C-step), then for S with C fixed
(the S-step). Each constraint says which half-step it changes and how:

================================  ======  ==============================================================
constraint                        step    effect
================================  ======  ==============================================================
``NonNegative(on="C")``           C       abundances >= 0 (exact NNLS per sample)
``NonNegative(on="S")``           S       spectra >= 0 (exact NNLS per channel on the transposed problem)
``Closure(total=1.0)``            C       abundances of each sample sum to ``total`` (with non-negativity:
                                          exact FCLS on the scaled simplex)
``FixedSpectra(index, spectra)``  S       the listed components' spectra are known and never updated;
                                          the S-step fits only the free ones to X - C_fixed S_fixed
``Selectivity(mask)``             C       ``mask[i, j]`` True: component j is absent from sample i; its
                                          abundance is 0 and the sample is fitted with the others only
                                          (closure and non-negativity still hold on those)
================================  ======  ==============================================================

String shortcuts: ``"nonneg"`` (both), ``"nonneg_C"``, ``"nonneg_S"``, ``"closure"``.
:func:`resolve` turns a list of constraints into the plain :class:`Plan` the solver reads.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


class Constraint:
    """Base class of MCR-ALS constraints (see the module docstring for how each enters)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({args})"


class NonNegative(Constraint):
    """Non-negativity of the abundances (``on="C"``), the spectra (``on="S"``) or both.

    Parameters
    ----------
    on : {"C", "S", "both"}
    """

    def __init__(self, on: str = "both"):
        if on not in ("C", "S", "both"):
            raise InputError(f"NonNegative(on=...) must be 'C', 'S' or 'both', got {on!r}")
        self.on = on


class Closure(Constraint):
    """Each sample's abundances sum to ``total`` (1 for fractions; the mass balance of MCR).

    Parameters
    ----------
    total : float
        Positive sum of every row of C (units of the abundances; 1 for area fractions).
    """

    def __init__(self, total: float = 1.0):
        if isinstance(total, bool) or not isinstance(total, numbers.Real) or not np.isfinite(total) or total <= 0:
            raise InputError(f"Closure total must be a positive finite number, got {total!r}")
        self.total = float(total)


class FixedSpectra(Constraint):
    """Known reference spectra held fixed during the S-step.

    Parameters
    ----------
    index : sequence of int
        Components (rows of S) that are fixed.
    spectra : array (len(index), n_features)
        Their spectra, on the same feature axis and in the same units as X.
    """

    def __init__(self, index, spectra):
        idx = np.atleast_1d(np.asarray(index))
        if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu":
            raise InputError(f"FixedSpectra index must be a non-empty list of component numbers, got {index!r}")
        if len(set(idx.tolist())) != idx.size or idx.min() < 0:
            raise InputError(f"FixedSpectra index must hold distinct non-negative integers, got {idx.tolist()}")
        spectra = np.asarray(spectra, dtype=np.float64)
        if spectra.ndim == 1:
            spectra = spectra[None, :]
        if spectra.ndim != 2 or spectra.shape[0] != idx.size:
            raise InputError(f"FixedSpectra needs one spectrum per index: {idx.size} rows, got shape {spectra.shape}")
        if not np.isfinite(spectra).all():
            raise InputError("reference spectra hold NaN or inf values; give finite spectra")
        self.index = idx.astype(np.int64)
        self.spectra = spectra


class Selectivity(Constraint):
    """Local rank: components known to be absent from given samples.

    Parameters
    ----------
    mask : bool array (n_samples, n_components)
        True where the component is absent (its abundance is forced to 0 in the C-step).
        Every sample needs at least one component allowed.
    """

    def __init__(self, mask):
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.dtype != np.bool_:
            raise InputError(f"Selectivity mask must be a boolean (n_samples, n_components) array, "
                             f"got {mask.dtype} with shape {mask.shape}")
        self.mask = mask


_SHORTCUTS = {"nonneg": lambda: NonNegative("both"), "nonneg_C": lambda: NonNegative("C"),
              "nonneg_S": lambda: NonNegative("S"), "closure": lambda: Closure(1.0)}


@dataclass
class Plan:
    """What the half-steps enforce, resolved from the constraint list for one fit."""

    nonneg_c: bool = False
    nonneg_s: bool = False
    closure: float | None = None
    fixed_index: np.ndarray | None = None   # (r,) components held fixed
    fixed_spectra: np.ndarray | None = None  # (r, n_features)
    absent: np.ndarray | None = None  # (n_samples, k) True = abundance forced to 0


def _as_constraint(c) -> Constraint:
    if isinstance(c, Constraint):
        return c
    if isinstance(c, str) and c in _SHORTCUTS:
        return _SHORTCUTS[c]()
    raise InputError(f"unknown constraint {c!r}; use one of {', '.join(_SHORTCUTS)} or a Constraint instance "
                     "(NonNegative, Closure, FixedSpectra, Selectivity)")


def resolve(constraints, n_samples: int, n_components: int, n_features: int) -> Plan:
    """Check the constraints against the problem size and merge them into one :class:`Plan`."""
    if constraints is None:
        constraints = ()
    if isinstance(constraints, (str, Constraint)):
        constraints = (constraints,)
    plan = Plan()
    for c in map(_as_constraint, constraints):
        if isinstance(c, NonNegative):
            plan.nonneg_c |= c.on in ("C", "both")
            plan.nonneg_s |= c.on in ("S", "both")
        elif isinstance(c, Closure):
            if plan.closure is not None and plan.closure != c.total:
                raise InputError(f"two closure constraints with different totals ({plan.closure}, {c.total}); keep one")
            plan.closure = c.total
        elif isinstance(c, FixedSpectra):
            _add_fixed(plan, c, n_components, n_features)
        elif isinstance(c, Selectivity):
            _add_absent(plan, c, n_samples, n_components)
        else:  # a user subclass we cannot interpret
            raise InputError(f"constraint {c!r} is not one MCRALS knows how to apply")
    return plan


def _add_fixed(plan: Plan, c: FixedSpectra, k: int, m: int) -> None:
    if c.spectra.shape[1] != m:
        raise InputError(f"reference spectra have {c.spectra.shape[1]} channels but X has {m}; "
                         "give them on the same feature axis as X")
    if c.index.max() >= k:
        raise InputError(f"fixed component index {int(c.index.max())} is out of range for {k} components")
    if plan.fixed_index is None:
        plan.fixed_index, plan.fixed_spectra = c.index.copy(), c.spectra.copy()
        return
    if np.intersect1d(plan.fixed_index, c.index).size:
        raise InputError("two FixedSpectra constraints fix the same component; give each reference once")
    plan.fixed_index = np.concatenate([plan.fixed_index, c.index])
    plan.fixed_spectra = np.vstack([plan.fixed_spectra, c.spectra])


def _add_absent(plan: Plan, c: Selectivity, n: int, k: int) -> None:
    if c.mask.shape != (n, k):
        raise InputError(f"selectivity mask has shape {c.mask.shape}; it must be (n_samples, n_components) = {(n, k)}")
    if c.mask.all(axis=1).any():
        bad = int(c.mask.all(axis=1).sum())
        raise InputError(f"selectivity mask marks every component absent in {bad} samples; "
                         "allow at least one per sample")
    plan.absent = c.mask.copy() if plan.absent is None else (plan.absent | c.mask)


__all__ = ["Closure", "Constraint", "FixedSpectra", "NonNegative", "Plan", "Selectivity", "resolve"]
