"""Hard and soft clustering of samples: k-means and Gaussian mixtures (scikit-learn engines).

In the unmixing interface a clustering is a decomposition whose abundances say which
cluster a sample belongs to: ``components_`` are the centroids / means, ``abundances_``
are one-hot rows (k-means) or posterior probabilities (Gaussian mixture), so
``abundances_ @ components_`` is each sample's cluster centre.

Dask input (and, for k-means, large in-memory input) keeps memory bounded:
k-means seeds its centroids by k-means++ on a random subset of rows, then refines them
with ``MiniBatchKMeans.partial_fit`` over row blocks for a few epochs; the Gaussian
mixture is fitted on a random subset of rows. Labels and abundances of dask input come
back as lazy dask arrays computed block by block.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._base import UnmixingEstimator, check_random_state, is_dask
from ._dask import iter_batches, map_rows, random_rows, sklearn_seed

#: in-memory inputs with more samples than this use mini-batch k-means under minibatch="auto"
MINIBATCH_ABOVE = 100_000
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((labels.shape[0], k), dtype=np.float64)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _check_k(n_components, n_samples: int, what: str) -> int:
    if n_components is None:
        raise InputError(f"{what} needs n_components (a positive integer); estimate_n_components can suggest one")
    if n_components > n_samples:  # the base class words the same check; repeated for direct _fit calls
        raise InputError(f"n_components={n_components} is more than the {n_samples} samples given")
    return int(n_components)


class KMeans(UnmixingEstimator):
    """k-means clustering: centroids as components, one-hot memberships as abundances.

    Parameters
    ----------
    n_components : int
        Number of clusters.
    n_init : int
        k-means++ restarts (the best inertia is kept).
    max_iter, tol : int, float
        Lloyd iterations and their tolerance (in-memory k-means).
    minibatch : {"auto", True, False}
        Use mini-batch k-means; "auto" does so for dask input and for more than
        ``MINIBATCH_ABOVE`` samples. Dask input always uses it.
    batch_size : int
        Rows per mini-batch step.
    max_epochs : int
        Passes over the data of the mini-batch refinement (block order shuffled each pass).
    init_size : int
        Rows drawn at random to seed the centroids of mini-batch k-means with k-means++.
    random_state : None, int or numpy Generator

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Centroids.
    labels_ : ndarray or dask array (n_samples,)
        Nearest centroid of each sample.
    abundances_ : ndarray or dask array (n_samples, n_components)
        One-hot rows of ``labels_``.
    inertia_ : float
        Sum of squared distances to the nearest centroid (in-memory input; for dask
        input over the seeding subset).
    """

    accepts_dask = True

    def __init__(self, n_components: int = 2, *, n_init: int = 4, max_iter: int = 300, tol: float = 1e-4,
                 minibatch="auto", batch_size: int = 4096, max_epochs: int = 3, init_size: int = 20_000,
                 random_state=None):
        super().__init__(n_components, random_state=random_state)
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.minibatch = minibatch
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.init_size = init_size

    def _use_minibatch(self, X) -> bool:
        if self.minibatch not in ("auto", True, False):
            raise InputError(f"minibatch must be 'auto', True or False, got {self.minibatch!r}")
        if is_dask(X):
            return True
        return self.minibatch is True or (self.minibatch == "auto" and X.shape[0] > MINIBATCH_ABOVE)

    def _fit(self, X):
        from sklearn.cluster import KMeans as _SkKMeans

        k = _check_k(self.n_components, X.shape[0], "KMeans")
        if not self._use_minibatch(X):
            model = _SkKMeans(n_clusters=k, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                              random_state=sklearn_seed(self.random_state)).fit(X)
            self.inertia_ = float(model.inertia_)
            self.n_iter_ = int(model.n_iter_)
        else:
            model = self._fit_minibatch(X, k)
        self._model = model
        self.components_ = np.asarray(model.cluster_centers_, dtype=np.float64)
        self.labels_ = self.predict(X)
        return self.components_, self._transform(X)

    def _fit_minibatch(self, X, k: int):
        from sklearn.cluster import KMeans as _SkKMeans
        from sklearn.cluster import MiniBatchKMeans

        rng = check_random_state(self.random_state)
        # Seed on a subset that fits in memory; k-means++ there is what full k-means would start from.
        subset = random_rows(X, max(int(self.init_size), k), rng)
        seed = _SkKMeans(n_clusters=k, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                         random_state=sklearn_seed(rng)).fit(subset)
        self.inertia_ = float(seed.inertia_)
        model = MiniBatchKMeans(n_clusters=k, init=seed.cluster_centers_, n_init=1, batch_size=self.batch_size,
                                random_state=sklearn_seed(rng))
        bs = int(self.batch_size)
        for _ in range(int(self.max_epochs)):
            if is_dask(X):
                for piece in iter_batches(X, bs, k, order=rng.permutation(X.numblocks[0])):
                    model.partial_fit(piece)
                continue
            # in memory: shuffled index batches, so no permuted copy of X is made
            perm = rng.permutation(X.shape[0])
            for start in range(0, X.shape[0], bs):
                idx = perm[start:start + bs]
                if idx.shape[0] >= k:  # a short tail is skipped; the next epoch reshuffles
                    model.partial_fit(X[idx])
        self.n_iter_ = int(self.max_epochs)
        return model

    def predict(self, X):
        """Index of the nearest centroid of each row (lazy for dask input)."""
        self._check_fitted()
        model = self._model
        if is_dask(X):
            return map_rows(X, model.predict, None, dtype=np.int64)
        return model.predict(np.asarray(X, dtype=np.float64)).astype(np.int64)

    def _transform(self, X):
        k = self.components_.shape[0]
        if is_dask(X):
            model = self._model
            return map_rows(X, lambda b: _one_hot(model.predict(b), k), k)
        return _one_hot(self.predict(X), k)


class GaussianMixture(UnmixingEstimator):
    """Gaussian mixture model: component means as components, posterior probabilities as abundances.

    Parameters
    ----------
    n_components : int
        Number of Gaussian components.
    covariance_type : {"full", "tied", "diag", "spherical"}
        Covariance model (scikit-learn's); "diag" scales to many features.
    max_iter, tol, n_init, reg_covar : as scikit-learn's ``GaussianMixture``
    subsample : int
        Dask input: rows (drawn at random, seeded) the mixture is fitted on; posteriors of
        all rows are then computed block by block, lazily.
    random_state : None, int or numpy Generator

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Means.
    probabilities_, abundances_ : ndarray or dask array (n_samples, n_components)
        Posterior probability of each component for each sample (rows sum to one).
    labels_ : ndarray or dask array (n_samples,)
        Most probable component.
    covariances_, weights_ : ndarrays
        As fitted by scikit-learn.
    """

    accepts_dask = True

    def __init__(self, n_components: int = 2, *, covariance_type: str = "full", max_iter: int = 100,
                 tol: float = 1e-3, n_init: int = 1, reg_covar: float = 1e-6, subsample: int = 20_000,
                 random_state=None):
        super().__init__(n_components, random_state=random_state)
        self.covariance_type = covariance_type
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.reg_covar = reg_covar
        self.subsample = subsample

    def _fit(self, X):
        from sklearn.mixture import GaussianMixture as _SkGMM

        k = _check_k(self.n_components, X.shape[0], "GaussianMixture")
        if self.covariance_type not in _COVARIANCE_TYPES:
            raise InputError(f"covariance_type must be one of {_COVARIANCE_TYPES}, got {self.covariance_type!r}")
        rng = check_random_state(self.random_state)
        data = random_rows(X, int(self.subsample), rng) if is_dask(X) else X
        model = _SkGMM(n_components=k, covariance_type=self.covariance_type, max_iter=self.max_iter, tol=self.tol,
                       n_init=self.n_init, reg_covar=self.reg_covar, random_state=sklearn_seed(self.random_state))
        model.fit(data)
        self._model = model
        self.converged_ = bool(model.converged_)
        self.weights_ = model.weights_
        self.covariances_ = model.covariances_
        self.components_ = np.asarray(model.means_, dtype=np.float64)
        self.probabilities_ = self._transform(X)
        self.labels_ = self.predict(X)
        return self.components_, self.probabilities_

    def predict(self, X):
        """Most probable component of each row (lazy for dask input)."""
        self._check_fitted()
        if is_dask(X):
            return map_rows(X, self._model.predict, None, dtype=np.int64)
        return self._model.predict(np.asarray(X, dtype=np.float64)).astype(np.int64)

    def _transform(self, X):
        if is_dask(X):
            return map_rows(X, self._model.predict_proba, self.components_.shape[0])
        return self._model.predict_proba(np.asarray(X, dtype=np.float64))
