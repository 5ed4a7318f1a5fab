"""Number of components (atomine.unmix.n_components): HySime and bi-cross-validation on known mixtures."""

import dask.array as da
import numpy as np
import pytest

from atomine.errors import InputError
from atomine.unmix.n_components import estimate_n_components


def _noisy_mixtures(k, n=3000, n_features=60, snr_db=30.0, seed=0):
    """Linear mixtures of k smooth positive spectra (Dirichlet abundances) plus white Gaussian noise."""
    rng = np.random.default_rng(seed)
    E = np.abs(np.cumsum(rng.normal(size=(k, n_features)), axis=1)) + 0.5
    Y = rng.dirichlet(np.ones(k), n) @ E
    sigma = np.sqrt(np.mean(Y**2) / 10 ** (snr_db / 10))
    return Y + sigma * rng.normal(size=Y.shape), sigma


@pytest.mark.parametrize("k", [3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_hysime_finds_the_number_of_endmembers(k, seed):
    X, sigma = _noisy_mixtures(k, seed=seed)
    n, info = estimate_n_components(X, "hysime")
    assert n == k == info.n_components
    # the multiple-regression noise estimate recovers the white noise we added; it errs high
    # (by the regressors' own noise, sigma**2 * |beta|**2) where a feature is poorly predicted
    ratio = info.noise_variance / sigma**2
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)
    assert 0.85 < ratio.min() and ratio.max() < 1.5
    # the k kept directions carry more signal than twice their noise; the next does not
    assert np.all(info.signal_power[:k] > 2 * info.noise_power[:k])
    assert info.signal_power[k] < 2 * info.noise_power[k]
    assert np.argmin(info.criterion) + 1 == k


@pytest.mark.parametrize("k", [3, 4, 5])
def test_bicross_validation_finds_the_number_of_endmembers(k):
    X, _ = _noisy_mixtures(k, seed=10 + k)
    n, info = estimate_n_components(X, "cv", max_components=10, random_state=0)
    assert n == k
    assert info.k[np.argmin(info.criterion)] == k
    # held-out error falls steeply up to k, then rises as extra components fit noise
    assert info.criterion[k - 2] > 2 * info.criterion[k - 1]
    assert np.all(np.diff(info.criterion[k - 1:]) > 0)


def test_hysime_on_dask_equals_in_memory():
    X, _ = _noisy_mixtures(4, n=2000, seed=3)
    n_np, info_np = estimate_n_components(X, "hysime")
    n_da, info_da = estimate_n_components(da.from_array(X, chunks=(300, 20)), "hysime")
    assert n_np == n_da == 4
    np.testing.assert_allclose(info_da.noise_variance, info_np.noise_variance, rtol=1e-8)


def test_cv_on_dask_uses_a_subsample():
    X, _ = _noisy_mixtures(3, n=4000, seed=4)
    n, info = estimate_n_components(da.from_array(X, chunks=(500, 60)), "cv", subsample=1500, random_state=1)
    assert n == 3 and info.method == "cv"


def test_max_components_caps_the_answer():
    X, _ = _noisy_mixtures(5, seed=5)
    assert estimate_n_components(X, "hysime", max_components=3)[0] == 3
    assert estimate_n_components(X, "cv", max_components=2, random_state=0)[0] == 2


def test_n_components_bad_input():
    X, _ = _noisy_mixtures(3, n=200)
    with pytest.raises(InputError, match="method"):
        estimate_n_components(X, "aic")
    with pytest.raises(InputError, match="more samples than features"):
        estimate_n_components(X[:50], "hysime")
    with pytest.raises(InputError, match="max_components"):
        estimate_n_components(X, max_components=0)
    with pytest.raises(InputError, match="n_folds"):
        estimate_n_components(X, "cv", n_folds=1)
    bad = X.copy()
    bad[7, 7] = np.nan
    with pytest.raises(InputError, match="NaN"):
        estimate_n_components(bad)
    with pytest.raises(InputError, match="NaN"):
        estimate_n_components(da.from_array(bad, chunks=(50, 60)), "hysime")
    with pytest.raises(InputError, match="2-D"):
        estimate_n_components(X[0])
