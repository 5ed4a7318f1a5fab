"""Model densities of states and the tunnelling current they give.

Energies E are in eV relative to the sample Fermi level; V is the sample bias in volts,
so positive V probes empty sample states at E = eV (numerically E = V).

Tunnelling model (Tersoff-Hamann / Bardeen with a constant tip DOS):

    I(V) = C * integral rho_s(E) [f(E - eV) - f(E)] T(E, V) dE

with f the Fermi function at temperature T_K (a sharp window 0..eV at 0 K) and
T the transmission: 1 (constant), or the WKB factor
``exp(-2 z kappa)``, ``kappa = sqrt(2 m (phi + eV/2 - E)) / hbar`` of a trapezoidal
barrier of mean height phi (eV) and width z (nm), normalised to 1 at E = V = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.special import expit, ndtr

from ..errors import InputError

KAPPA_PER_NM = 5.1231  # sqrt(2 m_e * 1 eV) / hbar in 1/nm
BOLTZMANN_EV = 8.617333e-5


def _finite_positive(value, what: str, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InputError(f"{what} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return v


@dataclass(frozen=True)
class MetallicDOS:
    """A metal: flat DOS with a weak parabolic term, ``rho0 (1 + curvature E^2)``."""

    name: str = "metal"
    rho0: float = 1.0
    curvature_per_ev2: float = 0.2

    def __post_init__(self):
        _finite_positive(self.rho0, f"{self.name}: rho0")
        if not np.isfinite(self.curvature_per_ev2) or self.curvature_per_ev2 < -0.5:
            raise InputError(f"{self.name}: curvature_per_ev2 must be finite and >= -0.5 (a positive DOS within 1 eV)")

    def density(self, energy_ev) -> np.ndarray:
        e = np.asarray(energy_ev, dtype=np.float64)
        return self.rho0 * (1.0 + self.curvature_per_ev2 * e**2)

    def finest_feature_ev(self) -> float:
        return 0.05

    def describe(self) -> dict:
        return {"component": self.name, "model": "metallic", "rho0": self.rho0,
                "curvature_per_ev2": self.curvature_per_ev2, "delta_ev": 0.0, "broadening_ev": None}


@dataclass(frozen=True)
class GappedDOS:
    """A gap of half-width ``delta_ev`` centred on the Fermi level (edges at E = +-delta).

    ``model="semiconductor"``: band edges as Gaussian-broadened steps,
    ``rho0 [Phi((E - D) / s) + Phi((-E - D) / s)]`` (s = ``broadening_ev``), whose
    steepest rise and half height are at +-D.
    ``model="bcs"``: Dynes' BCS form ``rho0 |Re[(E - i s) / sqrt((E - i s)^2 - D^2)]|``
    with coherence peaks at +-D and lifetime broadening s.
    """

    name: str = "gapped"
    delta_ev: float = 0.3
    broadening_ev: float = 0.03
    model: str = "semiconductor"
    rho0: float = 1.0

    def __post_init__(self):
        _finite_positive(self.delta_ev, f"{self.name}: delta_ev")
        _finite_positive(self.broadening_ev, f"{self.name}: broadening_ev")
        _finite_positive(self.rho0, f"{self.name}: rho0")
        if self.model not in ("semiconductor", "bcs"):
            raise InputError(f"{self.name}: model must be 'semiconductor' or 'bcs', got {self.model!r}")

    def density(self, energy_ev) -> np.ndarray:
        e = np.asarray(energy_ev, dtype=np.float64)
        d, s = self.delta_ev, self.broadening_ev
        if self.model == "semiconductor":
            return self.rho0 * (ndtr((e - d) / s) + ndtr((-e - d) / s))
        z = e - 1j * s
        return self.rho0 * np.abs(np.real(z / np.sqrt(z**2 - d**2)))

    def finest_feature_ev(self) -> float:
        return self.broadening_ev

    def describe(self) -> dict:
        return {"component": self.name, "model": f"gapped ({self.model})", "rho0": self.rho0,
                "curvature_per_ev2": 0.0, "delta_ev": self.delta_ev, "broadening_ev": self.broadening_ev}


@dataclass(frozen=True)
class ResonanceDOS:
    """Lorentzian resonances on a flat background: ``b + sum_i A_i / (1 + ((E - E_i) / g_i)^2)``.

    ``widths_ev`` are half widths at half maximum g_i; ``amplitudes`` are peak heights
    above the background ``background`` (all in units of rho0 = 1).
    """

    name: str = "resonance"
    energies_ev: Sequence[float] = field(default=(-0.45, 0.55))
    widths_ev: Sequence[float] = field(default=(0.05, 0.05))
    amplitudes: Sequence[float] = field(default=(3.0, 3.0))
    background: float = 0.3

    def __post_init__(self):
        e, w, a = (np.atleast_1d(np.asarray(v, dtype=np.float64))
                   for v in (self.energies_ev, self.widths_ev, self.amplitudes))
        if not (e.size == w.size == a.size) or e.size == 0:
            raise InputError(f"{self.name}: energies_ev, widths_ev and amplitudes need the same non-zero length")
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(w)) and np.all(np.isfinite(a))):
            raise InputError(f"{self.name}: resonance parameters must be finite")
        if np.any(w <= 0) or np.any(a <= 0):
            raise InputError(f"{self.name}: resonance widths and amplitudes must be positive")
        _finite_positive(self.background, f"{self.name}: background", allow_zero=True)
        object.__setattr__(self, "energies_ev", tuple(float(v) for v in e))
        object.__setattr__(self, "widths_ev", tuple(float(v) for v in w))
        object.__setattr__(self, "amplitudes", tuple(float(v) for v in a))

    def density(self, energy_ev) -> np.ndarray:
        e = np.asarray(energy_ev, dtype=np.float64)[..., None]
        x = (e - np.asarray(self.energies_ev)) / np.asarray(self.widths_ev)
        peaks = np.asarray(self.amplitudes) / (1.0 + x**2)
        return self.background + peaks.sum(axis=-1)

    def finest_feature_ev(self) -> float:
        return float(min(self.widths_ev))

    def describe(self) -> dict:
        return {"component": self.name, "model": "resonances", "rho0": self.background, "curvature_per_ev2": 0.0,
                "delta_ev": 0.0, "broadening_ev": float(min(self.widths_ev))}

    def resonances(self) -> list[dict]:
        return [{"component": self.name, "energy_ev": e, "hwhm_ev": w, "amplitude": a}
                for e, w, a in zip(self.energies_ev, self.widths_ev, self.amplitudes)]


DOS_TYPES = (MetallicDOS, GappedDOS, ResonanceDOS)


def energy_grid(biases: np.ndarray, dos: Sequence, temperature_k: float) -> tuple[np.ndarray, float]:
    """Fine integration grid (eV) spanning every window, and its step (1/20 of the finest feature)."""
    finest = min(d.finest_feature_ev() for d in dos)
    kt = BOLTZMANN_EV * temperature_k
    if kt > 0:
        finest = min(finest, 2.0 * kt)
    de = float(np.clip(finest / 20.0, 2e-4, 2e-3))
    pad = 12.0 * kt + 4.0 * de
    lo, hi = min(float(biases.min()), 0.0) - pad, max(float(biases.max()), 0.0) + pad
    n = int(np.ceil((hi - lo) / de)) + 1
    return lo + np.arange(n) * de, de


def transmission(energy: np.ndarray, bias: np.ndarray, barrier_ev: float | None, tip_height_nm: float) -> np.ndarray:
    """WKB barrier transmission (n_bias, n_energy), 1 at E = V = 0; all ones when ``barrier_ev`` is None."""
    if barrier_ev is None:
        return np.ones((bias.size, energy.size))
    height = barrier_ev + bias[:, None] / 2.0 - energy[None, :]
    kappa = KAPPA_PER_NM * np.sqrt(np.clip(height, 1e-6, None))
    return np.exp(-2.0 * tip_height_nm * (kappa - KAPPA_PER_NM * np.sqrt(barrier_ev)))


def window(energy: np.ndarray, bias: np.ndarray, de: float, temperature_k: float) -> np.ndarray:
    """Occupation difference f(E - eV) - f(E) per grid cell (n_bias, n_energy).

    At 0 K each cell gets the signed fraction of its width inside [0, eV], so the
    integral is exact for a DOS linear within a cell.
    """
    e = energy[None, :]
    v = bias[:, None]
    if temperature_k > 0:
        kt = BOLTZMANN_EV * temperature_k
        return expit(-(e - v) / kt) - expit(-e / kt)
    lo, hi = np.minimum(v, 0.0), np.maximum(v, 0.0)
    inside = np.clip(np.minimum(hi, e + de / 2) - np.maximum(lo, e - de / 2), 0.0, None) / de
    return np.sign(v) * inside


def tunnelling_currents(dos: Sequence, bias: np.ndarray, *, temperature_k: float = 0.0, barrier_ev: float | None = None,
                        tip_height_nm: float = 0.6) -> np.ndarray:
    """Unnormalised current of each pure DOS at each bias, shape (k, n_bias) (C = 1)."""
    bias = np.asarray(bias, dtype=np.float64)
    grid, de = energy_grid(bias, dos, temperature_k)
    rho = np.stack([d.density(grid) for d in dos])  # (k, n_e)
    out = np.empty((len(dos), bias.size))
    for lo in range(0, bias.size, 128):  # bounded memory: 128 biases x n_e at a time
        b = bias[lo:lo + 128]
        kernel = window(grid, b, de, temperature_k) * transmission(grid, b, barrier_ev, tip_height_nm) * de
        out[:, lo:lo + 128] = rho @ kernel.T
    return out


__all__ = ["BOLTZMANN_EV", "DOS_TYPES", "GappedDOS", "KAPPA_PER_NM", "MetallicDOS", "ResonanceDOS", "energy_grid",
           "transmission", "tunnelling_currents", "window"]
