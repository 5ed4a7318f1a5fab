"""VCA and ATGP: exact pure pixels of noiseless mixtures, SNR estimate, determinism, bad input."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.unmix.atgp import ATGP, atgp
from atomine.unmix.vca import VCA, estimate_snr, vca


def _mixture(k=4, f=80, n=2000, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    E = rng.random((k, f))
    A = rng.dirichlet(np.full(k, 0.7), n)
    pure = rng.choice(n, k, replace=False)
    A[pure] = np.eye(k)
    return A @ E + noise * rng.standard_normal((n, f)), E, A, pure


@pytest.mark.parametrize("k", [2, 3, 4, 6])
@pytest.mark.parametrize("cls", [VCA, ATGP])
def test_recovers_pure_pixels_of_noiseless_mixture(cls, k):
    X, E, A, pure = _mixture(k=k, seed=k)
    model = cls(k, random_state=0).fit(X)
    assert sorted(model.indices_) == sorted(pure)
    order = [list(model.indices_).index(p) for p in pure]
    assert np.abs(model.components_[order] - E).max() < 1e-12
    assert np.abs(model.abundances_[:, order] - A).max() < 1e-8


@pytest.mark.parametrize("seed", range(5))
def test_vca_low_snr_branch_also_finds_vertices(seed):
    X, _, _, pure = _mixture(k=4, seed=20 + seed)
    # forcing a low SNR selects the centred-PCA projection instead of the projective one
    assert sorted(vca(X, 4, snr=0.0, random_state=seed)) == sorted(pure)
    assert sorted(vca(X, 4, random_state=seed)) == sorted(pure)


def test_snr_estimate_matches_true_snr():
    X0, _, _, _ = _mixture(k=4, f=100, n=5000, seed=30)
    assert estimate_snr(X0, 4) == np.inf
    rng = np.random.default_rng(1)
    for sigma in (0.02, 0.1, 0.4):
        X = X0 + sigma * rng.standard_normal(X0.shape)
        true = 10 * np.log10((X0 ** 2).sum(axis=1).mean() / (X0.shape[1] * sigma ** 2))
        assert estimate_snr(X, 4) == pytest.approx(true, abs=0.5)


def test_vca_deterministic_under_seed():
    X, _, _, _ = _mixture(k=4, seed=31, noise=0.05)
    a = VCA(4, random_state=7).fit(X)
    b = VCA(4, random_state=7).fit(X)
    assert np.array_equal(a.indices_, b.indices_) and np.array_equal(a.abundances_, b.abundances_)


def test_atgp_first_target_is_largest_norm_then_orthogonal_residuals():
    rng = np.random.default_rng(2)
    X = rng.random((300, 20))
    idx = atgp(X, 5)
    assert idx[0] == np.argmax((X ** 2).sum(axis=1))
    for t in range(1, 5):
        Q, _ = np.linalg.qr(X[idx[:t]].T)
        res = X - (X @ Q) @ Q.T
        norms = (res ** 2).sum(axis=1)
        norms[idx[:t]] = -1
        assert idx[t] == np.argmax(norms)


def test_atgp_and_vca_abundance_options():
    X, E, A, pure = _mixture(k=3, seed=32)
    model = ATGP(3, abundance="nnls").fit(X)
    order = [list(model.indices_).index(p) for p in pure]
    assert np.abs(model.transform(X)[:, order] - A).max() < 1e-8
    model = VCA(3, abundance="ucls", random_state=0).fit(X)
    order = [list(model.indices_).index(p) for p in pure]
    assert np.abs(model.abundances_[:, order] - A).max() < 1e-8


def test_bad_input():
    X, _, _, _ = _mixture(k=3, n=40, f=10, seed=33)
    with pytest.raises(InputError, match="samples"):
        atgp(X, 41)
    with pytest.raises(InputError, match="span only 3"):
        atgp(X, 4)  # noiseless data of 3 endmembers have rank 3
    with pytest.raises(InputError, match="all zeros"):
        atgp(np.zeros((10, 5)), 2)
    with pytest.raises(InputError, match="n_features"):
        vca(X[:, :3], 4)
    with pytest.raises(InputError, match="one side of the origin"):
        vca(X - X.mean(axis=0), 3, snr=100.0)
    with pytest.raises(InputError, match="abundance"):
        VCA(3, abundance="x").fit(X)
    with pytest.raises(InputError, match="random_state"):
        VCA(3, random_state=-1).fit(X)
    bad = X.copy()
    bad[1, 1] = np.inf
    with pytest.raises(InputError, match="NaN or inf"):
        ATGP(3).fit(bad)


@pytest.mark.parametrize("cls", [VCA, ATGP])
def test_single_component_takes_largest_sample_with_unit_abundance(cls):
    X, _, _, _ = _mixture(k=3, n=200, seed=34)
    model = cls(1, random_state=0).fit(X)
    assert model.indices_[0] == np.argmax((X ** 2).sum(axis=1))
    assert np.allclose(model.abundances_, 1.0, atol=1e-12)  # FCLS with one endmember: a = 1 everywhere
