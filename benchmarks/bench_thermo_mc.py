"""Canonical Monte Carlo of a pair lattice model against icet (mchammer) and smol.

The same physical problem for all three codes: a periodic 64 x 64 square lattice, binary
A/B at dopant fraction 3/8, pair couplings J1 = 0.3, J2 = -0.1 (J3 = 0) in k_B T_f at
t = T / T_f = 1 (acceptance ~0.25, disordered with strong short-range order), canonical
swaps of a random dopant with a random host anywhere (icet's ``CanonicalEnsemble``, smol's
``"swap"`` step, our ``moves="nonlocal"``).

- **Geometry in the 3-D peers**: a one-site tetragonal cell, a = 3 A, c = 20 A, pair cutoff
  2.05 a, so the cluster space holds exactly the three in-plane pair shells (a, sqrt2 a, 2a;
  checked below) and nothing along c.
- **Energy mapping**: both peers use a point basis that is +-1 for a binary (icet's default
  basis; smol's ``"sinusoid"`` basis; smol's ``"indicator"`` basis is 0/1 and is not used).
  Their pair correlation is the orbit average r_m / (2 N) and the energy is N times the
  parameter-weighted cluster vector, so the pair parameter is 2 J_m eps with
  eps = k_B x 1000 K (each peer's own k_B), the peers run at T = t x 1000 K, and
  Metropolis sees exp(-dH / t) as ours does. Checked before timing: the peers' energies of
  random configurations divided by eps equal ours exactly (J3 != 0 in that check).
- **Timing**: trial swaps per second of a fixed number of trial steps, set-up excluded;
  ours after a warm-up call (numba compilation excluded), 1 and 2 chains (``prange``),
  median of 3. smol parallelises each local update over OpenMP threads (default: one per
  core); on a shared 2-core machine that is >10x slower than one thread, so the peer's
  single-thread setting (``processor.num_threads = 1``) is the one compared, and the default
  is shown too. icet's cost per trial grows with the supercell (its configuration manager
  rebuilds the whole occupation array for every trial swap), so its rate on 16 x 16 (in the
  agreement table) is several times its rate on 64 x 64. Neither peer needed a patch on
  numpy 2.4 / scipy 1.17; both run unmodified.
- **Agreement**: the peers take ~1e4 swaps/s, too slow to equilibrate 64 x 64 (4096 sites)
  in a minute, so mean energy per site and alpha_1 are compared on 16 x 16 (same model,
  t, composition): 100 discarded + 700 recorded sweeps for each peer, 20,000 x 2 chains for
  ours; errors from batch means (20 batches per chain).

Runnable alone: ``python benchmarks/bench_thermo_mc.py``.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

import numpy as np

L_BIG, L_SMALL = 64, 16
DOPANT_FRACTION = 3 / 8
J = np.array([0.3, -0.1, 0.0])  # k_B T_f
J_CHECK = np.array([0.3, -0.1, 0.05])  # energy-mapping check: all three shells non-zero
TEMPERATURE = 1.0  # t = T / T_f
T_F_KELVIN = 1000.0  # what the peers (eV, kelvin) see as T_f
A_ANG, C_ANG = 3.0, 20.0
CUTOFF_ANG = 2.05 * A_ANG  # between the 3rd (2a) and 4th (sqrt5 a) in-plane shells, below c
DOPANT, HOST = "Au", "Ag"
ICET_STEPS = 40_000
SMOL_STEPS = 40_000
SMOL_THREADED_STEPS = 1_000
OUR_SWEEPS = 1_000
REPEATS = 3
PEER_EQ_SWEEPS, PEER_SWEEPS = 100, 700
OUR_SMALL_SWEEPS, OUR_SMALL_EQ = 20_000, 500
N_BATCHES = 20
N_CHECK = 5


def _start(L: int, seed: int = 0) -> np.ndarray:
    """Random configuration (L, L) int8 with exactly round(3/8 L^2) dopants."""
    rng = np.random.default_rng(seed)
    s = np.full((L, L), -1, np.int8)
    s.flat[rng.choice(L * L, round(DOPANT_FRACTION * L * L), replace=False)] = 1
    return s


def _our_energy(s: np.ndarray, couplings) -> float:
    from atomine.thermo.lattice import pair_sums

    return float(np.asarray(couplings) @ pair_sums(s, "square", 3, True))


def _alpha1(spins_stack: np.ndarray) -> np.ndarray:
    """Warren-Cowley alpha_1 of each configuration (n, L, L) on the periodic square lattice."""
    s = spins_stack.astype(np.float64)
    r1 = (s * np.roll(s, 1, axis=1)).sum((1, 2)) + (s * np.roll(s, 1, axis=2)).sum((1, 2))
    n_pairs = 2 * s.shape[1] * s.shape[2]
    c = DOPANT_FRACTION
    return 1 - (1 - r1 / n_pairs) / 2 / (2 * c * (1 - c))


def _mean_err(series: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error from batch means (rows = independent chains)."""
    series = np.atleast_2d(series)
    n = series.shape[1] // N_BATCHES * N_BATCHES
    means = series[:, :n].reshape(series.shape[0], N_BATCHES, -1).mean(axis=2).ravel()
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(means.size))


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def _rate(steps: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    return steps / (time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------ icet
class _Icet:
    """icet cluster expansion of the model on an L x L supercell (site k = i L + j, as spins.ravel())."""

    def __init__(self, L: int, couplings):
        from ase import Atoms
        from ase.units import kB
        from icet import ClusterExpansion, ClusterSpace
        from mchammer.calculators import ClusterExpansionCalculator

        prim = Atoms(DOPANT, positions=[[0, 0, 0]], cell=[[A_ANG, 0, 0], [0, A_ANG, 0], [0, 0, C_ANG]], pbc=True)
        self.space = ClusterSpace(prim, cutoffs=[CUTOFF_ANG], chemical_symbols=[[DOPANT, HOST]])
        self.eps = kB * T_F_KELVIN
        self.model = ClusterExpansion(self.space, [0.0, 0.0, *(2 * self.eps * np.asarray(couplings))])
        self.L = L
        self.structure = prim.repeat((L, L, 1))
        self._numbers = np.array([_atomic_number(DOPANT), _atomic_number(HOST)])  # dopant, host
        self.calc = ClusterExpansionCalculator(self.structure, self.model)

    def pair_radii(self) -> list[float]:
        return [round(2 * float(o.radius) / A_ANG, 4) for o in self.space.orbit_list.orbits if o.order == 2]

    def occupations(self, s: np.ndarray) -> np.ndarray:
        return np.where(s.ravel() == 1, self._numbers[0], self._numbers[1])

    def energy(self, s: np.ndarray) -> float:
        """Total energy in k_B T_f."""
        return self.calc.calculate_total(occupations=self.occupations(s)) / self.eps

    def ensemble(self, s: np.ndarray, seed: int, interval: int):
        from mchammer.ensembles import CanonicalEnsemble

        atoms = self.structure.copy()
        atoms.numbers = self.occupations(s)
        calc = type(self.calc)(atoms, self.model)
        return CanonicalEnsemble(structure=atoms, calculator=calc, temperature=TEMPERATURE * T_F_KELVIN,
                                 random_seed=seed, ensemble_data_write_interval=interval,
                                 trajectory_write_interval=interval)

    def sample(self, s: np.ndarray, seed: int = 1):
        """(energy per site, alpha_1) series, one per sweep after equilibration, and the acceptance."""
        n = s.size
        mc = self.ensemble(s, seed, n)
        mc.run((PEER_EQ_SWEEPS + PEER_SWEEPS) * n)
        dc = mc.data_container
        trial, energy, traj = dc.get("mctrial", "potential", "trajectory")
        keep = np.asarray(trial) > PEER_EQ_SWEEPS * n
        spins = np.stack([np.where(a.numbers == self._numbers[0], 1, -1).reshape(self.L, self.L) for a in traj])
        acc = float(np.nanmean(dc.get("acceptance_ratio")[1:]))
        return np.asarray(energy)[keep] / self.eps / n, _alpha1(spins[keep]), acc


def _atomic_number(symbol: str) -> int:
    from ase.data import atomic_numbers

    return atomic_numbers[symbol]


# ------------------------------------------------------------------------------------------ smol
class _Smol:
    """smol cluster expansion (sinusoid basis) and canonical ensemble on an L x L supercell."""

    def __init__(self, L: int, couplings):
        from pymatgen.core import Lattice, Structure
        from smol.cofe import ClusterExpansion, ClusterSubspace
        from smol.constants import kB
        from smol.moca import Ensemble

        prim = Structure(Lattice(np.diag([A_ANG, A_ANG, C_ANG])), [{DOPANT: 0.5, HOST: 0.5}], [[0, 0, 0]])
        self.space = ClusterSubspace.from_cutoffs(prim, cutoffs={2: CUTOFF_ANG}, basis="sinusoid")
        self.eps = kB * T_F_KELVIN
        coefs = np.array([0.0, 0.0, *(2 * self.eps * np.asarray(couplings))])
        self.ensemble = Ensemble.from_cluster_expansion(ClusterExpansion(self.space, coefs), np.diag([L, L, 1]))
        self.default_threads = self.ensemble.processor.num_threads
        self.ensemble.processor.num_threads = 1
        self.L = L
        frac = self.ensemble.processor.structure.frac_coords[:, :2]
        self._ij = tuple((np.rint(frac * L).astype(int) % L).T)  # supercell site -> (i, j)
        species = [str(sp) for sp in self.ensemble.sublattices[0].species]
        self._codes = np.array([species.index(DOPANT), species.index(HOST)], dtype=np.int32)

    def pair_radii(self) -> list[float]:
        return [round(float(o.base_cluster.diameter) / A_ANG, 4) for o in self.space.orbits
                if len(o.base_cluster) == 2]

    def occupancy(self, s: np.ndarray) -> np.ndarray:
        return np.where(s[self._ij] == 1, self._codes[0], self._codes[1]).astype(np.int32)

    def spins(self, occ: np.ndarray) -> np.ndarray:
        out = np.empty(occ.shape[:-1] + (self.L, self.L), np.int8)
        out[..., self._ij[0], self._ij[1]] = np.where(occ == self._codes[0], 1, -1)
        return out

    def energy(self, s: np.ndarray) -> float:
        return self.ensemble.processor.compute_property(self.occupancy(s)) / self.eps

    def sampler(self, seed: int):
        from smol.moca import Sampler

        return Sampler.from_ensemble(self.ensemble, temperature=TEMPERATURE * T_F_KELVIN, step_type="swap",
                                     seeds=[seed])

    def sample(self, s: np.ndarray, seed: int = 1):
        n = s.size
        sampler = self.sampler(seed)
        sampler.run((PEER_EQ_SWEEPS + PEER_SWEEPS) * n, self.occupancy(s), thin_by=n)
        energy = sampler.samples.get_energies(discard=PEER_EQ_SWEEPS) / self.eps / n
        spins = self.spins(sampler.samples.get_occupancies(discard=PEER_EQ_SWEEPS))
        return energy, _alpha1(spins), float(sampler.efficiency())


# ------------------------------------------------------------------------------------------ sections
def _peers() -> tuple[dict, list[str]]:
    """Constructors of the installed peers and a line for each one missing."""
    found, missing = {}, []
    try:
        import icet  # noqa: F401
        import mchammer  # noqa: F401

        found["icet"] = _Icet
    except ImportError as exc:
        missing.append(f"icet is not installed ({exc}); `pip install icet`.")
    try:
        import smol  # noqa: F401

        found["smol"] = _Smol
    except ImportError as exc:
        missing.append(f"smol is not installed ({exc}); `pip install smol`.")
    return found, missing


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _mapping_lines(peers: dict) -> list[str]:
    lines = ["### Same model in each code", "",
             f"Random configurations at dopant fraction 3/8 on {L_SMALL} x {L_SMALL}, J = {_fmt(J_CHECK)}: "
             "peer energy / eps against ours, and the peers' pair shells (distance / a).", "",
             "| peer | pair shells | exactly the 3 in-plane shells | max abs(E_peer - E_ours) (k_B T_f) over "
             f"{N_CHECK} configurations | E_ours range |", "|---|---|---|---|---|"]
    configs = [_start(L_SMALL, seed) for seed in range(10, 10 + N_CHECK)]
    ours = np.array([_our_energy(s, J_CHECK) for s in configs])
    for name, make in peers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = make(L_SMALL, J_CHECK)
            theirs = np.array([peer.energy(s) for s in configs])
        shells = peer.pair_radii()
        exact = "yes" if np.allclose(shells, [1.0, np.sqrt(2), 2.0], atol=1e-3) else "NO"
        lines.append(f"| {name} {_version(name)} | {shells} | {exact} | {np.abs(theirs - ours).max():.1e} | "
                     f"{ours.min():.2f} .. {ours.max():.2f} |")
    return lines


def _speed_lines(peers: dict) -> list[str]:
    from atomine.thermo.montecarlo import sample

    s = _start(L_BIG)
    rows = []
    sample(s, J, temperature=TEMPERATURE, moves="nonlocal", n_chains=2, n_sweeps=5, n_equilibrate=0)  # compile
    ours = {}
    for moves, chains in (("nonlocal", 1), ("nonlocal", 2), ("mixed", 2)):
        rates, acc = [], 0.0
        for rep in range(REPEATS):
            t0 = time.perf_counter()
            res = sample(s, J, temperature=TEMPERATURE, moves=moves, n_chains=chains, n_sweeps=OUR_SWEEPS,
                         n_equilibrate=0, seed=rep)
            rates.append(res.attempts / (time.perf_counter() - t0))
            acc = res.acceptance
        ours[(moves, chains)] = statistics.median(rates)
        rows.append((f"atomine `sample`, {moves}, {chains} chain{'s' * (chains > 1)}",
                     ours[(moves, chains)], acc, f"{OUR_SWEEPS} sweeps/chain, median of {REPEATS}"))
    peer_rates = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "icet" in peers:
            icet = peers["icet"](L_BIG, J)
            mc = icet.ensemble(s, seed=1, interval=s.size)
            peer_rates["icet"] = _rate(ICET_STEPS, lambda: mc.run(ICET_STEPS))
            acc = float(np.nanmean(mc.data_container.get("acceptance_ratio")[1:]))
            rows.append(("icet `CanonicalEnsemble`", peer_rates["icet"], acc, f"{ICET_STEPS:,} trial steps"))
        if "smol" in peers:
            sm = peers["smol"](L_BIG, J)
            occ = sm.occupancy(s)
            sampler = sm.sampler(seed=1)
            # thin_by must divide the steps (smol drops the remainder); every 100th state is a cheap copy
            peer_rates["smol"] = _rate(SMOL_STEPS, lambda: sampler.run(SMOL_STEPS, occ, thin_by=100))
            rows.append(("smol `Sampler`, swap, 1 OpenMP thread", peer_rates["smol"], float(sampler.efficiency()),
                         f"{SMOL_STEPS:,} trial steps"))
            sm.ensemble.processor.num_threads = sm.default_threads
            sampler = sm.sampler(seed=2)
            threaded = _rate(SMOL_THREADED_STEPS, lambda: sampler.run(SMOL_THREADED_STEPS, occ, thin_by=100))
            rows.append((f"smol `Sampler`, swap, default {sm.default_threads} OpenMP threads", threaded, None,
                         f"{SMOL_THREADED_STEPS:,} trial steps"))
    best = max(ours.values())
    lines = ["### Trial swaps per second", "",
             f"{L_BIG} x {L_BIG} periodic square lattice, {round(DOPANT_FRACTION * L_BIG ** 2)} dopants, "
             f"J = {_fmt(J)}, t = {TEMPERATURE}, from a random start; set-up excluded. Acceptance over the timed "
             "run (the peers' runs are the first ~10 sweeps from the random start). "
             f"Load average at start (1 min): {os.getloadavg()[0]:.1f} on {len(os.sched_getaffinity(0))} cores.",
             "", "| sampler | trial swaps/s | acceptance | ours (2 chains, nonlocal) / this | run |",
             "|---|---|---|---|---|"]
    for k, (name, rate, acc, run) in enumerate(rows):
        ratio = "-" if k < len(ours) else f"{ours[('nonlocal', 2)] / rate:,.0f}"
        lines.append(f"| {name} | {rate:.3g} | {'-' if acc is None else f'{acc:.3f}'} | {ratio} | {run} |")
    ours2 = ours[("nonlocal", 2)]
    lines += ["", f"Ours >= 1e7 attempted swaps/s on 2 cores: **{'yes' if ours2 >= 1e7 else 'NO'}** "
              f"({ours2:.3g}/s with the peers' nonlocal swaps, {best:.3g}/s at best). "
              + ", ".join(f"Ours / {k}: **{ours2 / v:,.0f}x**" for k, v in peer_rates.items()) + "."]
    return lines


def _agreement_lines(peers: dict) -> list[str]:
    from atomine.thermo.montecarlo import sample

    s = _start(L_SMALL)
    res = sample(s, J, temperature=TEMPERATURE, moves="nonlocal", n_chains=2, n_sweeps=OUR_SMALL_SWEEPS,
                 n_equilibrate=OUR_SMALL_EQ, seed=3)
    n = s.size
    c = DOPANT_FRACTION
    ours_a1 = 1 - (1 - res.pair_sums[:, :, 0] / res.n_pairs[0]) / 2 / (2 * c * (1 - c))
    e0, de0 = _mean_err(res.energy / n)
    a0, da0 = _mean_err(ours_a1)
    lines = ["### Equilibrium agreement (16 x 16)", "",
             f"Same model, t = {TEMPERATURE}, {round(c * n)} dopants on {L_SMALL} x {L_SMALL}. Peers: "
             f"{PEER_EQ_SWEEPS} sweeps discarded, {PEER_SWEEPS} recorded (one sample per sweep); ours: 2 chains x "
             f"{OUR_SMALL_SWEEPS:,} sweeps after {OUR_SMALL_EQ}. +- = standard error from batch means; z = "
             "difference / combined error.", "",
             "| sampler | energy per site (k_B T_f) | z | alpha_1 | z | acceptance | wall (s) | trial swaps/s |",
             "|---|---|---|---|---|---|---|---|",
             f"| atomine | {e0:.4f} +- {de0:.4f} | - | {a0:.4f} +- {da0:.4f} | - | {res.acceptance:.3f} | "
             f"{res.seconds:.1f} | {res.attempts / res.seconds:.3g} |"]
    worst = 0.0
    for name, make in peers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peer = make(L_SMALL, J)
            t0 = time.perf_counter()
            energy, alpha1, acc = peer.sample(s)
            wall = time.perf_counter() - t0
        e, de = _mean_err(energy)
        a, da = _mean_err(alpha1)
        ze, za = (e - e0) / np.hypot(de, de0), (a - a0) / np.hypot(da, da0)
        worst = max(worst, abs(ze), abs(za))
        rate = (PEER_EQ_SWEEPS + PEER_SWEEPS) * n / wall
        lines.append(f"| {name} | {e:.4f} +- {de:.4f} | {ze:+.1f} | {a:.4f} +- {da:.4f} | {za:+.1f} | {acc:.3f} | "
                     f"{wall:.1f} | {rate:.3g} |")
    if peers:
        lines += ["", f"Agree within 3 standard errors: **{'yes' if worst <= 3 else 'NO'}** (largest |z| = "
                  f"{worst:.1f})."]
    return lines


def run() -> str:
    peers, missing = _peers()
    lines = [*missing, *([""] if missing else [])]
    if peers:
        lines += [*_mapping_lines(peers), ""]
    lines += [*_speed_lines(peers), "", *_agreement_lines(peers)]
    # The two-parameter fit timing (64 x 64 image in <= 10 s) belongs to the fit benchmark, not here.
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
