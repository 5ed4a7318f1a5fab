"""Pure-phase core-loss EELS spectra built from a power-law background and tabulated edges.

A phase's spectrum (counts per channel of a pure pixel) is

    S(E) = B (E / E_first)^-r  +  sum over edges of [continuum + white lines + near-edge bump]

- background: power law ``B E^-r`` (r typically 2..5), ``E_first`` the first channel;
  the tails of edges below the window are part of this effective background;
- continuum of an edge at onset E0: a step ``h Phi((E - E0) / sigma)`` (normal CDF)
  decaying as ``(E / E0)^-q`` above the onset (hydrogenic-like);
- L3/L2 (M5/M4) pairs: continuum steps in the statistical ratio 2:1 (3:2), plus
  Gaussian white lines of standard deviation ``sigma`` centred at ``E0 + sigma`` with
  areas in the branching ratio ``BR : 1 - BR``; an optional crystal-field splitting
  ``D`` splits each white line into t2g (0.6 of the area, at ``E0 + sigma``) and eg
  (0.4, at ``E0 + sigma + D``), following the 6:4 degeneracy of the d holes;
- K edges and unresolved L2,3 / M4,5 edges: the step plus a delayed near-edge maximum
  ``a h Phi u/d exp(1 - u/d)`` (u = E - E0 > 0) peaking ``d`` eV above the onset.

Every part of an edge rises steepest at its onset E0 (the step's inflection and the
white line's rising flank both sit there), so the onset is where the first derivative
of the background-subtracted spectrum peaks. ``sigma`` combines the spectrometer
resolution (FWHM) with a 0.5 eV intrinsic (core-hole) width. Edge heights per atom
scale as ``(E0 / 500 eV)^-1`` times a per-family factor (:data:`FAMILY_JUMP`): a
phenomenological model, not Hartree-Slater cross-sections.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.special import ndtr

from ..errors import InputError
from . import edges as _edges

INTRINSIC_SIGMA_EV = 0.5
POST_EDGE_EXPONENT = 1.5  # continuum decay (E/E0)^-q above an onset
NEAR_EDGE_DELAY_EV = 8.0  # energy above onset of the delayed maximum of K / single edges
NEAR_EDGE_AMPLITUDE = 0.5  # its height relative to the edge jump
CRYSTAL_FIELD_T2G_FRACTION = 0.6
# Continuum jump per atom by edge family, relative; with the (E0/500)^-1 scaling this gives
# the familiar look of oxide spectra (Ti L2,3 white lines above the O K edge in SrTiO3).
FAMILY_JUMP = {"K": 0.4, "L23": 1.0, "M45": 0.8, "single": 0.5}
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass(frozen=True)
class Phase:
    """One pure component (phase) of an EELS spectrum image.

    Parameters
    ----------
    name : str
        Component name (e.g. ``"SrTiO3"``).
    composition : mapping of str -> float
        Atoms per formula unit of each tabulated element (e.g. ``{"Sr": 1, "Ti": 1, "O": 3}``).
    background_exponent : float
        Power-law exponent r of the background ``B E^-r`` (1 < r < 8; typically 2..5).
    background_to_edge : float
        Background at the first channel relative to the mean continuum jump of the
        phase's edges in the window.
    branching_ratio : mapping of str -> float, optional
        Element -> white-line ratio I(L3)/(I(L3)+I(L2)) (or M5/(M5+M4)); default
        :data:`atomine.simulate.edges.DEFAULT_BRANCHING_RATIO`.
    crystal_field_ev : mapping of str -> float, optional
        Element -> t2g/eg splitting (eV) of its white lines (e.g. ``{"Ti": 2.0}``).
    chemical_shift_ev : mapping of str -> float, optional
        Element -> shift (eV) of all its onsets from the tabulated values (valence).
    plasmon_ev, plasmon_width_ev : float
        Bulk plasmon energy and width (eV) of the low-loss single-scattering distribution.
    mean_free_path_nm : float
        Inelastic mean free path lambda (nm) that sets t/lambda in the low-loss.
    intensity : float
        Relative counts of this phase's spectrum (1 = ``counts_per_channel``).
    """

    name: str
    composition: Mapping[str, float]
    background_exponent: float = 3.0
    background_to_edge: float = 4.0
    branching_ratio: Mapping[str, float] = field(default_factory=dict)
    crystal_field_ev: Mapping[str, float] = field(default_factory=dict)
    chemical_shift_ev: Mapping[str, float] = field(default_factory=dict)
    plasmon_ev: float = 25.0
    plasmon_width_ev: float = 6.0
    mean_free_path_nm: float = 110.0
    intensity: float = 1.0

    def __post_init__(self):
        if not str(self.name):
            raise InputError("a Phase needs a non-empty name")
        comp = dict(self.composition)
        if not comp:
            raise InputError(f"phase {self.name!r} has an empty composition; give element -> atoms per formula unit")
        for el, n in comp.items():
            _edges.check_element(el)
            if not np.isfinite(n) or n <= 0:
                raise InputError(f"phase {self.name!r}: amount of {el} must be positive, got {n!r}")
        r = float(self.background_exponent)
        if not (1.0 < r < 8.0):
            raise InputError(f"phase {self.name!r}: background_exponent must be in (1, 8) (typically 2..5), got {r!r}")
        for key in ("background_to_edge", "plasmon_ev", "plasmon_width_ev", "mean_free_path_nm", "intensity"):
            v = float(getattr(self, key))
            if not np.isfinite(v) or v <= 0:
                raise InputError(f"phase {self.name!r}: {key} must be positive, got {v!r}")
        limits = (("branching_ratio", 0.0, 1.0), ("crystal_field_ev", 0.0, 20.0), ("chemical_shift_ev", -20.0, 20.0))
        for key, lo, hi in limits:
            for el, v in dict(getattr(self, key)).items():
                if el not in comp:
                    raise InputError(f"phase {self.name!r}: {key} given for {el}, which is not in its composition")
                bad = not np.isfinite(v) or not (lo < v < hi if key == "branching_ratio" else lo <= v <= hi)
                if bad:
                    raise InputError(f"phase {self.name!r}: {key}[{el}] = {v!r} is outside ({lo}, {hi})")

    def describe(self) -> dict:
        """JSON-ready description (for the ground-truth parameters)."""
        d = asdict(self)
        for key in ("composition", "branching_ratio", "crystal_field_ev", "chemical_shift_ev"):
            d[key] = {str(k): float(v) for k, v in dict(d[key]).items()}
        return d

    def formula(self) -> str:
        return " ".join(f"{el}{n:g}" for el, n in dict(self.composition).items())

    def mean_z(self, power: float = 1.7) -> float:
        """Composition-weighted mean of Z**power (HAADF-like scattering strength per atom)."""
        comp = dict(self.composition)
        total = sum(comp.values())
        return float(sum(n * _edges.atomic_number(el) ** power for el, n in comp.items()) / total)


def edge_sigma_ev(energy_resolution_ev: float) -> float:
    """Gaussian width (eV) of edge steps and white lines for a spectrometer resolution (FWHM, eV)."""
    return float(np.hypot(energy_resolution_ev * _FWHM_TO_SIGMA, INTRINSIC_SIGMA_EV))


def _edge_rows(phase: Phase, e_min: float, e_max: float) -> list[dict]:
    """One row per edge of the phase with its onset inside the window, before count scaling."""
    comp = dict(phase.composition)
    shifts = dict(phase.chemical_shift_ev)
    ratios = dict(phase.branching_ratio)
    fields = dict(phase.crystal_field_ev)
    table = _edges.edges_of(list(comp), -np.inf, np.inf)
    rows = []
    for rec in table.itertuples(index=False):
        e0 = float(rec.onset_ev) + float(shifts.get(rec.element, 0.0))
        if not (e_min < e0 < e_max):
            continue
        fam = rec.family
        h_atom = comp[rec.element] * FAMILY_JUMP[fam] * (e0 / 500.0) ** -1.0
        if fam in ("L23", "M45"):
            upper = rec.edge in ("L3", "M5")
            stat = _edges.STATISTICAL_RATIO[fam]
            br = float(ratios.get(rec.element, _edges.branching_ratio(rec.element)))
            weight = stat if upper else 1.0 - stat
            wl_total = rec.white_line_strength * h_atom
            wl_area = wl_total * (br if upper else 1.0 - br)
        else:
            br, weight, wl_area = np.nan, 1.0, 0.0
        rows.append({"component": phase.name, "element": rec.element, "edge": rec.edge, "family": fam,
                     "tabulated_onset_ev": float(rec.onset_ev), "onset_ev": e0, "jump": h_atom * weight,
                     "white_line_area": wl_area, "branching_ratio": br,
                     "crystal_field_ev": float(fields.get(rec.element, 0.0)) if fam in ("L23", "M45") else 0.0})
    return rows


class PhaseModel:
    """A phase's spectrum as a function of energy, scaled to counts on a given energy axis.

    Calling the model evaluates it at any energies (e.g. shifted per pixel for drift)
    with the scale and background reference fixed by the axis it was built on.
    """

    def __init__(self, phase: Phase, energy: np.ndarray, sigma_ev: float, counts_per_channel: float):
        self.phase = phase
        self.sigma = float(sigma_ev)
        self.e_first = float(energy[0])
        self.edges = pd.DataFrame(_edge_rows(phase, float(energy[0]), float(energy[-1])),
                                  columns=["component", "element", "edge", "family", "tabulated_onset_ev", "onset_ev",
                                           "jump", "white_line_area", "branching_ratio", "crystal_field_ev"])
        mean_jump = float(self.edges["jump"].mean()) if len(self.edges) else 1.0
        self.background_level = phase.background_to_edge * mean_jump
        self.scale = 1.0
        raw = self(energy)
        self.scale = counts_per_channel * phase.intensity / float(raw.mean())
        self.edges["jump"] *= self.scale
        self.edges["white_line_area"] *= self.scale
        self.background_level *= self.scale

    def background(self, energy) -> np.ndarray:
        """The power-law background (counts) at ``energy`` (eV)."""
        e = np.asarray(energy, dtype=np.float64)
        return self.background_level * (e / self.e_first) ** -self.phase.background_exponent

    def __call__(self, energy) -> np.ndarray:
        """Expected counts per channel of a pure pixel at ``energy`` (eV; any shape)."""
        e = np.asarray(energy, dtype=np.float64)
        out = self.background(e)
        sig = self.sigma
        for rec in self.edges.itertuples(index=False):
            e0 = rec.onset_ev
            step = ndtr((e - e0) / sig)
            decay = (np.maximum(e, e0) / e0) ** -POST_EDGE_EXPONENT
            out = out + rec.jump * step * decay
            if rec.white_line_area > 0:
                out = out + rec.white_line_area * _white_line(e, e0, sig, rec.crystal_field_ev)
            if rec.family in ("K", "single"):
                u = np.maximum(e - e0, 0.0) / NEAR_EDGE_DELAY_EV
                out = out + NEAR_EDGE_AMPLITUDE * rec.jump * step * u * np.exp(1.0 - u) * decay
        return out

    def white_line_peaks(self) -> list[tuple[float, float]]:
        """(centre eV, area counts*eV) of every white-line Gaussian."""
        peaks = []
        for rec in self.edges.itertuples(index=False):
            if rec.white_line_area > 0:
                c = rec.onset_ev + self.sigma
                if rec.crystal_field_ev > 0:
                    peaks += [(c, CRYSTAL_FIELD_T2G_FRACTION * rec.white_line_area),
                              (c + rec.crystal_field_ev, (1 - CRYSTAL_FIELD_T2G_FRACTION) * rec.white_line_area)]
                else:
                    peaks.append((c, rec.white_line_area))
        return peaks


def _gauss(e, centre, sigma):
    return np.exp(-0.5 * ((e - centre) / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


def _white_line(e, e0, sigma, crystal_field):
    if crystal_field > 0:
        f = CRYSTAL_FIELD_T2G_FRACTION
        return f * _gauss(e, e0 + sigma, sigma) + (1.0 - f) * _gauss(e, e0 + sigma + crystal_field, sigma)
    return _gauss(e, e0 + sigma, sigma)


def edges_table(models: list[PhaseModel]) -> pd.DataFrame:
    """The ground-truth edge table of all components: onsets, jumps, white-line areas and peaks (counts, eV)."""
    frames = []
    for m in models:
        t = m.edges.copy()
        t["peak_ev"] = np.where(t["white_line_area"] > 0, t["onset_ev"] + m.sigma, np.nan)
        t["sigma_ev"] = m.sigma
        frames.append(t)
    frames = [f for f in frames if len(f)]
    if not frames:  # no edge in the window: an empty table with the columns
        frames = [pd.DataFrame(columns=[*models[0].edges.columns, "peak_ev", "sigma_ev"]) if models else pd.DataFrame()]
    out = pd.concat(frames, ignore_index=True)
    return out.rename(columns={"jump": "jump_counts", "white_line_area": "white_line_area_counts_ev"})


__all__ = ["Phase", "PhaseModel", "edge_sigma_ev", "edges_table"]
