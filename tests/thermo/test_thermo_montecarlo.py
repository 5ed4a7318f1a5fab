"""Monte Carlo engine: energy bookkeeping, exact enumeration, SRO limits, determinism and input checks."""

from __future__ import annotations

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.thermo import _mc_kernels as kernels
from atomine.thermo.lattice import Lattice, neighbour_view, half_shell_offsets, pair_sums
from atomine.thermo.montecarlo import _neighbour_table, sample

J3 = (0.4, -0.3, 0.2)


def _random_spins(shape, rng, p_dopant=0.4, p_masked=0.0):
    s = np.where(rng.random(shape) < p_dopant, 1, -1).astype(np.int8)
    s[rng.random(shape) < p_masked] = 0
    return s


# --- the move energies against brute force --------------------------------------------------------

@pytest.mark.parametrize("kind", ["square", "triangular"])
@pytest.mark.parametrize("shape,periodic", [((4, 4), True), ((3, 5), True), ((2, 3), True), ((4, 5), False)])
def test_move_pair_sum_changes_match_brute_force(kind, shape, periodic):
    """dr_m of every flip and every unlike exchange equals the change of pair_sums, aliasing grids included."""
    rng = np.random.default_rng(7)
    s = _random_spins(shape, rng, 0.5)
    s[0, 1] = 0  # a masked site
    valid = s != 0
    nb = _neighbour_table(s, kind, periodic)
    sites = np.append(s[valid], np.int8(0))
    grid_of = np.argwhere(valid)
    r0 = pair_sums(s, kind, 3, periodic)
    n = len(grid_of)
    for a in range(n):
        t = s.copy()
        t[tuple(grid_of[a])] *= -1
        want = pair_sums(t, kind, 3, periodic) - r0
        got = [-2 * sites[a] * kernels._shell_sum(sites, nb, a, m, nb.shape[2]) for m in range(3)]
        assert np.array_equal(got, want)
        for b in range(n):
            if sites[a] == sites[b]:
                continue
            t = s.copy()
            t[tuple(grid_of[a])], t[tuple(grid_of[b])] = s[tuple(grid_of[b])], s[tuple(grid_of[a])]
            want = pair_sums(t, kind, 3, periodic) - r0
            got = [kernels._exchange_dr(sites, nb, a, b, m, nb.shape[2]) for m in range(3)]
            assert np.array_equal(got, want), (a, b)


# --- incremental bookkeeping over whole runs ------------------------------------------------------

