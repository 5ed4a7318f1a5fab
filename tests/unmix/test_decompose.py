"""PCA and NMF (atomine.unmix.decompose): against numpy's SVD and scikit-learn, numpy and dask input."""

import dask
import dask.array as da
import numpy as np
import pytest
from dask_watch import LargestResult
from sklearn.decomposition import NMF as SkNMF

from atomine.errors import InputError
from atomine.unmix.decompose import NMF, PCA


def _low_rank(n=3000, n_features=20, rank=3, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, rank)) * [5.0, 2.0, 1.0][:rank] @ rng.normal(size=(rank, n_features))
    return X + 10.0 + noise * rng.normal(size=X.shape)  # offset: the mean must be removed


def _numpy_pca(X, k):
    """Reference PCA from numpy's SVD, signs fixed as documented (largest |loading| positive)."""
    mean = X.mean(axis=0)
    U, s, Vt = np.linalg.svd(X - mean, full_matrices=False)
    V = Vt[:k]
    V = V * np.sign(V[np.arange(k), np.abs(V).argmax(axis=1)])[:, None]
    return mean, V, (X - mean) @ V.T, s[:k] ** 2 / np.sum(s**2)


@pytest.mark.parametrize("method", ["full", "randomized", "incremental"])
def test_pca_matches_numpy_svd(method):
    X = _low_rank(n=400, n_features=12, rank=3, noise=0.01)
    mean, V, scores, ratio = _numpy_pca(X, 3)
    pca = PCA(3, method=method, batch_size=100, random_state=0).fit(X)
    np.testing.assert_allclose(pca.mean_, mean, atol=1e-10)
    # incremental PCA is exact only up to the discarded noise directions of each batch
    tol = 1e-4 if method == "incremental" else 1e-8
    np.testing.assert_allclose(pca.components_, V, atol=tol)
    np.testing.assert_allclose(pca.abundances_, scores, atol=tol * 100)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ratio, rtol=tol)
    np.testing.assert_allclose(pca.transform(X), pca.abundances_, atol=1e-10)
    assert pca.solver_ == method


def test_pca_reconstruction_error_is_the_residual_and_full_rank_is_exact():
    X = _low_rank(n=300, n_features=10, rank=3, noise=0.1)
    pca = PCA(3, method="full").fit(X)
    expected = np.linalg.norm(X - (pca.abundances_ @ pca.components_ + pca.mean_))
    assert pca.reconstruction_error_ == pytest.approx(expected, rel=1e-12)
    full = PCA(None, method="full").fit(X)
    np.testing.assert_allclose(full.inverse_transform(full.abundances_), X, atol=1e-9)
    np.testing.assert_allclose(full.explained_variance_ratio_.sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("rank,k,noise", [(3, 3, 0.0), (3, 20, 0.05)])
def test_incremental_pca_on_dask_equals_full_pca(rank, k, noise):
    # Exact when the kept components span the data: rank-k data, or all features kept.
    X = _low_rank(n=3000, n_features=20, rank=rank, noise=noise, seed=1)
    Xd = da.from_array(X, chunks=(250, 7))  # feature chunks too: blocks are rechunked to whole rows
    full = PCA(k, method="full").fit(X)
    inc = PCA(k, batch_size=200).fit(Xd)
    assert inc.solver_ == "incremental"
    assert isinstance(inc.abundances_, da.Array)
    np.testing.assert_allclose(inc.mean_, full.mean_, atol=1e-5)
    np.testing.assert_allclose(inc.explained_variance_ratio_, full.explained_variance_ratio_, atol=1e-5)
    np.testing.assert_allclose(inc.components_[:3], full.components_[:3], atol=1e-5)
    np.testing.assert_allclose(inc.abundances_.compute()[:, :3], full.abundances_[:, :3], atol=1e-5)
    assert inc.reconstruction_error_ == pytest.approx(full.reconstruction_error_, abs=1e-5 * np.linalg.norm(X))
    back = inc.inverse_transform(inc.abundances_)
    assert isinstance(back, da.Array) and back.shape == X.shape


def test_pca_on_dask_reads_one_block_at_a_time():
    rng = np.random.default_rng(2)
    Xd = da.from_array(_low_rank(n=20_000, n_features=16, rank=3, noise=0.01, seed=2), chunks=(1000, 16))
    block = 1000 * 16 * 8
    with dask.config.set(scheduler="synchronous"), LargestResult() as watch:
        pca = PCA(3, batch_size=500, random_state=rng).fit(Xd)
    assert watch.largest <= block < Xd.nbytes / 10
    with LargestResult() as watch:
        scores = pca.abundances_.sum(axis=0).compute()
    assert watch.largest <= block
    np.testing.assert_allclose(scores, 0.0, atol=1e-6 * 20_000)  # scores of centred data sum to zero


def test_pca_bad_input():
    X = _low_rank(n=50, n_features=6)
    with pytest.raises(InputError, match="more than min"):
        PCA(7).fit(X)
    with pytest.raises(InputError, match="positive integer"):
        PCA(2.5).fit(X)
    with pytest.raises(InputError, match="method"):
        PCA(2, method="svd").fit(X)
    with pytest.raises(InputError, match="batch_size"):
        PCA(2, method="incremental", batch_size=0).fit(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        PCA(2).fit(bad)
    with pytest.raises(InputError, match="row block 1"):
        PCA(2).fit(da.from_array(bad, chunks=(3, 6)))
    with pytest.raises(InputError, match="2-D"):
        PCA(2).fit(X[0])
    with pytest.raises(InputError, match="not fitted"):
        PCA(2).transform(X)
    with pytest.raises(InputError, match="features"):
        PCA(2).fit(X).transform(X[:, :5])


def _mixtures(n=600, n_features=40, k=3, seed=0, pure=True):
    rng = np.random.default_rng(seed)
    E = rng.random((k, n_features)) + 0.1
    A = rng.dirichlet(np.ones(k), n)
    if pure:  # a pure sample of each endmember pins NMF's answer to the simplex corners
        A[:k] = np.eye(k)
    return A @ E, A, E


def test_nmf_equals_sklearn_with_the_same_seed():
    X, _, _ = _mixtures(n=500, seed=3)
    X = X + 0.01 * np.random.default_rng(4).random(X.shape)
    ours = NMF(3, init="nndsvda", max_iter=400, random_state=7).fit(X)
    ref = SkNMF(3, init="nndsvda", max_iter=400, random_state=7)
    W = ref.fit_transform(X)
    assert ours.reconstruction_error_ == pytest.approx(ref.reconstruction_err_, rel=1e-10)
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=1e-10)
    np.testing.assert_allclose(ours.abundances_, W, rtol=1e-10)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-8, atol=1e-12)
    assert (ours.abundances_ >= 0).all() and (ours.components_ >= 0).all()


