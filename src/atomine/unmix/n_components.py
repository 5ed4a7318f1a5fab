"""How many components? HySime and bi-cross-validated reconstruction error.

Both count the dimension of the *uncentred* signal subspace, which for data that are
linear mixtures of k endmembers (abundances summing to one or not) is k: the number to
pass to NMF, N-FINDR, VCA, k-means. (PCA of centred data needs one fewer axis.)

* ``"hysime"`` (Bioucas-Dias & Nascimento, IEEE TGRS 46, 2435, 2008): the noise of
  each feature is estimated by regressing it on all the other features (multiple
  regression), and the signal subspace is the set of eigen-directions of the
  noise-free signal correlation whose power exceeds twice their noise power, which
  minimises the mean squared error of projecting onto the subspace. Everything follows
  from the Gram matrix ``X.T @ X`` (the regression residual power of feature i is
  ``1 / inv(R)[i, i]``), so dask input costs one chunk-wise pass and memory
  ``n_features**2``. Assumes noise uncorrelated between features and
  ``n_samples > n_features``.
* ``"cv"``: bi-cross-validation of a truncated SVD (Owen & Perry, Ann. Appl. Stat. 3, 564,
  2009). Rows and features are split into folds; each held-out block ``A`` of
  ``[[A, B], [C, D]]`` is predicted from the others as ``B pinv(D_k) C`` with ``D_k`` the
  rank-k truncation of ``D``, and k minimising the summed squared prediction error wins.
  Unlike plain hold-out of samples, whose error keeps falling with k, this error rises
  again once the extra components fit noise.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._base import check_matrix, check_random_state, is_dask
from ._dask import random_rows

_METHODS = ("hysime", "cv")


@dataclass(frozen=True)
class ComponentEstimate:
    """Diagnostics of :func:`estimate_n_components`.

    Attributes
    ----------
    n_components : int
        The estimate.
    method : str
        "hysime" or "cv".
    k : ndarray (m,)
        Candidate numbers of components the criterion is given for (1, 2, ...).
    criterion : ndarray (m,)
        hysime: cumulative mean-squared-error change of keeping the first k eigen-directions
        (``sum(-P_signal + 2 P_noise)``, data units squared per sample; its minimum is the
        estimate). cv: held-out squared prediction error summed over folds, divided by
        the held-out sum of squares.
    noise_variance : ndarray (n_features,) or None
        hysime: estimated noise variance of each feature (data units squared).
    signal_power : ndarray (m,) or None
        hysime: power of the data along each eigen-direction of the signal correlation.
    noise_power : ndarray (m,) or None
        hysime: noise power along the same directions.
    """

    n_components: int
    method: str
    k: np.ndarray
    criterion: np.ndarray
    noise_variance: np.ndarray | None = None
    signal_power: np.ndarray | None = None
    noise_power: np.ndarray | None = None


def estimate_n_components(X, method: str = "hysime", max_components: int | None = None, *,
                          n_folds: int = 2, subsample: int = 20_000, random_state=None):
    """Estimate the number of components (endmembers) in X.

    Parameters
    ----------
    X : array or dask array (n_samples, n_features)
        Samples in rows (windows, pixels), features in columns (FFT bins, energy channels).
    method : {"hysime", "cv"}
        See the module docstring.
    max_components : int or None
        Largest answer allowed (default: every candidate for hysime, 20 for cv), capped by
        the data's shape.
    n_folds : int
        cv: folds of rows and of features (n_folds**2 held-out blocks).
    subsample : int
        cv: rows drawn at random (seeded) when X has more; dask input is always subsampled.
    random_state : None, int or numpy Generator
        Seed of the cv folds and subsample.

    Returns
    -------
    n_components : int
    info : ComponentEstimate
    """
    if method not in _METHODS:
        raise InputError(f"method must be one of {_METHODS}, got {method!r}")
    X = check_matrix(X, "X", min_samples=2)
    if max_components is not None and (isinstance(max_components, bool)
                                       or not isinstance(max_components, numbers.Integral) or max_components < 1):
        raise InputError(f"max_components must be a positive integer, got {max_components!r}")
    if method == "hysime":
        info = _hysime(X, max_components)
    else:
        info = _bcv(X, max_components, n_folds, subsample, check_random_state(random_state))
    return info.n_components, info


# -- HySime --------------------------------------------------------------------------------
def _gram(X) -> np.ndarray:
    """``X.T @ X`` in float64; for dask a chunk-wise reduction (memory n_features**2)."""
    if is_dask(X):
        R = np.asarray((X.astype(np.float64).T @ X.astype(np.float64)).compute())
        if not np.isfinite(R).all():
            raise InputError("X holds NaN or inf values; remove or fill them first")
        return R
    return X.T @ X


def _hysime(X, max_components: int | None) -> ComponentEstimate:
    n, L = X.shape
    if n <= L:
        raise InputError(f"hysime needs more samples than features (got {n} samples, {L} features): "
                         "each feature's noise is regressed on all others; use method='cv'")
    R = _gram(X)
    # A tiny ridge keeps noiseless (rank-deficient) data invertible; it is far below any real noise.
    ridge = 1e-12 * np.trace(R) / L
    P = np.linalg.inv(R + ridge * np.eye(L))
    # Residual of regressing feature i on all others is (P[i] / P[i, i]) @ Y; its power is 1 / P[i, i].
    A = P / np.diag(P)[:, None]
    noise_var = 1.0 / (n * np.diag(P))
    Ry = R / n
    signal_part = np.eye(L) - A  # x = Y - w = (I - A) Y
    Rx = signal_part @ Ry @ signal_part.T
    Rn = np.diag(noise_var) + (np.trace(Rx) / L * 1e-10) * np.eye(L)
    evals, E = np.linalg.eigh((Rx + Rx.T) / 2)
    E = E[:, np.argsort(evals)[::-1]]
    py = np.einsum("ij,ik,kj->j", E, Ry, E)
    pn = np.einsum("ij,ik,kj->j", E, Rn, E)
    cost = -py + 2.0 * pn
    m = L if max_components is None else min(max_components, L)
    k = int(np.count_nonzero(cost < 0))
    k = max(1, min(k, m))
    return ComponentEstimate(n_components=k, method="hysime", k=np.arange(1, m + 1),
                             criterion=np.cumsum(cost)[:m], noise_variance=noise_var,
                             signal_power=py[:m], noise_power=pn[:m])


# -- bi-cross-validation -------------------------------------------------------------------
def _bcv(X, max_components, n_folds: int, subsample: int, rng: np.random.Generator) -> ComponentEstimate:
    if isinstance(n_folds, bool) or not isinstance(n_folds, numbers.Integral) or n_folds < 2:
        raise InputError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    Z = random_rows(X, int(subsample), rng)
    n, L = Z.shape
    # every training block D must support the largest rank tried
    largest = min(n - -(-n // n_folds), L - -(-L // n_folds))
    if largest < 1:
        raise InputError(f"X of shape {X.shape} is too small for {n_folds}-fold bi-cross-validation; "
                         "need at least 2 * n_folds samples and features")
    m = min(20 if max_components is None else max_components, largest)
    row_folds = np.array_split(rng.permutation(n), n_folds)
    col_folds = np.array_split(rng.permutation(L), n_folds)
    err = np.zeros(m)
    total = 0.0
    for r_test in row_folds:
        r_train = np.setdiff1d(np.arange(n), r_test)
        for c_test in col_folds:
            c_train = np.setdiff1d(np.arange(L), c_test)
            A = Z[np.ix_(r_test, c_test)]
            B = Z[np.ix_(r_test, c_train)]
            C = Z[np.ix_(r_train, c_test)]
            D = Z[np.ix_(r_train, c_train)]
            U, s, Vt = np.linalg.svd(D, full_matrices=False)
            s = s[:m]
            BV = B @ Vt[:m].T / np.where(s > 0, s, np.inf)  # columns B v_j / s_j
            UC = U[:, :m].T @ C
            pred = np.zeros_like(A)
            for j in range(m):  # loop over ranks (<= 20), not over samples
                pred += np.outer(BV[:, j], UC[j])
                err[j] += np.sum((A - pred) ** 2)
            total += np.sum(A**2)
    err /= max(total, np.finfo(float).tiny)
    k = int(np.argmin(err)) + 1
    return ComponentEstimate(n_components=k, method="cv", k=np.arange(1, m + 1), criterion=err)
