"""Abundance solvers: exact on noiseless mixtures, feasible and optimal on noisy data,
equal to independent references (scipy NNLS, cvxopt QP, lstsq)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls as scipy_nnls

from atomine.errors import InputError
from atomine.unmix.abundance import abundances, fcls, nnls, sum_to_one_ls, ucls


def _mixture(k=4, f=60, n=3000, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    E = rng.random((k, f))
    A = rng.dirichlet(np.full(k, 0.5), n)
    A[:k] = np.eye(k)  # pure pixels
    A[k:2 * k] = 0.0  # pixels on the simplex boundary (one endmember absent)
    A[k:2 * k, :2] = 0.5
    X = A @ E + noise * rng.standard_normal((n, f))
    return X, E, A


def test_fcls_recovers_true_abundances_of_noiseless_mixture():
    X, E, A = _mixture()
    assert np.abs(fcls(X, E) - A).max() < 1e-8


@pytest.mark.parametrize("solver", [nnls, ucls, sum_to_one_ls])
def test_other_solvers_recover_noiseless_mixture(solver):
    X, E, A = _mixture()
    assert np.abs(solver(X, E) - A).max() < 1e-8


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3, 1e5])
def test_fcls_is_exact_at_any_spectral_scale(scale):
    """Spectra in raw counts (Gram entries ~1e8-1e13) keep closure exact and the optimum unchanged.

    The closure row of the KKT system holds ones; unscaled, its pivot fell below the
    singularity guard for count-scale spectra and the abundances summed to 1 +- 1e-2.
    """
    X, E, A = _mixture(noise=0.05, seed=3, n=500)
    F1 = fcls(X, E)
    Fs = fcls(X * scale, E * scale)
    assert np.abs(Fs.sum(axis=1) - 1).max() < 1e-12
    assert np.abs(Fs - F1).max() < 1e-9
    N = nnls(X * scale, E * scale)
    assert np.abs(N - nnls(X, E)).max() < 1e-9


def test_fcls_satisfies_constraints_on_noisy_data():
    X, E, _ = _mixture(noise=0.3, seed=1)
    F = fcls(X, E)
    assert F.min() >= 0.0
    assert np.abs(F.sum(axis=1) - 1).max() < 1e-12
    assert (F == 0).any()  # the noise pushes many pixels outside the simplex: constraints are active


def _kkt_violation(x, E, a):
    """Largest violation of the simplex-constrained least-squares optimality conditions."""
    g = E @ (a @ E - x)  # gradient of 1/2 ||x - E'a||^2
    free = a > 0
    nu = -g[free].mean()
    stationarity = np.abs(g[free] + nu).max()
    dual = max(0.0, -(g[~free] + nu).min()) if (~free).any() else 0.0
    return max(stationarity, dual) / max(1.0, np.abs(g).max())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 7))
def test_fcls_meets_kkt_conditions_on_random_problems(seed, k):
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((k, 12))
    X = rng.standard_normal((20, 12)) * 3
    F = fcls(X, E)
    assert F.min() >= 0 and np.abs(F.sum(axis=1) - 1).max() < 1e-12
    assert max(_kkt_violation(x, E, a) for x, a in zip(X, F)) < 1e-9


def test_fcls_agrees_with_cvxopt_qp():
    pytest.importorskip("cvxopt")
    from cvxopt import matrix, solvers

    rng = np.random.default_rng(2)
    k, f, n = 5, 40, 60
    E = rng.random((k, f))
    X = rng.dirichlet(np.ones(k), n) @ E + 0.2 * rng.standard_normal((n, f))
    ours = fcls(X, E)
    saved = dict(solvers.options)
    solvers.options.update(show_progress=False, abstol=1e-14, reltol=1e-14, feastol=1e-14, maxiters=200)
    G = E @ E.T
    ref = np.empty_like(ours)
    try:
        for i, x in enumerate(X):
            sol = solvers.qp(matrix(G), matrix(-(E @ x)), matrix(-np.eye(k)), matrix(np.zeros(k)),
                             matrix(np.ones((1, k))), matrix(1.0))
            ref[i] = np.ravel(sol["x"])
    finally:  # cvxopt's options are global: leave them as found
        solvers.options.clear()
        solvers.options.update(saved)
    assert np.abs(ours - ref).max() < 1e-6


def test_nnls_agrees_with_scipy_per_pixel():
    X, E, _ = _mixture(noise=0.4, seed=3, n=400)
    ours = nnls(X, E)
    ref = np.array([scipy_nnls(E.T, x)[0] for x in X])
    assert ours.min() >= 0
    assert (ours == 0).any()
    assert np.abs(ours - ref).max() < 1e-9


def test_ucls_and_sum_to_one_against_closed_forms():
    X, E, _ = _mixture(noise=0.2, seed=4, n=300)
    ref = np.linalg.lstsq(E.T, X.T, rcond=None)[0].T
    assert np.allclose(ucls(X, E), ref, atol=1e-10)
    S = sum_to_one_ls(X, E)
    assert np.abs(S.sum(axis=1) - 1).max() < 1e-12
    # KKT of the equality-constrained problem: the gradient is parallel to (1, ..., 1)
    g = (S @ E - X) @ E.T
    assert np.abs(g - g.mean(axis=1, keepdims=True)).max() < 1e-9


def test_fcls_with_duplicate_endmember_stays_feasible_and_optimal():
    X, E, _ = _mixture(noise=0.1, seed=5, n=200)
    E2 = np.vstack([E, E[:1]])  # rank-deficient Gram matrix
    F2 = fcls(X, E2)
    assert F2.min() >= 0 and np.abs(F2.sum(axis=1) - 1).max() < 1e-12
    # same fit as the non-degenerate problem (the split between the twins is arbitrary)
    merged = np.column_stack([F2[:, 0] + F2[:, -1], F2[:, 1:-1]])
    assert np.abs(merged - fcls(X, E)).max() < 1e-6


def test_dask_input_gives_lazy_identical_result():
    da = pytest.importorskip("dask.array")
    X, E, _ = _mixture(noise=0.2, seed=6, n=1000)
    Xd = da.from_array(X, chunks=(256, 30))
    for method in ("fcls", "nnls", "ucls", "sto"):
        out = abundances(Xd, E, method=method)
        assert hasattr(out, "dask") and out.shape == (1000, E.shape[0])
        assert np.allclose(out.compute(), abundances(X, E, method=method), atol=1e-12)


def test_dispatcher_matches_functions():
    X, E, _ = _mixture(noise=0.1, seed=7, n=100)
    for name, fn in (("fcls", fcls), ("nnls", nnls), ("ucls", ucls), ("sto", sum_to_one_ls)):
        assert np.array_equal(abundances(X, E, method=name), fn(X, E))


def test_bad_input_errors():
    X, E, _ = _mixture(n=50)
    with pytest.raises(InputError, match="method"):
        abundances(X, E, method="magic")
    with pytest.raises(InputError, match="features"):
        fcls(X, E[:, :10])
    with pytest.raises(InputError, match="2-D"):
        fcls(X[0], E)
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        nnls(bad, E)
    badE = E.copy()
    badE[0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or inf"):
        fcls(X, badE)
    da = pytest.importorskip("dask.array")
    with pytest.raises(InputError, match="NaN"):
        fcls(da.from_array(bad, chunks=(10, 60)), E).compute()
    assert not np.isnan(X).any()  # inputs untouched