def test_nmf_sum_to_one_gives_simplex_abundances_of_mixtures():
    X, _, _ = _mixtures(n=500, seed=5)
    free = NMF(3, init="nndsvda", max_iter=1000, random_state=0).fit(X)
    nmf = NMF(3, init="nndsvda", max_iter=1000, sum_to_one=True, random_state=0).fit(X)
    np.testing.assert_allclose(nmf.abundances_.sum(axis=1), 1.0, atol=1e-9)
    assert (nmf.abundances_ >= -1e-12).all()
    # X rows are convex mixtures, so the simplex constraint costs (almost) no fit quality
    assert nmf.reconstruction_error_ < 1.05 * free.reconstruction_error_ < 1e-3 * np.linalg.norm(X)
    np.testing.assert_allclose(nmf.transform(X[:50]), nmf.abundances_[:50], atol=1e-9)
    lazy = NMF(3, init="nndsvda", max_iter=1000, sum_to_one=True, subsample=200, random_state=0)
    W = lazy.fit(da.from_array(X, chunks=(100, 40))).abundances_.compute()
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-9)
    assert np.linalg.norm(X - W @ lazy.components_) < 1e-2 * np.linalg.norm(X)


@pytest.mark.filterwarnings("ignore:Maximum number of iterations")  # convergence is not the point
def test_nmf_on_dask_fits_a_subset_and_solves_blocks():
    X, _, _ = _mixtures(n=2000, seed=6)
    Xd = da.from_array(X, chunks=(250, 40))
    whole = NMF(3, init="nndsvda", max_iter=300, random_state=1, subsample=5000).fit(Xd)  # subset = all rows
    ref = NMF(3, init="nndsvda", max_iter=300, random_state=1).fit(X)
    np.testing.assert_allclose(whole.components_, ref.components_, rtol=1e-10)
    part = NMF(3, init="nndsvda", max_iter=300, random_state=1, subsample=500)
    with LargestResult() as watch:
        part.fit(Xd)
        W = part.abundances_.compute()
    assert isinstance(part.abundances_, da.Array)
    assert watch.largest <= max(250, 500) * 40 * 8
    assert np.linalg.norm(X - W @ part.components_) < 0.02 * np.linalg.norm(X)


@pytest.mark.filterwarnings("ignore:Maximum number of iterations")  # convergence is not the point
def test_nmf_bad_input():
    X, _, _ = _mixtures(n=30)
    with pytest.raises(InputError, match="non-negative"):
        NMF(2).fit(X - 0.5)
    with pytest.raises(InputError, match="n_components"):
        NMF(31).fit(X)
    with pytest.raises(InputError, match="n_components"):
        NMF(None).fit(X)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or inf"):
        NMF(2).fit(bad)
    with pytest.raises(InputError, match="non-negative"):
        NMF(2, random_state=0).fit(X).transform(-X)
