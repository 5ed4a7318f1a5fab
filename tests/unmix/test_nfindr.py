"""N-FINDR: exact endmembers of noiseless mixtures, largest simplex volume, determinism, bad input."""

import itertools
import math

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.unmix.nfindr import NFINDR, nfindr, pca_projection, simplex_volume


def _mixture(k=4, f=80, n=2000, seed=0, noise=0.0, alpha=0.7):
    rng = np.random.default_rng(seed)
    E = rng.random((k, f))
    A = rng.dirichlet(np.full(k, alpha), n)
    pure = rng.choice(n, k, replace=False)
    A[pure] = np.eye(k)
    X = A @ E + noise * rng.standard_normal((n, f))
    return X, E, A, pure


def _match(indices, pure):
    """Permutation that maps the estimator's components onto the true order."""
    order = [list(indices).index(p) for p in pure]
    return np.asarray(order)


@pytest.mark.parametrize("init", ["atgp", "random"])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_recovers_pure_pixels_of_noiseless_mixture(init, k):
    X, E, A, pure = _mixture(k=k, seed=k)
    model = NFINDR(k, init=init, random_state=1).fit(X)
    assert sorted(model.indices_) == sorted(pure)
    order = _match(model.indices_, pure)
    assert np.abs(model.components_[order] - E).max() < 1e-12
    assert np.abs(model.abundances_[:, order] - A).max() < 1e-8
    assert model.reconstruction_error_ < 1e-9


def test_simplex_volume_of_known_simplices():
    assert simplex_volume([[0, 0], [1, 0], [0, 1]]) == pytest.approx(0.5)
    assert simplex_volume([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]) == pytest.approx(1 / 6)
    assert simplex_volume([[0.0], [2.5]]) == pytest.approx(2.5)
    with pytest.raises(InputError, match="k-1"):
        simplex_volume([[0, 0], [1, 0]])


def _volume(Y, idx):
    return simplex_volume(Y[list(idx)])


def test_volume_is_a_global_maximum_on_small_noisy_data():
    X, _, _, _ = _mixture(k=3, f=30, n=70, seed=11, noise=0.02)
    model = NFINDR(3, random_state=0).fit(X)
    mean, axes = pca_projection(X, 2)
    Y = (X - mean) @ axes
    best = max(_volume(Y, c) for c in itertools.combinations(range(len(X)), 3))
    assert model.volume_ == pytest.approx(best, rel=1e-9)
    assert model.volume_of(model.components_) == pytest.approx(model.volume_, rel=1e-9)


def test_no_single_swap_grows_the_volume():
    """Brute-force check of the rank-one swap ratios: the result is a local maximum."""
    X, _, _, _ = _mixture(k=4, f=40, n=300, seed=12, noise=0.05)
    idx, vol, _, mean, axes = nfindr(X, 4, init="random", random_state=5)
    Y = (X - mean) @ axes
    assert vol == pytest.approx(_volume(Y, idx), rel=1e-10)
    for j in range(4):
        for i in range(len(X)):
            trial = list(idx)
            trial[j] = i
            assert _volume(Y, trial) <= vol * (1 + 1e-9)


def test_volume_not_smaller_than_random_alternatives():
    X, _, _, _ = _mixture(k=4, f=60, n=3000, seed=13, noise=0.05)
    model = NFINDR(4, random_state=0).fit(X)
    rng = np.random.default_rng(0)
    mean, axes = model.mean_, model.axes_
    Y = (X - mean) @ axes
    random_sets = max(_volume(Y, rng.choice(len(X), 4, replace=False)) for _ in range(500))
    random_inits = max(NFINDR(4, init="random", random_state=s).fit(X).volume_ for s in range(5))
    assert model.volume_ >= random_sets
    assert model.volume_ >= random_inits * (1 - 1e-9)
    assert math.isfinite(model.volume_) and model.volume_ > 0


def test_volume_scales_with_data_units():
    X, _, _, _ = _mixture(k=3, seed=18, noise=0.05)
    a = NFINDR(3).fit(X)
    b = NFINDR(3).fit(X * 1e-9)  # e.g. the same data in other units: same vertices, volume * 1e-18
    assert np.array_equal(a.indices_, b.indices_)
    assert b.volume_ == pytest.approx(a.volume_ * 1e-18, rel=1e-9)


def test_deterministic_under_seed():
    X, _, _, _ = _mixture(k=4, seed=14, noise=0.05)
    a = NFINDR(4, init="random", random_state=42).fit(X)
    b = NFINDR(4, init="random", random_state=42).fit(X)
    assert np.array_equal(a.indices_, b.indices_)
    assert np.array_equal(a.abundances_, b.abundances_)


def test_max_iter_zero_keeps_initial_vertices():
    X, _, _, _ = _mixture(k=3, seed=15, noise=0.05)
    from atomine.unmix.atgp import atgp

    model = NFINDR(3, max_iter=0).fit(X)
    reduced = np.column_stack([np.ones(len(X)), (X - model.mean_) @ model.axes_])
    assert np.array_equal(model.indices_, atgp(reduced, 3)) and model.n_iter_ == 0