@pytest.mark.parametrize("kind", ["square", "triangular"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("ensemble,moves", [("canonical", "local"), ("canonical", "nonlocal"),
                                            ("canonical", "mixed"), ("sgc", "mixed")])
def test_incremental_sums_equal_recomputation(kind, periodic, ensemble, moves):
    rng = np.random.default_rng(3)
    s = _random_spins((9, 11), rng, 0.35, 0.1)
    f = rng.normal(size=s.shape)
    res = sample(s, J3, kind=kind, periodic=periodic, field=0.4, site_field=f, ensemble=ensemble, moves=moves,
                 chemical_potential=-0.3, temperature=1.3, n_chains=3, n_sweeps=40, n_equilibrate=3,
                 n_snapshots=5, seed=11)
    theta = np.array(J3)
    for c in range(3):
        for j, k in enumerate([(j + 1) * 40 // 5 - 1 for j in range(5)]):
            snap = res.snapshots[c, j]
            r = pair_sums(snap, kind, 3, periodic)
            F = float(np.sum(f * snap))
            assert np.array_equal(res.pair_sums[c, k], r)
            assert res.field_sum[c, k] == pytest.approx(F, abs=1e-9)
            assert res.energy[c, k] == pytest.approx(theta @ r - 0.4 * F, abs=1e-9)
            assert res.magnetisation[c, k] == pytest.approx(snap.sum() / res.n_sites)
            assert np.array_equal(snap == 0, s == 0)  # masked sites stay out, model sites stay in
            if ensemble == "canonical":
                assert np.count_nonzero(snap == 1) == np.count_nonzero(s == 1)
        assert np.array_equal(res.final[c], res.snapshots[c, -1])
    assert res.statistics() @ np.r_[theta, 0.4] == pytest.approx(res.energy.ravel(), abs=1e-9)
    assert np.array_equal(res.n_pairs, pair_sums(np.abs(s), kind, 3, periodic))
    assert 0 < res.acceptance < 1


# --- exact enumeration ------------------------------------------------------------------------------

def _all_configurations(shape, kind, periodic, site_field):
    """Every +-1 configuration of a small grid with its r (k, 3), F (k,) and magnetisation sum (k,)."""
    n = shape[0] * shape[1]
    codes = np.arange(2**n)[:, None]
    spins = np.where((codes >> np.arange(n)) & 1, 1, -1).astype(np.int64)
    index = np.arange(n).reshape(shape) + 1
    r = np.zeros((len(spins), 3))
    for m in range(3):
        for di, dj in half_shell_offsets(kind, m + 1):
            other = neighbour_view(index, int(di), int(dj), periodic).ravel() - 1
            ok = other >= 0
            r[:, m] += np.sum(spins[:, ok] * spins[:, other[ok]], axis=1)
    F = spins @ site_field.ravel()
    return spins, r, F, spins.sum(axis=1)


def _exact_means(shape, kind, periodic, couplings, h, site_field, t, *, n_dopant=None, mu=0.0):
    spins, r, F, M = _all_configurations(shape, kind, periodic, site_field)
    E = r @ np.asarray(couplings) - h * F
    keep = np.ones(len(E), bool) if n_dopant is None else (M == 2 * n_dopant - spins.shape[1])
    H = (E - mu * M)[keep]
    w = np.exp(-(H - H.min()) / t)
    w /= w.sum()
    return w @ E[keep], w @ r[keep]


def _check_against_exact(res, exact_E, exact_r):
    """MC means within 4.5 standard errors (from the chain-to-chain spread) of the exact averages."""
    n_chains = res.energy.shape[0]
    per_chain = np.column_stack([res.energy.mean(axis=1), res.pair_sums.mean(axis=1)])
    mean = per_chain.mean(axis=0)
    se = per_chain.std(axis=0, ddof=1) / np.sqrt(n_chains)
    want = np.r_[exact_E, exact_r]
    assert np.all(se > 0)
    assert np.all(np.abs(mean - want) < 4.5 * se), (mean, want, se)
    # the test has power: the errors are small against the spread of the sampled energies
    assert se[0] < 0.02 * res.energy.std()


@pytest.mark.parametrize("moves", ["local", "nonlocal", "mixed"])
def test_canonical_square_periodic_matches_enumeration(moves):
    """4x4 periodic square, 6 dopants: C(16, 6) = 8008 configurations, J1..J3."""
    rng = np.random.default_rng(5)
    s = -np.ones((4, 4), np.int8)
    s.ravel()[rng.choice(16, 6, replace=False)] = 1
    E, r = _exact_means((4, 4), "square", True, J3, 0.0, np.zeros((4, 4)), 1.0, n_dopant=6)
    res = sample(s, J3, kind="square", periodic=True, moves=moves, n_chains=16, n_sweeps=8000,
                 n_equilibrate=100, seed=1)
    _check_against_exact(res, E, r)


@pytest.mark.parametrize("moves", ["local", "nonlocal", "mixed"])
def test_canonical_triangular_open_field_matches_enumeration(moves):
    """4x4 open triangular with J1, J2, J3 and a site field, 7 dopants."""
    rng = np.random.default_rng(6)
    f = np.exp(-np.arange(4) / 1.5)[:, None] * np.ones((4, 4))
    s = -np.ones((4, 4), np.int8)
    s.ravel()[rng.choice(16, 7, replace=False)] = 1
    couplings, h, t = (0.3, -0.25, 0.15), 0.8, 0.9
    E, r = _exact_means((4, 4), "triangular", False, couplings, h, f, t, n_dopant=7)
    res = sample(s, couplings, kind="triangular", periodic=False, field=h, site_field=f, temperature=t,
                 moves=moves, n_chains=16, n_sweeps=8000, n_equilibrate=100, seed=2)
    _check_against_exact(res, E, r)


@pytest.mark.parametrize("kind,periodic,h", [("square", True, 0.0), ("triangular", False, 0.6)])
def test_sgc_matches_enumeration(kind, periodic, h):
    """All 2**16 configurations weighted by exp(-(H - mu sum sigma) / t)."""
    f = np.linspace(-1, 1, 16).reshape(4, 4)
    couplings, mu, t = J3, 0.3, 1.1
    E, r = _exact_means((4, 4), kind, periodic, couplings, h, f, t, mu=mu)
    s = np.ones((4, 4), np.int8)
    res = sample(s, couplings, kind=kind, periodic=periodic, field=h, site_field=f, temperature=t,
                 ensemble="sgc", chemical_potential=mu, n_chains=16, n_sweeps=8000, n_equilibrate=100, seed=3)
    _check_against_exact(res, E, r)


# --- short-range order ------------------------------------------------------------------------------

def _per_chain_alpha1(res):
    c = (1 + res.magnetisation.mean(axis=1)) / 2
    p = (1 - res.pair_sums[:, :, 0].mean(axis=1) / res.n_pairs[0]) / 2
    return 1 - p / (2 * c * (1 - c))


def test_sro_random_alloy_is_exactly_uncorrelated():
    """J = 0 at fixed composition: <s_i s_j> = -1/(N-1) at c = 1/2, so alpha_m = -1/(N-1) for every shell."""
    rng = np.random.default_rng(8)
    s = np.where(rng.permutation(1024) < 512, 1, -1).astype(np.int8).reshape(32, 32)
    res = sample(s, [0.0], moves="nonlocal", n_chains=8, n_sweeps=500, n_equilibrate=10, seed=4)
    alpha = res.sro()
    want = -1 / (1024 - 1)
    se = _per_chain_alpha1(res).std(ddof=1) / np.sqrt(8)
    assert abs(alpha[0] - want) < 4 * se
    assert np.all(np.abs(alpha - want) < 0.002)
    assert res.acceptance == 1.0  # nothing to reject without interactions


@pytest.mark.parametrize("j1,sign", [(0.5, -1), (-0.5, 1)])
def test_sro_sign_follows_j1(j1, sign):
    """J1 > 0 favours unlike neighbours (alpha_1 < 0), J1 < 0 clusters (alpha_1 > 0)."""
    rng = np.random.default_rng(9)
    s = np.where(rng.permutation(1024) < 512, 1, -1).astype(np.int8).reshape(32, 32)
    res = sample(s, [j1], n_chains=4, n_sweeps=300, n_equilibrate=300, seed=5)
    a1 = _per_chain_alpha1(res)
    assert np.all(sign * a1 > 0.2)
    assert res.sro()[0] == pytest.approx(a1.mean())


# --- results, determinism and progress ------------------------------------------------------------

def test_same_seed_same_numbers_and_chains_differ():
    rng = np.random.default_rng(10)
    s = _random_spins((12, 12), rng, 0.5)
    kw = dict(n_chains=3, n_sweeps=50, n_equilibrate=5, n_snapshots=2, temperature=1.5)
    a = sample(s, J3, seed=42, **kw)
    b = sample(s, J3, seed=42, **kw)
    calls = []
    c = sample(s, J3, seed=42, progress=lambda done, total: calls.append((done, total)), **kw)
    d = sample(s, J3, seed=43, **kw)
    for x in (b, c):
        assert np.array_equal(a.energy, x.energy) and np.array_equal(a.snapshots, x.snapshots)
        assert np.array_equal(a.final, x.final) and a.acceptance == x.acceptance
    assert calls[-1] == (55, 55) and len(calls) > 1 and all(p[0] < q[0] for p, q in zip(calls, calls[1:]))
    assert not np.array_equal(a.final, d.final)
    assert not np.array_equal(a.final[0], a.final[1]) and not np.array_equal(a.energy[0], a.energy[1])


def test_result_shapes_thinning_and_lattice_input():
    rng = np.random.default_rng(11)
    s = _random_spins((6, 8), rng, 0.5, 0.1)
    s0 = s.copy()
    lat = Lattice(s, kind="triangular", periodic=False)
    res = sample(lat, [0.2, 0.1], n_chains=2, n_sweeps=30, thin=4, n_snapshots=3, n_equilibrate=0,
                 ensemble="sgc")
    assert np.array_equal(s, s0)
    assert res.kind == "triangular" and res.energy.shape == (2, 7) and res.pair_sums.shape == (2, 7, 3)
    assert res.snapshots.shape == (2, 3, 6, 8) and res.final.shape == (2, 6, 8)
    assert res.statistics().shape == (14, 4) and np.all(res.field_sum == 0)
    assert np.array_equal(res.couplings, [0.2, 0.1, 0.0])
    # open boundaries: a corner site of the triangular grid has 3 first neighbours, the periodic one 6
    assert np.array_equal(res.n_pairs, pair_sums(np.abs(s), "triangular", 3, False))
    assert res.attempts == 2 * res.n_sites * 30
    assert np.isfinite(res.heat_capacity()) and res.heat_capacity() >= 0


@pytest.mark.parametrize("spins,kwargs", [
    (np.ones((4, 4, 1), np.int8), {}),
    (np.full((4, 4), 2, np.int8), {}),
    (np.ones((4, 4), bool), {}),
    (np.full((4, 4), np.nan), {}),
    (np.array([[1, -1, 0, 0], [0, 0, 0, 0]], np.int8), {}),
    (np.ones((4, 4), np.int8), {}),
    (-np.ones((4, 4), np.int8), {}),
    (None, {"couplings": []}),
    (None, {"couplings": [1, 2, 3, 4]}),
    (None, {"couplings": [np.nan]}),
    (None, {"temperature": 0.0}),
    (None, {"temperature": np.inf}),
    (None, {"site_field": np.zeros((3, 3))}),
    (None, {"site_field": np.full((4, 4), np.nan)}),
    (None, {"field": 1.0}),
    (None, {"n_chains": 0}),
    (None, {"n_chains": 1000}),
    (None, {"n_sweeps": 0}),
    (None, {"ensemble": "grand"}),
    (None, {"moves": "swap"}),
    (None, {"moves": ["local"]}),
    (None, {"kind": "hexagonal"}),
    (None, {"thin": 0}),
    (None, {"n_snapshots": -1}),
    (None, {"seed": -1}),
])
def test_bad_input_raises(spins, kwargs):
    if spins is None:
        spins = np.array([[1, -1] * 2] * 4, np.int8)
    kw = {"couplings": [0.1]} | kwargs
    with pytest.raises(InputError) as err:
        sample(spins, kw.pop("couplings"), n_sweeps=kw.pop("n_sweeps", 5), **kw)
    assert "\n" not in str(err.value)


def test_single_species_message():
    with pytest.raises(InputError, match="a single species: nothing to exchange"):
        sample(np.ones((4, 4), np.int8), [0.1])
    # the same configuration is fine in the sgc ensemble
    assert sample(np.ones((4, 4), np.int8), [0.1], ensemble="sgc", n_sweeps=5).energy.shape == (2, 5)
