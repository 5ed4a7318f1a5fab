"""k-means and Gaussian mixtures (atomine.unmix.clusters): recover known clusters, numpy and dask."""

import dask
import dask.array as da
import numpy as np
import pytest
from dask_watch import LargestResult
from sklearn.metrics import adjusted_rand_score

from atomine.errors import InputError
from atomine.unmix.clusters import GaussianMixture, KMeans


def _blobs(n=3000, k=3, n_features=10, spread=0.3, seed=0):
    """k clusters whose centres are ~10 units apart and spreads 0.3: separated by > 20 sigma."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=7.0, size=(k, n_features))
    labels = rng.integers(k, size=n)
    return centres[labels] + spread * rng.normal(size=(n, n_features)), labels, centres


def _match(found, centres):
    """For each true centre, the distance to the nearest found centre."""
    return np.linalg.norm(found[:, None] - centres[None], axis=2).min(axis=0)


def test_kmeans_recovers_separated_clusters():
    X, truth, centres = _blobs(seed=1)
    km = KMeans(3, random_state=0).fit(X)
    assert adjusted_rand_score(truth, km.labels_) == 1.0
    assert _match(km.components_, centres).max() < 0.05  # centroid error ~ 0.3 / sqrt(1000) per axis
    assert set(np.unique(km.abundances_)) == {0.0, 1.0}
    np.testing.assert_array_equal(km.abundances_.sum(axis=1), 1.0)
    np.testing.assert_array_equal(km.abundances_.argmax(axis=1), km.labels_)
    # one-hot abundances times centroids = each sample's centroid, so the residual is the inertia
    assert km.reconstruction_error_**2 == pytest.approx(km.inertia_, rel=1e-9)
    np.testing.assert_array_equal(km.transform(X[:20]), km.abundances_[:20])
    np.testing.assert_array_equal(km.predict(X[:20]), km.labels_[:20])


def test_minibatch_kmeans_on_dask_recovers_clusters_block_by_block():
    X, truth, centres = _blobs(n=12_000, k=4, seed=2)
    Xd = da.from_array(X, chunks=(1000, 10))
    with dask.config.set(scheduler="synchronous"), LargestResult() as watch:
        km = KMeans(4, batch_size=1000, max_epochs=2, init_size=800, random_state=3).fit(Xd)
    assert isinstance(km.labels_, da.Array) and isinstance(km.abundances_, da.Array)
    labels = km.labels_.compute()
    assert watch.largest <= 1000 * 10 * 8 < Xd.nbytes / 10  # one block (or the seeding subset) at most
    assert adjusted_rand_score(truth, labels) == 1.0
    assert _match(km.components_, centres).max() < 0.1
    np.testing.assert_array_equal(km.abundances_.compute().argmax(axis=1), labels)


def test_minibatch_kmeans_in_memory_matches_truth():
    X, truth, _ = _blobs(n=5000, k=3, seed=4)
    km = KMeans(3, minibatch=True, batch_size=256, init_size=500, random_state=0).fit(X)
    assert adjusted_rand_score(truth, km.labels_) == 1.0


def test_gaussian_mixture_recovers_clusters_and_posteriors():
    X, truth, centres = _blobs(n=2000, k=3, seed=5)
    gmm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    assert adjusted_rand_score(truth, gmm.labels_) == 1.0
    assert _match(gmm.components_, centres).max() < 0.05
    np.testing.assert_allclose(gmm.probabilities_.sum(axis=1), 1.0, atol=1e-12)
    assert gmm.probabilities_ is gmm.abundances_
    assert gmm.probabilities_.max(axis=1).min() > 0.999  # > 20-sigma separation: no doubt anywhere
    np.testing.assert_allclose(gmm.weights_, np.bincount(truth) / truth.size, atol=1e-6)
    # a point midway between two means is shared between them
    mid = (gmm.components_[0] + gmm.components_[1])[None] / 2
    assert gmm.transform(mid)[0, 2] < 1e-6


def test_gaussian_mixture_on_dask_uses_a_subset_and_lazy_posteriors():
    X, truth, _ = _blobs(n=6000, k=3, seed=6)
    gmm = GaussianMixture(3, covariance_type="full", subsample=1500, random_state=1)
    with LargestResult() as watch:
        gmm.fit(da.from_array(X, chunks=(1000, 10)))
    assert watch.largest <= 1500 * 10 * 8  # the fitting subset; the posteriors are still lazy
    labels = gmm.labels_.compute()
    P = gmm.probabilities_.compute()
    assert adjusted_rand_score(truth, labels) == 1.0
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)


def test_cluster_bad_input():
    X, _, _ = _blobs(n=20)
    with pytest.raises(InputError, match="more than the 20 samples"):
        KMeans(21).fit(X)
    with pytest.raises(InputError, match="more than the 20 samples"):
        GaussianMixture(21).fit(X)
    with pytest.raises(InputError, match="minibatch"):
        KMeans(2, minibatch="yes").fit(X)
    with pytest.raises(InputError, match="covariance_type"):
        GaussianMixture(2, covariance_type="banana").fit(X)
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        KMeans(2).fit(bad)
    with pytest.raises(InputError, match="NaN"):
        GaussianMixture(2).fit(bad)
    with pytest.raises(InputError, match="NaN"):
        KMeans(2, init_size=5).fit(da.from_array(bad, chunks=(4, 10)))
    with pytest.raises(InputError, match="2-D"):
        KMeans(2).fit(X.ravel())