def test_transform_gives_fcls_abundances_of_new_data():
    X, E, A, _ = _mixture(k=3, seed=16)
    model = NFINDR(3).fit(X)
    rng = np.random.default_rng(1)
    A_new = rng.dirichlet(np.ones(3), 50)
    got = model.transform(A_new @ E)
    order = [int(np.argmin(np.abs(model.components_ - e).sum(axis=1))) for e in E]
    assert np.abs(got[:, order] - A_new).max() < 1e-8


def test_bad_input():
    X, _, _, _ = _mixture(k=3, n=50, seed=17)
    with pytest.raises(InputError, match="samples"):
        NFINDR(60).fit(X)
    with pytest.raises(InputError, match="positive integer"):
        NFINDR(0).fit(X)
    with pytest.raises(InputError, match="init"):
        NFINDR(3, init="best").fit(X)
    with pytest.raises(InputError, match="max_iter"):
        NFINDR(3, max_iter=-1).fit(X)
    with pytest.raises(InputError, match="abundance"):
        NFINDR(3, abundance="nope").fit(X)
    flat = np.tile(X[:1], (50, 1))  # every sample identical: no simplex has volume
    with pytest.raises(InputError, match="span"):
        NFINDR(3).fit(flat)
    line = X[:, :1] * np.linspace(1, 2, X.shape[1])  # samples on a line: a triangle is flat
    with pytest.raises(InputError, match="span"):
        NFINDR(3).fit(line)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        NFINDR(3).fit(bad)
    with pytest.raises(InputError, match="not fitted"):
        NFINDR(3).transform(X)
    da = pytest.importorskip("dask.array")
    with pytest.raises(InputError, match="in-memory"):
        NFINDR(3).fit(da.from_array(X))


def _subspace_angle(A, B):
    """Largest principal angle (radians) between the column spaces of orthonormal A and B."""
    s = np.linalg.svd(A.T @ B, compute_uv=False)
    return float(np.arcsin(min(1.0, np.sqrt(max(0.0, 1.0 - s.min() ** 2)))))


@pytest.mark.parametrize("init,seed", [("atgp", None), ("random", 0), ("random", 3)])
def test_iterative_pca_picks_the_exact_pca_vertices_on_noisy_data(init, seed):
    """Tall noisy mixture (~30 dB): the fast subspace iteration changes neither vertices nor volume."""
    from atomine.unmix._projection import _iterative_pca

    X, _, _, _ = _mixture(k=4, f=150, n=6000, seed=21, noise=0.01, alpha=0.5)
    assert _iterative_pca(X, 3) is not None  # this problem does take the fast path
    fast = nfindr(X, 4, init=init, random_state=seed, pca="iterative")
    exact = nfindr(X, 4, init=init, random_state=seed, pca="exact")
    assert np.array_equal(fast[0], exact[0])
    assert fast[1] == pytest.approx(exact[1], rel=1e-6)
    assert _subspace_angle(fast[4], exact[4]) < 1e-4
    # the volume of the chosen simplex measured in the exact space is the exact N-FINDR volume
    Y = (X - exact[3]) @ exact[4]
    assert _volume(Y, fast[0]) == pytest.approx(exact[1], rel=1e-12)


def test_iterative_pca_matches_exact_axes_and_falls_back_without_eigengap():
    X, _, _, _ = _mixture(k=5, f=120, n=5000, seed=22, noise=0.003)
    m_fast, a_fast = pca_projection(X, 4, method="iterative")
    m_exact, a_exact = pca_projection(X, 4, method="exact")
    assert np.abs(m_fast - m_exact).max() < 1e-12
    assert _subspace_angle(a_fast, a_exact) < 1e-5
    # white noise has no gap after 4 components: the iteration stalls and the exact solver answers
    noise = np.random.default_rng(0).standard_normal((3000, 100))
    from atomine.unmix._projection import _iterative_pca

    assert _iterative_pca(noise, 4) is None
    m1, a1 = pca_projection(noise, 4, method="iterative")
    m2, a2 = pca_projection(noise, 4, method="exact")
    assert np.array_equal(a1, a2) and np.array_equal(m1, m2)
    with pytest.raises(InputError, match="pca"):
        nfindr(X, 3, pca="fast")


@pytest.mark.parametrize("row", [1, 2999])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_bad_values_in_tall_data_are_reported(row, value):
    """The NaN scan rides on the first pass over the data: it must still catch every row."""
    X, _, _, _ = _mixture(k=3, f=60, n=3000, seed=23, noise=0.01)
    X[row, 7] = value
    with pytest.raises(InputError, match="NaN or inf"):
        nfindr(X, 3)


def test_same_vertices_for_any_thread_count():
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs with one thread here")
    X, _, _, _ = _mixture(k=4, f=100, n=4000, seed=24, noise=0.02)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = nfindr(X, 4, pca="iterative")
        numba.set_num_threads(2)
        b = nfindr(X, 4, pca="iterative")
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[4], b[4])
