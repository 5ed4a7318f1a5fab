"""Bayesian unmixing (Gibbs): recovery against simulator truth, calibrated intervals, sampler pieces, bad input."""

import numpy as np
import pytest
import scipy.stats
from numba import njit
from scipy.optimize import linear_sum_assignment

from atomine import simulate
from atomine.errors import InputError
from atomine.unmix import _bayes_kernels as bk
from atomine.unmix.bayes import BayesianUnmixing


def _angles(E, T):
    """Spectral angles (degrees) between every row of E and every row of T."""
    En = E / np.linalg.norm(E, axis=1, keepdims=True)
    Tn = T / np.linalg.norm(T, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip(En @ Tn.T, -1.0, 1.0)))


def _scores(model, A_true, E_true):
    """Hungarian matching on spectral angle; RMSE, matched angles and interval coverage of the truth."""
    ang = _angles(model.components_, E_true)
    r, c = linear_sum_assignment(ang)
    A = model.abundances_[:, r]
    At = A_true[:, c]
    inside = (At >= model.abundance_lo_[:, r]) & (At <= model.abundance_hi_[:, r])
    return float(np.sqrt(np.mean((A - At) ** 2))), ang[r, c], float(inside.mean())


def _check_simplex(model):
    A = model.abundances_
    assert A.min() >= 0.0
    np.testing.assert_allclose(A.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(model.abundance_lo_ <= A + 1e-6) and np.all(A <= model.abundance_hi_ + 1e-6)


def _dirichlet_mixture(seed=0, n=800, m=30, noise=0.01, alpha=1.0):
    """Gaussian-bump endmembers on a positive floor, Dirichlet(alpha) abundances, channel-dependent Gaussian noise."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, m)
    E = np.stack([0.2 + np.exp(-0.5 * ((x - c) / 0.12) ** 2) for c in (0.2, 0.5, 0.8)])
    A = rng.dirichlet(np.full(3, alpha), size=n)
    X = A @ E + rng.standard_normal((n, m)) * noise * (1.0 + x)
    return X, A, E


# ----------------------------------------------------------------------------- sampler pieces
@njit
def _draws(a, b, n, seed):
    out = np.empty(n)
    state = np.zeros(1, dtype=np.uint64)
    key = bk.stream_key(np.uint64(seed), 3)
    for i in range(n):
        out[i] = bk.truncated_normal(a, b, key, state)
    return out


@pytest.mark.parametrize("a,b", [(-np.inf, np.inf), (-0.2, 0.1), (0.5, 0.6), (3.0, np.inf), (8.0, 8.01),
                                 (-40.0, -39.9), (-3.0, 10.0), (-np.inf, -5.0)])
def test_truncated_normal_matches_scipy(a, b):
    x = _draws(a, b, 40000, 11)
    assert x.min() >= a and x.max() <= b
    # exact samplers: the KS test must not reject at 0.1 % (fixed seed, so deterministic)
    assert scipy.stats.kstest(x, scipy.stats.truncnorm(a, b).cdf).pvalue > 1e-3


def test_abundance_sweep_stays_on_simplex_and_matches_untruncated_moments():
    # far from the faces the truncated conditional is the plain Gaussian: mean h, covariance U U'
    n = 20000
    H = np.tile([0.3, 0.4, 0.3], (n, 1))
    U = np.array([[0.01, 0.004], [0.0, 0.008]])
    A = H.copy()
    draws = []
    for s in range(3):
        bk.abundance_sweep(A, H, U, np.uint64(s + 1), 1)
        draws.append(A[:, :2].copy())
    c = np.concatenate(draws)
    assert A.min() >= 0 and np.allclose(A.sum(axis=1), 1.0)
    np.testing.assert_allclose(c.mean(axis=0), [0.3, 0.4], atol=3e-4)
    np.testing.assert_allclose(np.cov(c.T), U @ U.T, rtol=0.05, atol=2e-7)


def test_abundance_sweep_with_dirichlet_prior_samples_the_dirichlet_when_the_likelihood_is_flat():
    # a likelihood far broader than the simplex leaves the prior: a_k ~ Beta(alpha_k, sum(alpha) - alpha_k)
    alpha = np.array([0.4, 0.7, 2.0])
    n = 20000
    H = np.tile([1 / 3, 1 / 3, 1 / 3], (n, 1))
    U = np.array([[300.0, 100.0], [0.0, 300.0]])
    A = H.copy()
    for s in range(40):  # the chain starts at the centre; the slice sampler forgets it within a few sweeps
        bk.abundance_sweep(A, H, U, np.uint64(s + 1), 1, alpha)
    assert A.min() >= 0 and np.allclose(A.sum(axis=1), 1.0)
    for k in range(3):
        beta = scipy.stats.beta(alpha[k], alpha.sum() - alpha[k])
        assert scipy.stats.kstest(A[:, k], beta.cdf).pvalue > 1e-3, k


def test_concentration_update_recovers_the_dirichlet_parameters():
    alpha_true = np.array([0.45, 0.6, 1.8])
    A = np.random.default_rng(4).dirichlet(alpha_true, size=5000)
    S = np.log(np.maximum(A, 1e-12)).sum(axis=0)
    alpha = np.ones(3)
    draws = []
    for s in range(400):
        bk.dirichlet_concentration(alpha, S, float(A.shape[0]), 1.5, 3.0 / np.sqrt(A.shape[0]), np.uint64(s + 1))
        draws.append(alpha.copy())
    draws = np.array(draws[100:])
    # posterior of 5000 samples: within ~4 % of the truth, with a spread of ~1-2 %
    np.testing.assert_allclose(draws.mean(axis=0), alpha_true, rtol=0.06)
    assert np.all(draws.std(axis=0) / alpha_true < 0.05)


# ----------------------------------------------------------------------------- synthetic posterior check
def test_gaussian_mixture_recovered_with_calibrated_intervals():
    X, A, E = _dirichlet_mixture(seed=0)
    model = BayesianUnmixing(3, n_iter=800, burn_in=300, random_state=0).fit(X)
    rmse, ang, coverage = _scores(model, A, E)
    _check_simplex(model)
    assert rmse < 0.015 and ang.max() < 1.0
    assert model.components_.min() >= 0.0
    # well-specified model (uniform abundances on the full simplex, Gaussian noise): 95 % intervals
    assert 0.90 <= coverage <= 0.98, coverage
    # noise levels per channel: (0.01 (1 + x))^2
    x = np.linspace(0.0, 1.0, X.shape[1])
    np.testing.assert_allclose(model.noise_variance_, (0.01 * (1 + x)) ** 2, rtol=0.2)
    assert model.noise_model_ == "channel"


def test_near_pure_pixels_do_not_inflate_the_simplex():
    # Dirichlet(0.4) abundances pile up near the vertices and edges. A uniform-simplex prior
    # explains that pile of noisy boundary points by a larger simplex (vertices ~7 % too far
    # out, estimated-vs-true abundance slope 0.94, coverage ~0.7); the learned Dirichlet
    # concentration must put the simplex back on the truth.
    X, A, E = _dirichlet_mixture(seed=3, alpha=0.4, noise=0.03)
    model = BayesianUnmixing(3, n_iter=800, burn_in=300, random_state=0).fit(X)
    rmse, ang, coverage = _scores(model, A, E)
    r, c = linear_sum_assignment(_angles(model.components_, E))
    slope = [np.polyfit(A[:, j], model.abundances_[:, i], 1)[0] for i, j in zip(r, c)]
    np.testing.assert_allclose(slope, 1.0, atol=0.02)
    assert 0.90 <= coverage <= 0.98, coverage
    np.testing.assert_allclose(model.concentration_[r], 0.4, rtol=0.3)


def test_same_seed_same_chain_and_progress_reports_every_sweep():
    X, _, _ = _dirichlet_mixture(seed=1, n=200, m=12)
    calls = []
    a = BayesianUnmixing(3, n_iter=30, burn_in=10, random_state=5, progress=lambda d, t: calls.append((d, t))).fit(X)
    b = BayesianUnmixing(3, n_iter=30, burn_in=10, random_state=5).fit(X)
    np.testing.assert_array_equal(a.abundances_, b.abundances_)
    np.testing.assert_array_equal(a.components_, b.components_)
    assert calls[-1] == (30, 30) and len(calls) == 30
    assert a.n_draws_ == 20 and a.n_stored_ == 20
    # transform: fully constrained abundances on the posterior-mean endmembers
    T = a.transform(X[:5])
    assert T.shape == (5, 3) and np.allclose(T.sum(axis=1), 1.0) and T.min() >= 0


# ----------------------------------------------------------------------------- simulator truth
@pytest.fixture(scope="module")
def eels_fit():
    sim = simulate.make("eels-si-mixed", seed=0)
    X = np.asarray(sim.data.values, dtype=np.float64).reshape(-1, sim.data.shape[-1])
    A = sim.truth.maps["abundances"].values.reshape(-1, 3)
    E = sim.truth.maps["endmembers"].values
    # half the default chain keeps the suite short; R-hat stays below 1.1 at this length
    return BayesianUnmixing(3, n_iter=1000, burn_in=400, random_state=0).fit(X), A, E


@pytest.mark.slow
def test_eels_mixed_counts_against_truth(eels_fit):
    model, A, E = eels_fit
    rmse, ang, _ = _scores(model, A, E)
    _check_simplex(model)
    assert rmse <= 0.05 and ang.max() <= 3.0
    assert model.components_.min() >= 0.0 and np.all(model.sign_ == 1)


@pytest.mark.slow
def test_eels_mixed_interval_coverage(eels_fit):
    # smooth fields strictly inside the simplex, spectra unknown: the 95 % intervals cover the truth
    model, A, E = eels_fit
    _, _, coverage = _scores(model, A, E)
    assert 0.90 <= coverage <= 0.98, coverage


@pytest.fixture(scope="module")
def cits_fit():
    sim = simulate.make("cits-grid-mixed", seed=0)
    X = np.asarray(sim.data.values, dtype=np.float64).reshape(-1, sim.data.shape[-1])
    bias = sim.data.coords["bias"].values
    A, E = sim.truth.maps["current_weights"].values.reshape(-1, 3), sim.truth.maps["endmember_iv"].values
    return BayesianUnmixing(3, n_iter=800, burn_in=300, random_state=0).fit(X), A, E, bias


@pytest.mark.slow
def test_cits_mixed_current_against_truth(cits_fit):
    model, A, E, bias = cits_fit
    rmse, ang, _ = _scores(model, A, E)
    _check_simplex(model)
    assert rmse <= 0.05 and ang.max() <= 3.0
    assert model.noise_model_ == "correlated"  # 1/f current noise along the sweep
    # tunnelling current has the sign of the bias: constrained where every curve agrees, and obeyed.
    # Inside the 0.3 V half-gap the nearly pure semiconductor curves carry only noise, so their signs
    # disagree there and those channels stay free; outside it every channel is constrained
    signed = model.sign_ != 0
    assert np.all(model.sign_[signed] == np.sign(bias[signed])) and np.all(signed[np.abs(bias) > 0.3])
    assert signed.mean() > 0.65
    assert np.all(model.components_[:, signed] * model.sign_[signed] >= 0)


@pytest.mark.slow
def test_cits_mixed_interval_coverage(cits_fit):
    model, A, E, _ = cits_fit
    _, _, coverage = _scores(model, A, E)
    assert 0.90 <= coverage <= 0.98, coverage


# ----------------------------------------------------------------------------- known reference spectra
def test_reference_subspace_holds_references_off_the_data_subspace_exactly():
    # references with a spike no pixel shows: the sampler's affine subspace must still contain them
    # exactly (else the abundance conditional would use projected, wrong endmembers), and noiseless
    # mixtures of the references and a free spectrum must lie in it too
    from atomine.unmix._bayes_setup import _reference_subspace
    _, A, E = _dirichlet_mixture(seed=2, n=300, m=25, noise=0.0)
    R = E.copy()
    R[:, 7] += [3.0, -1.0, 0.5]
    extra = 0.3 + np.cos(np.linspace(0, 3, 25))
    for refs, k, Y in ((R, 3, A @ R), (R[:2], 3, A[:, :2] @ R[:2] + A[:, 2:] @ extra[None])):
        mean, V = _reference_subspace(Y, refs, k)
        np.testing.assert_allclose(V.T @ V, np.eye(k - 1), atol=1e-12)
        np.testing.assert_allclose(mean + (refs - mean) @ V @ V.T, refs, atol=1e-12)
        Yc = Y - mean
        np.testing.assert_allclose(mean + Yc @ V @ V.T, Y, atol=1e-10)


def test_all_references_known_samples_calibrated_abundances_only():
    X, A, E = _dirichlet_mixture(seed=5, n=600)
    model = BayesianUnmixing(3, n_iter=400, burn_in=150, references=E, random_state=0).fit(X)
    # the references are returned as given, with no spread
    np.testing.assert_array_equal(model.components_, E)
    np.testing.assert_array_equal(model.components_lo_, E)
    np.testing.assert_array_equal(model.components_hi_, E)
    assert model.n_references_ == 3
    _check_simplex(model)
    inside = (A >= model.abundance_lo_) & (A <= model.abundance_hi_)
    rmse = float(np.sqrt(np.mean((model.abundances_ - A) ** 2)))
    # posterior mean no worse than FCLS on the true endmembers; 95 % intervals calibrated
    from atomine.unmix import fcls
    assert rmse <= 1.05 * float(np.sqrt(np.mean((fcls(X, E) - A) ** 2)))
    assert 0.92 <= inside.mean() <= 0.98, inside.mean()


def test_partly_known_references_recover_the_free_endmember():
    X, A, E = _dirichlet_mixture(seed=6, n=600)
    model = BayesianUnmixing(3, n_iter=500, burn_in=200, references=E[:2], random_state=0).fit(X)
    np.testing.assert_array_equal(model.components_[:2], E[:2])
    # component order is kept: the references first, then the free one
    rmse, ang, coverage = _scores(model, A, E)
    assert np.all(np.diag(_angles(model.components_, E)) < 1.0)
    assert rmse < 0.015 and 0.90 <= coverage <= 0.98, (rmse, coverage)
    assert model.components_[2].min() >= 0.0


@pytest.mark.parametrize("refs, k, match", [
    (np.ones((2, 11)), 3, "channels"),
    (np.ones((4, 12)), 3, "n_components"),
    (np.array([[1.0] * 12, [2.0] * 12, [1.5] * 12]), 3, "affinely dependent"),
    (np.full((2, 12), np.nan), 3, "NaN"),
])
def test_bad_references_are_one_line_input_errors(refs, k, match):
    X, _, _ = _dirichlet_mixture(n=50, m=12)
    with pytest.raises(InputError, match=match) as err:
        BayesianUnmixing(k, n_iter=20, burn_in=5, references=refs).fit(X)
    assert "\n" not in str(err.value)


def _reference_fit(preset, seed, weights_key, endmember_key, n_iter=600, burn_in=200):
    sim = simulate.make(preset, seed=seed)
    X = np.asarray(sim.data.values, dtype=np.float64).reshape(-1, sim.data.shape[-1])
    A = sim.truth.maps[weights_key].values.reshape(-1, 3)
    E = sim.truth.maps[endmember_key].values
    model = BayesianUnmixing(3, n_iter=n_iter, burn_in=burn_in, references=E, random_state=seed).fit(X)
    from atomine.unmix import fcls
    inside = (A >= model.abundance_lo_) & (A <= model.abundance_hi_)
    rmse = float(np.sqrt(np.mean((model.abundances_ - A) ** 2)))
    return model, rmse, float(np.sqrt(np.mean((fcls(X, E) - A) ** 2))), float(inside.mean())


@pytest.mark.slow
def test_eels_mixed_with_true_references_is_calibrated():
    # with the pure spectra known only the abundances and the noise are sampled: the intervals
    # must cover the true abundances
    model, rmse, rmse_fcls, coverage = _reference_fit("eels-si-mixed", 0, "abundances", "endmembers")
    _check_simplex(model)
    assert rmse <= rmse_fcls + 0.002, (rmse, rmse_fcls)
    assert 0.90 <= coverage <= 0.98, coverage


@pytest.fixture(scope="module")
def cits_reference_fit():
    return _reference_fit("cits-grid-mixed", 0, "current_weights", "endmember_iv")


@pytest.mark.slow
def test_cits_mixed_with_true_references_matches_fcls(cits_reference_fit):
    model, rmse, rmse_fcls, _ = cits_reference_fit
    _check_simplex(model)
    assert model.noise_model_ == "correlated"
    assert rmse <= rmse_fcls + 0.002, (rmse, rmse_fcls)


@pytest.mark.slow
def test_cits_mixed_with_true_references_is_calibrated(cits_reference_fit):
    _, _, _, coverage = cits_reference_fit
    assert 0.90 <= coverage <= 0.98, coverage


def test_workflow_passes_references_to_bayes():
    import xarray as xr

    from atomine.workflows.unmix import unmix_spectra
    sim = simulate.make("eels-si-mixed", seed=0)
    T = sim.truth.maps["endmembers"]
    refs = [xr.DataArray(T.isel(component=i).values, dims=("energy",), coords={"energy": T.energy.values},
                         name=str(T.component.values[i])) for i in range(3)]
    crop = sim.data.isel(y=slice(0, 12), x=slice(0, 12))
    result = unmix_spectra(crop, method="bayes", n_components=3, references=refs)
    assert result.summary["unmixing"]["fixed_references"] == 3
    # the references are the endmembers (raw counts), back from the scaled weighted space unchanged
    np.testing.assert_allclose(result.maps["endmember_counts"].values, T.values, rtol=1e-9)
    truth = sim.truth.maps["abundances"].isel(y=slice(0, 12), x=slice(0, 12)).transpose("component", "y", "x").values
    assert float(np.sqrt(np.mean((result.abundance.values - truth) ** 2))) < 0.03
    inside = (truth >= result.maps["abundance_lo"].values - 1e-6) & (truth <= result.maps["abundance_hi"].values + 1e-6)
    assert inside.mean() >= 0.85


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    (dict(n_iter=0), "n_iter"),
    (dict(n_iter=100, burn_in=100), "burn_in"),
    (dict(burn_in=-1), "burn_in"),
    (dict(n_iter=2.5), "n_iter"),
    (dict(thin=0), "thin"),
    (dict(n_iter=20, burn_in=10, thin=10), "thin"),
    (dict(credible=1.5), "credible"),
    (dict(noise="pink"), "noise"),
    (dict(init="magic"), "init"),
    (dict(init=np.ones((2, 12))), "init"),
    (dict(sign=np.ones(3)), "sign"),
    (dict(max_stored=1), "max_stored"),
])
def test_bad_parameters_are_one_line_input_errors(kwargs, match):
    X, _, _ = _dirichlet_mixture(n=50, m=12)
    with pytest.raises(InputError, match=match) as err:
        BayesianUnmixing(3, **kwargs).fit(X)
    assert "\n" not in str(err.value)


def test_bad_data_are_input_errors():
    X, _, _ = _dirichlet_mixture(n=50, m=12)
    with pytest.raises(InputError, match="samples"):
        BayesianUnmixing(60).fit(X)
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        BayesianUnmixing(3).fit(bad)
    with pytest.raises(InputError, match="at least 2"):
        BayesianUnmixing(1).fit(X)
    with pytest.raises(InputError, match="not fitted"):
        BayesianUnmixing(3).transform(X)
