"""Occupancy helpers and the Warren-Cowley alpha_1 of atomine.simulate.stm."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.simulate.stm import random_occupancy, segregated_occupancy, warren_cowley_alpha1

# Hand-counted 4 x 4 arrangements (D = dopant, H = host).
HALVES = np.array([[1, 1, 0, 0]] * 4)  # columns 0-1 dopant
CHECKER = np.indices((4, 4)).sum(axis=0) % 2


def test_alpha1_halves_periodic_by_hand():
    # Periodic: 32 bonds; each row has D-D, D-H, H-H, H-D horizontally -> 2 unlike x 4 rows = 8; verticals all like.
    # c = 1/2 -> alpha = 1 - 8 / (2 * 1/4 * 32) = 1/2.
    assert warren_cowley_alpha1(HALVES, periodic=True) == pytest.approx(0.5, abs=1e-12)


def test_alpha1_halves_open_by_hand():
    # Open: 12 horizontal bonds (1 unlike per row -> 4) + 12 vertical like bonds -> 1 - 4 / (0.5 * 24) = 2/3.
    assert warren_cowley_alpha1(HALVES, periodic=False) == pytest.approx(2 / 3, abs=1e-12)


def test_alpha1_checkerboard_is_minus_one():
    assert warren_cowley_alpha1(CHECKER, periodic=True) == pytest.approx(-1.0, abs=1e-12)
    assert warren_cowley_alpha1(CHECKER, periodic=False) == pytest.approx(-1.0, abs=1e-12)


def test_alpha1_excludes_vacancies_and_masked_sites_by_hand():
    occ = HALVES.copy()
    occ[0, 0] = -1  # removes 2 open bonds (0,0)-(0,1) D-D and (0,0)-(1,0) D-D
    # Open: 22 bonds, unlike still 4; sites 15 with 7 dopants -> c = 7/15.
    c = 7 / 15
    assert warren_cowley_alpha1(occ) == pytest.approx(1 - 4 / (2 * c * (1 - c) * 22), abs=1e-12)
    # A mask keeping columns 1-2 only: 4 horizontal D-H bonds + 6 vertical like bonds; c = 1/2.
    mask = np.zeros((4, 4), bool)
    mask[:, 1:3] = True
    assert warren_cowley_alpha1(HALVES, mask=mask) == pytest.approx(1 - 4 / (0.5 * 10), abs=1e-12)


def test_random_occupancy_exact_counts_and_values():
    occ = random_occupancy((40, 40), 3 / 8, vacancy_fraction=0.01, seed=3)
    assert occ.dtype == np.int8 and occ.shape == (40, 40)
    assert (occ == 1).sum() == 600 and (occ == -1).sum() == 16 and (occ == 0).sum() == 984


def test_random_alpha1_distribution_matches_theory():
    # For a random arrangement at an exact count, E[alpha] = -1/(n-1) and std ~ 1/sqrt(N_bonds).
    n, n_bonds = 30 * 30, 2 * 30 * 30
    alphas = np.array([warren_cowley_alpha1(random_occupancy((30, 30), 0.375, seed=s), periodic=True) for s in range(300)])
    sd = alphas.std(ddof=1)
    assert abs(alphas.mean() - (-1 / (n - 1))) < 4 * sd / np.sqrt(alphas.size)
    assert sd == pytest.approx(1 / np.sqrt(n_bonds), rel=0.2)


def test_segregated_clusters_and_conserves_composition():
    seg = segregated_occupancy((40, 40), 3 / 8, j_nn=-0.8, sweeps=300, vacancy_fraction=0.01, seed=1)
    assert (seg == 1).sum() == 600 and (seg == -1).sum() == 16
    rnd = random_occupancy((40, 40), 3 / 8, vacancy_fraction=0.01, seed=1)
    sigma = 1 / np.sqrt(2 * 1600)
    assert warren_cowley_alpha1(seg, periodic=True) > 0.4  # measured ~0.6
    assert abs(warren_cowley_alpha1(rnd, periodic=True)) < 4 * sigma


def test_positive_coupling_orders_and_zero_coupling_stays_random():
    ordered = segregated_occupancy((30, 30), 0.5, j_nn=+1.0, sweeps=200, seed=2)
    neutral = segregated_occupancy((30, 30), 0.5, j_nn=0.0, sweeps=200, seed=2)
    assert warren_cowley_alpha1(ordered, periodic=True) < -0.3
    assert abs(warren_cowley_alpha1(neutral, periodic=True)) < 4 / np.sqrt(2 * 900)


def test_occupancy_helpers_deterministic_under_seed():
    np.testing.assert_array_equal(random_occupancy((12, 9), 0.3, seed=5), random_occupancy((12, 9), 0.3, seed=5))
    a = segregated_occupancy((12, 9), 0.3, sweeps=20, seed=5)
    np.testing.assert_array_equal(a, segregated_occupancy((12, 9), 0.3, sweeps=20, seed=5))
    assert not np.array_equal(random_occupancy((12, 9), 0.3, seed=5), random_occupancy((12, 9), 0.3, seed=6))


@pytest.mark.parametrize("kwargs", [
    {"shape": (1, 5), "fraction": 0.3},
    {"shape": (4,), "fraction": 0.3},
    {"shape": "ab", "fraction": 0.3},
    {"shape": (4.5, 4), "fraction": 0.3},
    {"shape": (4, 4), "fraction": -0.1},
    {"shape": (4, 4), "fraction": 1.5},
    {"shape": (4, 4), "fraction": float("nan")},
    {"shape": (4, 4), "fraction": 0.8, "vacancy_fraction": 0.3},
    {"shape": (4, 4), "fraction": 0.3, "seed": -1},
    {"shape": (4, 4), "fraction": 0.3, "seed": 1.5},
])
@pytest.mark.parametrize("helper", [random_occupancy, segregated_occupancy])
def test_occupancy_helpers_bad_input(helper, kwargs):
    kwargs = dict(kwargs)
    with pytest.raises(InputError):
        helper(kwargs.pop("shape"), kwargs.pop("fraction"), **kwargs)


@pytest.mark.parametrize("kwargs", [{"j_nn": float("nan")}, {"j_nn": "x"}, {"sweeps": -1}, {"sweeps": 2.5}])
def test_segregated_bad_parameters(kwargs):
    with pytest.raises(InputError):
        segregated_occupancy((6, 6), 0.3, **kwargs)


@pytest.mark.parametrize("occ, kwargs", [
    (np.array([[0, 1], [2, 0]]), {}),                   # value outside {-1, 0, 1}
    (np.array([[0, 1], [0.5, 0]]), {}),                 # non-integer
    (np.array([[0, 1], [np.nan, 0]]), {}),              # NaN
    (np.zeros((2, 2, 2)), {}),                          # 3-D
    (np.zeros((0, 3)), {}),                             # empty
    (np.zeros((4, 4)), {}),                             # hosts only: undefined
    (np.ones((4, 4)), {}),                              # dopants only: undefined
    (HALVES, {"mask": np.ones((3, 3), bool)}),          # mask shape
    (HALVES, {"mask": np.ones((4, 4))}),                # mask dtype
])
def test_alpha1_bad_input(occ, kwargs):
    with pytest.raises(InputError):
        warren_cowley_alpha1(occ, **kwargs)


def test_alpha1_does_not_modify_input():
    occ = HALVES.copy()
    occ[0, 0] = -1
    before = occ.copy()
    warren_cowley_alpha1(occ, periodic=True)
    np.testing.assert_array_equal(occ, before)


def _onsager_nn(k):
    from scipy.special import ellipk

    m = (2 * np.sinh(2 * k) / np.cosh(2 * k) ** 2) ** 2
    return 0.5 / np.tanh(2 * k) * (1 + 2 / np.pi * (2 * np.tanh(2 * k) ** 2 - 1) * ellipk(m))


def test_kawasaki_matches_onsager_nearest_neighbour_correlation():
    # At c = 1/2, alpha_1 = <s_i s_j>_nn; above T_c (K = 0.25 < 0.4407) it is Onsager's exact value 0.2786.
    alphas = [warren_cowley_alpha1(segregated_occupancy((32, 32), 0.5, j_nn=-0.25, sweeps=200, seed=s), periodic=True)
              for s in range(16)]
    assert np.mean(alphas) == pytest.approx(_onsager_nn(0.25), abs=0.02)  # SEM ~0.0075
