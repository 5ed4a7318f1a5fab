"""model_occupancy and the stm-lcmo-correlated preset: an equilibrium draw of a known lattice model."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.simulate import make, presets
from atomine.simulate.stm import CORRELATED_MODEL, model_occupancy, warren_cowley_alpha1
from atomine.thermo.lattice import pair_sums
from atomine.thermo.montecarlo import sample

SHAPE = (72, 72)  # the preset's occupancy grid
C = 3 / 8
J = tuple(CORRELATED_MODEL["couplings"])
N_DRAWS = 6


def _alpha(r, n_pairs, c):
    """Warren-Cowley alpha from a pair sum r over n_pairs unordered pairs at dopant fraction c."""
    return 1.0 - (1.0 - r / n_pairs) / 2.0 / (2.0 * c * (1.0 - c))


def _alphas(occ):
    """(alpha_1, alpha_2) of an occupancy without vacancies, periodic, as the Monte Carlo counts them."""
    s = np.where(occ == 1, 1, -1).astype(np.int8)
    c = float(np.mean(occ == 1))
    r = pair_sums(s, "square", 2, periodic=True)
    return _alpha(r, 2 * s.size, c)


@pytest.fixture(scope="module")
def reference():
    """The model's equilibrium alpha_1, alpha_2 on the same periodic 72 x 72 lattice at c = 3/8: per-sample
    values of four independent chains (started random, 200 sweeps discarded; alpha decorrelates in ~5 sweeps)."""
    start = np.full(SHAPE[0] * SHAPE[1], -1, dtype=np.int8)
    start[: int(round(C * start.size))] = 1
    start = np.random.default_rng(11).permutation(start).reshape(SHAPE)
    res = sample(start, J, kind="square", periodic=True, n_chains=4, n_sweeps=1000, n_equilibrate=200, thin=5,
                 seed=123)
    a = _alpha(res.pair_sums[..., :2].reshape(-1, 2), res.n_pairs[:2], C)
    # the mean's error from the chains' spread (chains are independent, samples within are not)
    chain_means = _alpha(res.pair_sums[..., :2].mean(axis=1), res.n_pairs[:2], C)
    return a.mean(axis=0), a.std(axis=0, ddof=1), chain_means.std(axis=0, ddof=1) / 2.0


@pytest.fixture(scope="module")
def draws():
    return [model_occupancy(SHAPE, C, J, seed=k) for k in range(N_DRAWS)]


def test_draws_have_the_models_short_range_order(draws, reference):
    mean, sd, se_ref = reference
    got = np.array([_alphas(o) for o in draws])
    # a random alloy would sit at alpha ~ 0: the model's clustering is many sigma away from it
    assert np.all(mean > 10 * sd / np.sqrt(N_DRAWS))
    assert mean[0] == pytest.approx(0.265, abs=0.02) and mean[1] == pytest.approx(0.168, abs=0.02)
    sigma = np.sqrt(sd**2 / N_DRAWS + se_ref**2)
    assert np.all(np.abs(got.mean(axis=0) - mean) < 3 * sigma), (got.mean(axis=0), mean, sigma)
    # each draw on its own is a typical equilibrium configuration, not a quench's coarsened domains
    assert np.all(np.abs(got - mean) < 4 * sd)
    # alpha_1 as the simulator's own helper counts it is the same number
    assert warren_cowley_alpha1(draws[0], periodic=True) == pytest.approx(got[0, 0], abs=1e-12)


def test_no_interaction_gives_a_random_alloy_and_ordering_coupling_gives_unlike_neighbours():
    n = 40 * 40
    free = np.array([_alphas(model_occupancy((40, 40), 0.5, (0.0,), sweeps=20, seed=k))[0] for k in range(8)])
    # exact for a random arrangement at a fixed count: E alpha_1 = -1/(n-1), sd ~ 1/sqrt(2n) per draw
    assert abs(free.mean() + 1 / (n - 1)) < 3 / np.sqrt(2 * n * 8)
    ordered = _alphas(model_occupancy((40, 40), 0.5, (0.3,), sweeps=200, seed=1))[0]
    assert ordered < -0.2  # J1 > 0 favours unlike neighbours (atomine convention)


def test_composition_is_exact_and_vacancies_replace_hosts():
    occ = model_occupancy((30, 40), 0.3, (-0.2, -0.06), vacancy_fraction=0.02, sweeps=50, seed=3)
    assert occ.dtype == np.int8 and occ.shape == (30, 40)
    assert int((occ == 1).sum()) == 360 and int((occ == -1).sum()) == 24 and int((occ == 0).sum()) == 816
    again = model_occupancy((30, 40), 0.3, (-0.2, -0.06), vacancy_fraction=0.02, sweeps=50, seed=3)
    other = model_occupancy((30, 40), 0.3, (-0.2, -0.06), vacancy_fraction=0.02, sweeps=50, seed=4)
    assert np.array_equal(occ, again) and not np.array_equal(occ, other)


@pytest.mark.parametrize("kw, fragment", [
    ({"couplings": (0.1, 0.2, 0.3, 0.4)}, "couplings"),
    ({"couplings": (np.nan,)}, "couplings"),
    ({"sweeps": 0}, "sweeps"),
    ({"fraction": 0.0}, "single species"),
    ({"fraction": 1.5}, "fraction"),
    ({"vacancy_fraction": 0.8}, "exceeds 1"),
    ({"seed": -1}, "seed"),
])
def test_bad_input_is_refused(kw, fragment):
    args = {"shape": (8, 8), "fraction": 0.5, "couplings": (-0.2,), **kw}
    with pytest.raises(InputError, match=fragment):
        model_occupancy(args.pop("shape"), args.pop("fraction"), args.pop("couplings"), **args)


def test_preset_draws_from_the_recorded_model(reference):
    assert "stm-lcmo-correlated" in presets()
    sim = make("stm-lcmo-correlated", seed=0)
    p = sim.truth.parameters
    model = p["lattice_model"]
    assert model["couplings"] == [-0.2, -0.06] and model["names"] == ["J1", "J2"]
    assert model["composition"] == 0.375 and "s=+1 dopant, -1 host" in model["convention"]
    assert sim.data.attrs["metadata"]["lattice_model"]["couplings"] == [-0.2, -0.06]
    # exact counts on 72 x 72 sites: round(3/8 * 5184) dopants, round(1 % * 5184) vacancies on host sites
    assert p["occupancy_shape"] == [72, 72] and p["n_dopant"] == 1944 and p["n_vacancy"] == 52
    assert sim.data.shape == (832, 832) and int(sim.truth.tables["sites"]["in_image"].sum()) >= 64 * 64
    # its short-range order is the model's (the 52 vacancies barely move alpha_1)
    mean, sd, _ = reference
    assert abs(p["alpha1_periodic"] - mean[0]) < 3 * sd[0]
    # the imaging is stm-lcmo's
    stm = make("stm-lcmo", seed=0).truth.parameters
    for key in ("pixel_size_nm", "rotation_deg", "snr", "drift_nm", "creep_nm", "creep_tau", "lattice_nm"):
        assert p[key] == stm[key]
