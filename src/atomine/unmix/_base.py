"""What every unmixing estimator shares: input checks and the scikit-learn-style interface.

An estimator learns ``components_`` (n_components, n_features) from data X
(n_samples, n_features) and gives per-sample ``abundances_`` (n_samples, n_components).
Subclasses implement ``_fit(X) -> (components, abundances)`` and, when abundances of new
data are not a plain least-squares projection, ``_transform(X)``.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InputError


def is_dask(X) -> bool:
    """True for a dask array (duck-typed, so dask stays an optional import here)."""
    return hasattr(X, "dask") and hasattr(X, "compute") and not isinstance(X, np.ndarray)


def check_matrix(X, what: str = "X", *, min_samples: int = 1, allow_dask: bool = True, dtype=np.float64,
                 check_finite: bool = True):
    """A 2-D finite float matrix (numpy, or dask when ``allow_dask``), else one clear InputError.

    Dask arrays are checked for shape and dtype only (a NaN scan would read everything);
    algorithms check the blocks they touch. ``check_finite=False`` leaves the NaN scan to a
    caller that finds NaN more cheaply in a smaller product (NaN and inf propagate into X @ E').
    """
    if is_dask(X):
        if not allow_dask:
            raise InputError(f"{what}: this method needs an in-memory array; call .compute() on a subset first")
        if X.ndim != 2:
            raise InputError(f"{what} must be 2-D (n_samples, n_features), got shape {X.shape}")
        if np.dtype(X.dtype).kind not in "biuf":
            raise InputError(f"{what} has non-numeric dtype {X.dtype}")
        if X.shape[0] < min_samples or X.shape[1] < 1:
            raise InputError(f"{what} has shape {X.shape}; need at least {min_samples} samples and 1 feature")
        return X
    try:
        X = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise InputError(f"{what} is not a numeric array ({exc})") from None
    if X.ndim != 2:
        raise InputError(f"{what} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise InputError(f"{what} has non-numeric dtype {X.dtype}")
    if X.shape[0] < min_samples or X.shape[1] < 1:
        raise InputError(f"{what} has shape {X.shape}; need at least {min_samples} samples and 1 feature")
    X = X.astype(dtype, copy=False)
    if check_finite and not np.isfinite(X).all():
        raise InputError(f"{what} holds {int((~np.isfinite(X)).sum())} NaN or inf values; remove or fill them first")
    return X


def check_n_components(n_components, n_samples: int, n_features: int | None = None, *,
                       what: str = "n_components", allow_none: bool = False) -> int | None:
    """A positive integer no larger than the number of samples (and features, when given)."""
    if n_components is None and allow_none:
        return None
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise InputError(f"{what} must be a positive integer, got {n_components!r}")
    if n_components > n_samples:
        raise InputError(f"{what}={n_components} is more than the {n_samples} samples (windows/pixels) given")
    if n_features is not None and n_components > n_features + 1:
        raise InputError(f"{what}={n_components} is more than the {n_features} features + 1")
    return int(n_components)


def check_random_state(random_state) -> np.random.Generator:
    """A numpy Generator from None, an int seed, or a Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)
                                and random_state >= 0):
        return np.random.default_rng(random_state)
    raise InputError(f"random_state must be None, a non-negative int or a numpy Generator, got {random_state!r}")


class UnmixingEstimator:
    """Base class: ``fit``, ``transform``, ``fit_transform``, ``inverse_transform``.

    Attributes (after ``fit``)
    --------------------------
    components_ : ndarray (n_components, n_features)
        Endmembers / basis vectors.
    abundances_ : ndarray (n_samples, n_components)
        Abundances of the fitted samples.
    reconstruction_error_ : float
        Frobenius norm of X - abundances_ @ components_ over the fitted data.
    """

    #: whether fit accepts dask arrays (otherwise they are refused with a clear message)
    accepts_dask = False

    def __init__(self, n_components: int | None = None, *, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    # -- to implement -------------------------------------------------------------------
    def _fit(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, X):
        """Default: unconstrained least squares on the learned components."""
        coef, *_ = np.linalg.lstsq(self.components_.T, np.asarray(X, dtype=np.float64).T, rcond=None)
        return coef.T

    # -- public interface -----------------------------------------------------------------
    def fit(self, X, y=None):
        X = check_matrix(X, "X", allow_dask=self.accepts_dask)
        check_n_components(self.n_components, X.shape[0], allow_none=True)
        components, abundances = self._fit(X)
        self.components_ = np.asarray(components)
        self.abundances_ = abundances
        self.n_features_in_ = X.shape[1]
        if not is_dask(X):
            self.reconstruction_error_ = float(np.linalg.norm(X - np.asarray(abundances) @ self.components_))
        return self

    def transform(self, X):
        self._check_fitted()
        X = check_matrix(X, "X", allow_dask=self.accepts_dask)
        if X.shape[1] != self.n_features_in_:
            raise InputError(f"X has {X.shape[1]} features; the estimator was fitted on {self.n_features_in_}")
        return self._transform(X)

    def fit_transform(self, X, y=None):
        return self.fit(X).abundances_

    def inverse_transform(self, abundances):
        self._check_fitted()
        return np.asarray(abundances) @ self.components_

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise InputError(f"{type(self).__name__} is not fitted yet; call fit(X) first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_components={self.n_components!r}, random_state={self.random_state!r})"
