"""Matrix decompositions: PCA (full, randomized, incremental) and NMF, on numpy or dask arrays.

scikit-learn is the engine (``PCA``, ``IncrementalPCA``, ``NMF``); this module adds the
shared :class:`~atomine.unmix._base.UnmixingEstimator` interface, clear input errors, a
deterministic sign convention, and bounded-memory processing of dask arrays:

* PCA on a dask array streams row blocks through ``IncrementalPCA.partial_fit`` (one
  block in memory at a time, never the whole array); scores come back as a lazy dask array.
* NMF on a dask array is fitted on a random subset of rows, then every row block's
  abundances are solved chunk-wise against the fitted components (lazy dask array).

The small helpers for dask row blocks live here too; :mod:`atomine.unmix.clusters` uses them.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InputError
from ._base import UnmixingEstimator, check_matrix, check_n_components, check_random_state, is_dask

_PCA_METHODS = ("randomized", "full", "incremental")


# -- shared helpers (numpy / dask, seeds) ---------------------------------------------------
from ._dask import iter_batches, map_rows, random_rows, sklearn_seed


def _flip_signs(components: np.ndarray) -> np.ndarray:
    """Sign of each principal axis fixed so its largest-magnitude loading is positive (SVD leaves it free)."""
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    signs[signs == 0] = 1.0
    return components * signs[:, None], signs


# -- PCA -----------------------------------------------------------------------------------
class PCA(UnmixingEstimator):
    """Principal component analysis: components are the principal axes, abundances the scores.

    Parameters
    ----------
    n_components : int or None
        Number of principal axes kept; None keeps ``min(n_samples, n_features)``.
    method : {"randomized", "full", "incremental"}
        "full" is an exact LAPACK SVD, "randomized" (Halko et al. 2011) is fast for a few
        components of a large matrix, "incremental" streams batches through
        ``IncrementalPCA.partial_fit``. Dask input always streams (incremental), block by
        block, so the whole array is never in memory; ``solver_`` says what was used.
    batch_size : int or None
        Rows per incremental step (default ``5 * n_features``, at least ``n_components``).
    random_state : None, int or numpy Generator
        Seed of the randomized SVD.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Orthonormal principal axes, sign fixed so each axis' largest-magnitude loading is positive.
    abundances_ : ndarray or dask array (n_samples, n_components)
        Scores ``(X - mean_) @ components_.T`` (lazy for dask input).
    explained_variance_, explained_variance_ratio_ : ndarray (n_components,)
        Variance along each axis (unbiased, ``n_samples - 1``) and its fraction of the total.
    mean_ : ndarray (n_features,)
        Per-feature mean removed before projecting.
    reconstruction_error_ : float
        Frobenius norm of ``X - inverse_transform(abundances_)``; for dask input it comes
        from the variance budget (total minus explained), so no second pass over the data.
    """

    accepts_dask = True

    def __init__(self, n_components: int | None = None, *, method: str = "randomized",
                 batch_size: int | None = None, random_state=None):
        super().__init__(n_components, random_state=random_state)
        self.method = method
        self.batch_size = batch_size

    def _check_params(self, X) -> int:
        if self.method not in _PCA_METHODS:
            raise InputError(f"PCA method must be one of {_PCA_METHODS}, got {self.method!r}")
        n_samples, n_features = X.shape
        check_n_components(self.n_components, n_samples, allow_none=True)
        k = min(n_samples, n_features) if self.n_components is None else self.n_components
        if k > min(n_samples, n_features):
            raise InputError(f"n_components={k} is more than min(n_samples={n_samples}, n_features={n_features}); "
                             "ask for fewer components")
        if self.batch_size is not None and (not isinstance(self.batch_size, numbers.Integral)
                                            or isinstance(self.batch_size, bool) or self.batch_size < 1):
            raise InputError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        return int(k)

    def _fit(self, X):
        from sklearn.decomposition import PCA as _SkPCA
        from sklearn.decomposition import IncrementalPCA

        k = self._check_params(X)
        if is_dask(X) or self.method == "incremental":
            batch = self.batch_size or max(5 * X.shape[1], k)
            batch = max(batch, k)
            model = IncrementalPCA(n_components=k, batch_size=batch)
            for piece in iter_batches(X, batch, k):
                model.partial_fit(piece)
            self.solver_ = "incremental"
            # residual sum of squares = total - explained, from IPCA's exact running variance
            n = X.shape[0]
            rss = n * float(np.sum(model.var_)) - (n - 1) * float(np.sum(model.explained_variance_))
            self._rss = max(rss, 0.0)
        else:
            model = _SkPCA(n_components=k, svd_solver=self.method, random_state=sklearn_seed(self.random_state))
            model.fit(X)
            self.solver_ = self.method
            self._rss = None
        components, _ = _flip_signs(np.asarray(model.components_, dtype=np.float64))
        self.mean_ = np.asarray(model.mean_, dtype=np.float64)
        self.explained_variance_ = np.asarray(model.explained_variance_, dtype=np.float64)
        self.explained_variance_ratio_ = np.asarray(model.explained_variance_ratio_, dtype=np.float64)
        self.singular_values_ = np.asarray(model.singular_values_, dtype=np.float64)
        self.components_ = components
        return components, self._transform(X)

    def fit(self, X, y=None):
        # The base class' error has no mean term; PCA's reconstruction adds mean_ back.
        X = check_matrix(X, "X", allow_dask=True)
        components, abundances = self._fit(X)
        self.abundances_ = abundances
        self.n_features_in_ = X.shape[1]
        if self._rss is not None:
            self.reconstruction_error_ = float(np.sqrt(self._rss))
        else:
            self.reconstruction_error_ = float(np.linalg.norm(X - self.inverse_transform(abundances)))
        return self

    def _transform(self, X):
        if is_dask(X):
            mean, comps = self.mean_, self.components_
            return map_rows(X, lambda b: (b - mean) @ comps.T, comps.shape[0])
        return (np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_.T

    def inverse_transform(self, abundances):
        """Data from scores: ``abundances @ components_ + mean_`` (lazy when given a dask array)."""
        self._check_fitted()
        if is_dask(abundances):
            return abundances @ self.components_ + self.mean_
        return np.asarray(abundances) @ self.components_ + self.mean_


# -- NMF -----------------------------------------------------------------------------------
class NMF(UnmixingEstimator):
    """Non-negative matrix factorisation ``X ~ W H`` (scikit-learn's solver), W = abundances, H = components.

    Parameters
    ----------
    n_components : int
        Number of non-negative components.
    init : {None, "random", "nndsvd", "nndsvda", "nndsvdar"}
        Initialisation, as scikit-learn's ``NMF``.
    solver : {"cd", "mu"}
        Coordinate descent or multiplicative updates (scikit-learn).
    max_iter, tol : int, float
        Iteration limit and stopping tolerance of the solver.
    sum_to_one : bool
        If True, the fitted components are rescaled so the abundances sum to one on average
        (NMF leaves each component's scale free), then abundances are re-solved exactly on the
        simplex (non-negative, summing to one) with :func:`atomine.unmix.abundance.fcls`.
        Use it when X rows are mixtures of the components.
    subsample : int
        Dask input only: rows (drawn at random, seeded) the factorisation is fitted on;
        abundances of every row block are then solved chunk-wise against the fitted
        components, lazily, with the same solver as :meth:`transform`.
    random_state : None, int or numpy Generator
        Seed of the initialisation (ints pass straight to scikit-learn, so results equal
        ``sklearn.decomposition.NMF(random_state=seed)``).

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
    abundances_ : ndarray or dask array (n_samples, n_components)
    reconstruction_error_ : float
        Frobenius norm ``||X - W H||`` (for dask input: over the fitted subset).
    n_iter_ : int
    """

    accepts_dask = True

    def __init__(self, n_components: int = 2, *, init=None, solver: str = "cd", max_iter: int = 200,
                 tol: float = 1e-4, sum_to_one: bool = False,
                 subsample: int = 20_000, random_state=None):
        super().__init__(n_components, random_state=random_state)
        self.init = init
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.sum_to_one = sum_to_one
        self.subsample = subsample

    @staticmethod
    def _check_nonnegative(X, what="X"):
        low = float(np.min(X))
        if low < 0:
            raise InputError(f"{what} has negative values (min {low:.4g}); NMF needs non-negative data: "
                             "subtract the minimum or use PCA")

    def _fit(self, X):
        from sklearn.decomposition import NMF as _SkNMF

        if self.n_components is None:
            raise InputError("NMF needs n_components (a positive integer); estimate_n_components can suggest one")
        if self.n_components > min(X.shape):
            raise InputError(f"n_components={self.n_components} is more than min(n_samples, n_features)="
                             f"{min(X.shape)}; ask for fewer components")
        fit_data = random_rows(X, int(self.subsample), check_random_state(self.random_state)) if is_dask(X) else X
        self._check_nonnegative(fit_data)
        model = _SkNMF(n_components=self.n_components, init=self.init, solver=self.solver, max_iter=self.max_iter,
                       tol=self.tol, random_state=sklearn_seed(self.random_state))
        W = model.fit_transform(fit_data)
        self._model = model
        self.components_ = np.asarray(model.components_, dtype=np.float64)
        self.n_iter_ = int(model.n_iter_)
        if self.sum_to_one:
            self.components_ = self._rescale_for_sum_to_one(W)
        if is_dask(X):
            self.subset_reconstruction_error_ = float(model.reconstruction_err_)
            return self.components_, self._transform(X)
        return self.components_, self._solve(X) if self.sum_to_one else W

    def _rescale_for_sum_to_one(self, W: np.ndarray) -> np.ndarray:
        """Components rescaled so the fitted abundances sum to one on average.

        NMF leaves each component's scale free (``W H = (W / c) (c H)``); sum-to-one
        abundances only make sense at the scale where X rows are convex mixtures, found
        here by least squares ``W c ~ 1``.
        """
        c, *_ = np.linalg.lstsq(W, np.ones(W.shape[0]), rcond=None)
        if not np.all(c > 0):
            raise InputError("sum_to_one: the rows of X are not convex mixtures of the fitted components "
                             "(no positive scale makes abundances sum to one); fit without sum_to_one")
        return self.components_ / c[:, None]

    def fit(self, X, y=None):
        super().fit(X)
        if is_dask(X):
            self.reconstruction_error_ = self.subset_reconstruction_error_
        return self

    def _solve(self, X: np.ndarray) -> np.ndarray:
        """Abundances of in-memory rows against the fitted components (optionally on the simplex)."""
        self._check_nonnegative(X)
        if self.sum_to_one:
            from .abundance import fcls  # numba-compiled; imported only when asked for

            return fcls(X, self.components_)
        # the same coordinate-descent solve as the fit, so transform(X_fit) ~ abundances_
        return self._model.transform(X)

    def _transform(self, X):
        if is_dask(X):
            return map_rows(X, self._solve, self.components_.shape[0])
        return self._solve(np.asarray(X, dtype=np.float64))
