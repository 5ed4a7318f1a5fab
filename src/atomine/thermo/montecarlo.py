"""Monte Carlo sampling of the lattice model H = sum_m J_m r_m - h F (canonical Kawasaki or semi-grand-canonical).

The model (one convention in atomine): sigma = +1 dopant, -1 host, 0 not in the model;
r_m = sum over unordered pairs of neighbour shell m of sigma_i sigma_j (m = 1..3),
F = sum_i f_i sigma_i for an optional fixed site-field profile f; energies in units of
k_B T_f, simulated at t = T / T_f with Metropolis acceptance min(1, exp(-dE / t)).

- ``canonical``: Kawasaki exchange of a dopant and a host at fixed composition, either
  between shell-1 neighbours (``local``, the physical diffusion path), between a random
  dopant and a random host anywhere (``nonlocal``, fast equilibration), or half each
  (``mixed``).
- ``sgc``: single-site flips under H - mu sum_i sigma_i (mu = ``chemical_potential``).

Several independent chains run in parallel (numba ``prange``), each with its own random
stream spawned from ``seed``; a given seed reproduces every number exactly. The kernels
live in :mod:`atomine.thermo._mc_kernels`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from numbers import Real

import numpy as np

from ..errors import InputError
from . import _mc_kernels as _k
from .lattice import MAX_SHELLS, Lattice, check_kind, coordination, neighbour_view, pair_sums, shell_offsets

_MODES = {"local": _k.LOCAL, "nonlocal": _k.NONLOCAL, "mixed": _k.MIXED}
_ENSEMBLES = ("canonical", "sgc")
_MAX_CHAINS = 256
_MAX_SITES = 2**24  # 4096 x 4096; the neighbour table alone is then ~1 GB
_MAX_RECORDED = 2 * 10**8  # chains x samples: beyond this the outputs alone would not fit in memory
_PROGRESS_BLOCKS = 100


@dataclass
class MCResult:
    """Samples of a Monte Carlo run (all energies in k_B T_f).

    Attributes
    ----------
    kind, ensemble : str
        Lattice kind and ensemble of the run.
    couplings : ndarray (3,)
        J_1, J_2, J_3 (zero-padded), so that E = couplings . r - field * F.
    field, temperature : float
        h and t = T / T_f.
    n_sites : int
        Number of model (non-zero) sites.
    n_pairs : ndarray (3,)
        Number of unordered pairs of each shell with both sites in the model.
    energy : ndarray (n_chains, n_samples)
        Total energy E = sum_m J_m r_m - h F (without the -mu sum sigma term of ``sgc``).
    pair_sums : ndarray (n_chains, n_samples, 3)
        r_m for all three shells, whichever couplings were given.
    field_sum : ndarray (n_chains, n_samples)
        F = sum_i f_i sigma_i (zeros without a site field).
    magnetisation : ndarray (n_chains, n_samples)
        sum_i sigma_i / n_sites (constant in the canonical ensemble).
    snapshots : ndarray (n_chains, n_snapshots, n_i, n_j) of int8
        Evenly spaced configurations of each chain; the last one is the final state.
    final : ndarray (n_chains, n_i, n_j) of int8
        Configuration of each chain at the end.
    acceptance : float
        Accepted / attempted moves over the whole run (equilibration included).
    attempts : int
        Attempted moves over all chains and sweeps (n_chains x n_sites x total sweeps).
    seconds : float
        Wall time of the sampling (compilation included on the first call).
    """

    kind: str
    couplings: np.ndarray
    field: float
    temperature: float
    ensemble: str
    n_sites: int
    n_pairs: np.ndarray
    energy: np.ndarray
    pair_sums: np.ndarray
    field_sum: np.ndarray
    magnetisation: np.ndarray
    snapshots: np.ndarray
    final: np.ndarray
    acceptance: float
    attempts: int
    seconds: float

    def energy_per_site(self) -> float:
        """Mean energy per model site, <E> / n_sites (k_B T_f)."""
        return float(np.mean(self.energy)) / self.n_sites

    def heat_capacity(self) -> float:
        """Heat capacity per site in k_B: var(E) / (n_sites t^2), the variance pooled within chains.

        Pooling within chains keeps chain-to-chain offsets (unequilibrated chains) out of the
        fluctuation. NaN with fewer than two samples per chain.
        """
        if self.energy.shape[1] < 2:
            return float("nan")
        var = float(np.mean(np.var(self.energy, axis=1, ddof=1)))
        return var / (self.n_sites * self.temperature**2)

    def sro(self) -> np.ndarray:
        """Warren-Cowley parameters alpha_m (3,) from the mean pair sums and mean composition.

        alpha_m = 1 - P_unlike / (2 c (1 - c)) with P_unlike = (1 - <r_m> / n_pairs) / 2 the fraction
        of unlike pairs and c the dopant fraction: 0 for a random alloy, < 0 when unlike neighbours
        are favoured (ordering), > 0 for clustering. NaN for a shell without pairs or c in {0, 1}.
        """
        rbar = self.pair_sums.reshape(-1, MAX_SHELLS).mean(axis=0)
        c = (1.0 + float(np.mean(self.magnetisation))) / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            p_unlike = (1.0 - rbar / self.n_pairs) / 2.0
            alpha = 1.0 - p_unlike / (2.0 * c * (1.0 - c))
        alpha[(self.n_pairs == 0) | ~np.isfinite(alpha)] = np.nan
        return alpha

    def statistics(self) -> np.ndarray:
        """Sufficient statistics per sample, (n_chains * n_samples, 4): rows (r_1, r_2, r_3, -F).

        With theta = (J_1, J_2, J_3, h) every row gives the sample's energy as theta . row.
        """
        r = self.pair_sums.reshape(-1, MAX_SHELLS)
        return np.column_stack([r, -self.field_sum.reshape(-1)])


def _check_spins(spins, kind, periodic):
    """(int8 spins, kind, periodic) from an array or a Lattice."""
    if isinstance(spins, Lattice):
        if kind is not None and check_kind(kind) != spins.kind:
            raise InputError(f"kind={kind!r} contradicts the Lattice's kind {spins.kind!r}; leave kind unset")
        kind = spins.kind
        periodic = spins.periodic if periodic is None else periodic
        spins = spins.spins
    kind = check_kind("square" if kind is None else kind)
    periodic = True if periodic is None else bool(periodic)
    arr = np.asarray(spins)
    if arr.ndim != 2:
        raise InputError(f"spins must be a 2-D array (n_i, n_j), got {arr.ndim} dimension(s)")
    if arr.dtype.kind not in "iuf":  # a boolean mask is not a configuration
        raise InputError(f"spins must be numbers -1, 0, +1, got dtype {arr.dtype}")
    if arr.size > _MAX_SITES:
        raise InputError(f"spins has {arr.size} sites, more than {_MAX_SITES}: simulate a smaller lattice")
    if not np.all(np.isin(arr, (-1, 0, 1))):
        raise InputError("spins must contain only -1 (host), 0 (not in the model) and +1 (dopant)")
    s = arr.astype(np.int8)
    if np.count_nonzero(s) < 4:
        raise InputError(f"only {np.count_nonzero(s)} model sites (non-zero spins): need at least 4")
    return s, kind, periodic


def _check_couplings(couplings) -> np.ndarray:
    try:
        j = np.asarray(couplings, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"couplings must be 1 to 3 numbers (J1, J2, J3), got {couplings!r}") from None
    if j.ndim != 1 or not 1 <= j.size <= MAX_SHELLS:
        raise InputError(f"couplings must be 1 to 3 numbers (J1, J2, J3), got shape {j.shape}")
    if not np.all(np.isfinite(j)):
        raise InputError("couplings must be finite numbers")
    return np.concatenate([j, np.zeros(MAX_SHELLS - j.size)])


def _check_real(value, name, *, positive=False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _check_int(value, name, lo, hi=None) -> int:
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_int or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise InputError(f"{name} must be an integer {rng}, got {value!r}")
    return int(value)


def _check_site_field(site_field, field, s):
    """The field profile at the model sites (n,), or zeros when there is none."""
    valid = s != 0
    if site_field is None:
        if field != 0:
            raise InputError("field is non-zero but site_field is None: pass the profile f_i as site_field "
                             "(a uniform field is the chemical_potential of the sgc ensemble)")
        return np.zeros(int(valid.sum()))
    f = np.asarray(site_field)
    if f.shape != s.shape or f.dtype.kind not in "biuf":
        raise InputError(f"site_field must be a numeric array of the spins' shape {s.shape}, got {f.shape}")
    f = f.astype(np.float64)[valid]
    if not np.all(np.isfinite(f)):
        raise InputError("site_field has NaN or infinite values at model sites: fill or mask those sites")
    return f


def _neighbour_table(s, kind, periodic):
    """nb (n, 3, z) int32: compact index of each neighbour of each model site, n (the ghost) where there is none."""
    valid = s != 0
    n = int(valid.sum())
    index = np.full(s.shape, -1, dtype=np.int64)
    index[valid] = np.arange(n)
    z = coordination(kind, 1)
    nb = np.empty((n, MAX_SHELLS, z), dtype=np.int32)
    own = index[valid]
    for m in range(MAX_SHELLS):
        for q, (di, dj) in enumerate(shell_offsets(kind, m + 1)):
            # neighbour_view is what pair_sums uses, so the bonds here are exactly the ones it counts
            other = neighbour_view(index + 1, int(di), int(dj), periodic)[valid] - 1
            # a site that is its own neighbour (tiny periodic grid) has a constant bond s_i^2: leave it out
            other[(other < 0) | (other == own)] = n
            nb[:, m, q] = other
    return nb


def _seed_states(seed, n_chains):
    try:
        children = np.random.SeedSequence(seed).spawn(n_chains)
    except (TypeError, ValueError) as exc:
        raise InputError(f"seed must be a non-negative integer or None, got {seed!r} ({exc})") from None
    states = np.array([ch.generate_state(4, np.uint64) for ch in children], dtype=np.uint64)
    states[np.all(states == 0, axis=1), 0] = 1  # the all-zero state is xoshiro's only fixed point
    return states


def sample(spins, couplings, *, kind=None, field=0.0, site_field=None, temperature=1.0,
           ensemble="canonical", chemical_potential=0.0, moves="mixed", periodic=None,
           n_chains=2, n_sweeps=1000, n_equilibrate=200, thin=1, n_snapshots=0, seed=0,
           progress=None) -> MCResult:
    """Sample the lattice model by Metropolis Monte Carlo.

    Parameters
    ----------
    spins : array (n_i, n_j) of -1/0/+1, or Lattice
        Starting configuration of every chain (+1 dopant, -1 host, 0 not in the model: fixed
        and inert). The canonical ensemble keeps its composition. Not modified.
    couplings : sequence of 1 to 3 float
        J_1, J_2, J_3 in k_B T_f (J > 0 favours unlike neighbours).
    kind : {"square", "triangular"}, optional
        Lattice topology; default from a Lattice, else "square".
    field : float
        h (k_B T_f) multiplying the site-field profile; h > 0 attracts dopants where f > 0.
    site_field : array (n_i, n_j) of float, optional
        Field profile f_i (dimensionless); None means no field term (then ``field`` must be 0).
    temperature : float
        t = T / T_f > 0.
    ensemble : {"canonical", "sgc"}
        Kawasaki exchange at fixed composition, or single flips at fixed chemical potential.
    chemical_potential : float
        mu (k_B T_f) of the sgc ensemble, H_sgc = H - mu sum_i sigma_i; ignored when canonical.
    moves : {"mixed", "local", "nonlocal"}
        Canonical exchange partners: shell-1 neighbours, any dopant-host pair, or half each.
    periodic : bool, optional
        Periodic boundaries; default from a Lattice, else True.
    n_chains : int
        Independent chains (1..256), run in parallel.
    n_sweeps, n_equilibrate, thin : int
        Sweeps recorded (one sweep = n_sites attempted moves), sweeps discarded before, and the
        recording interval: n_sweeps // thin samples per chain.
    n_snapshots : int
        Evenly spaced configurations kept per chain (0..n_sweeps).
    seed : int or None
        Seed of numpy's SeedSequence; chain k uses its k-th spawned stream.
    progress : callable(done, total), optional
        Called with the sweeps done so far and the total after each block of sweeps.

    Returns
    -------
    MCResult

    Raises
    ------
    InputError
        For unusable spins, couplings, temperature, field, ensemble, moves or run lengths.
    """
    s, kind, periodic = _check_spins(spins, kind, periodic)
    coup = _check_couplings(couplings)
    t = _check_real(temperature, "temperature", positive=True)
    h = _check_real(field, "field")
    mu = _check_real(chemical_potential, "chemical_potential")
    if not isinstance(ensemble, str) or ensemble not in _ENSEMBLES:
        raise InputError(f"unknown ensemble {ensemble!r}; use 'canonical' or 'sgc'")
    if not isinstance(moves, str) or moves not in _MODES:
        raise InputError(f"unknown moves {moves!r}; use 'mixed', 'local' or 'nonlocal'")
    n_chains = _check_int(n_chains, "n_chains", 1, _MAX_CHAINS)
    n_sweeps = _check_int(n_sweeps, "n_sweeps", 1)
    n_equilibrate = _check_int(n_equilibrate, "n_equilibrate", 0)
    thin = _check_int(thin, "thin", 1, n_sweeps)
    n_snapshots = _check_int(n_snapshots, "n_snapshots", 0, n_sweeps)
    n_samples = n_sweeps // thin
    if n_chains * n_samples > _MAX_RECORDED:
        raise InputError(f"{n_chains} chains x {n_samples} samples is too many to record: raise thin")
    if progress is not None and not callable(progress):
        raise InputError("progress must be a callable(done, total) or None")
    f_sites = _check_site_field(site_field, h, s)

    valid = s != 0
    spins_sites = s[valid]
    n = spins_sites.size
    n_dop = int(np.count_nonzero(spins_sites > 0))
    if ensemble == "canonical" and n_dop in (0, n):
        raise InputError("a single species: nothing to exchange in the canonical ensemble; start from both "
                         "dopants (+1) and hosts (-1), or use ensemble='sgc'")
    mode = _k.SGC if ensemble == "sgc" else _MODES[moves]

    nb = _neighbour_table(s, kind, periodic)
    n_active = int(np.max(np.nonzero(coup)[0], initial=-1)) + 1  # shells that enter the acceptance test
    f = np.append(f_sites, 0.0)
    r0 = np.rint(pair_sums(s, kind, MAX_SHELLS, periodic)).astype(np.int64)
    n_pairs = np.rint(pair_sums(np.abs(s), kind, MAX_SHELLS, periodic)).astype(np.int64)

    # per-chain state, every chain starting from the given configuration
    state_s = np.tile(np.append(spins_sites, np.int8(0)), (n_chains, 1))
    order0 = np.concatenate([np.flatnonzero(spins_sites > 0), np.flatnonzero(spins_sites < 0)]).astype(np.int32)
    pos0 = np.empty(n, dtype=np.int32)
    pos0[order0] = np.arange(n, dtype=np.int32)
    order = np.tile(order0, (n_chains, 1))
    pos = np.tile(pos0, (n_chains, 1))
    r = np.tile(r0, (n_chains, 1))
    fsum = np.full(n_chains, float(f_sites @ spins_sites))
    mag = np.full(n_chains, int(spins_sites.astype(np.int64).sum()), dtype=np.int64)
    rng = _seed_states(seed, n_chains)
    accepted = np.zeros(n_chains, dtype=np.int64)

    snap_of = np.full(n_sweeps, -1, dtype=np.int64)
    for j in range(n_snapshots):
        snap_of[((j + 1) * n_sweeps) // n_snapshots - 1] = j
    flat = np.flatnonzero(valid.ravel()).astype(np.int64)
    energy = np.zeros((n_chains, n_samples))
    pairs = np.zeros((n_chains, n_samples, MAX_SHELLS))
    fields = np.zeros((n_chains, n_samples))
    mags = np.zeros((n_chains, n_samples))
    snaps = np.tile(s.ravel(), (n_chains, n_snapshots, 1))

    total = n_equilibrate + n_sweeps
    block = total if progress is None else max(1, -(-total // _PROGRESS_BLOCKS))
    start = time.perf_counter()
    for sweep0 in range(0, total, block):
        sweep1 = min(total, sweep0 + block)
        _k.run_block(state_s, order, pos, r, fsum, mag, rng, accepted, nb, coup, n_active, f, h, mu, 1.0 / t,
                     mode, n_dop, sweep0, sweep1, n_equilibrate, thin, snap_of, energy, pairs, fields, mags,
                     snaps, flat)
        if progress is not None:
            progress(sweep1, total)
    seconds = time.perf_counter() - start

    final = np.tile(s, (n_chains, 1, 1))
    final[:, valid] = state_s[:, :n]
    attempts = n_chains * n * total
    return MCResult(
        kind=kind, couplings=coup, field=h, temperature=t, ensemble=ensemble, n_sites=n,
        n_pairs=n_pairs, energy=energy, pair_sums=pairs, field_sum=fields,
        magnetisation=mags, snapshots=snaps.reshape(n_chains, n_snapshots, *s.shape), final=final,
        acceptance=float(accepted.sum()) / attempts, attempts=attempts, seconds=seconds,
    )


__all__ = ["MCResult", "sample"]
