"""ATGP: automatic target generation by successive orthogonal projections.

The first target is the sample of largest norm; each next target is the sample
whose residual after projecting out the span of the targets found so far is
largest. For data that are non-negative mixtures of endmembers with pure samples
present, every target is a pure sample: a norm is convex, so its maximum over the
convex hull of the data sits at a vertex (Ren & Chang 2003, IEEE TAES 39, 1232).

Residual norms are updated incrementally with a Gram-Schmidt basis, so finding k
targets costs k passes of one matrix-vector product over the data.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._base import UnmixingEstimator, check_matrix, check_n_components
from .abundance import METHODS, abundances


def atgp(X, n_components: int) -> np.ndarray:
    """Indices of ``n_components`` target samples found by ATGP.

    Parameters
    ----------
    X : array (n_samples, n_features)
        Data, one sample (pixel, window) per row.
    n_components : int
        Number of targets.

    Returns
    -------
    indices : ndarray (n_components,) of int
        Row indices of the targets in the order found.
    """
    X = check_matrix(X, "X", allow_dask=False)
    k = check_n_components(n_components, X.shape[0])
    residual = np.einsum("ij,ij->i", X, X)  # squared norm of each sample's residual
    scale = residual.max() if residual.size else 0.0
    basis = np.empty((k, X.shape[1]))
    indices = np.empty(k, dtype=np.int64)
    for t in range(k):
        i = int(np.argmax(residual))
        # squared residuals carry rounding of ~eps * scale; below 1e-12 * scale nothing new is left
        if t > 0 and residual[i] <= 1e-12 * scale:
            raise InputError(f"the data span only {t} independent directions; ask for at most {t} components")
        indices[t] = i
        # orthonormalise the new target against the basis (twice, for numerical orthogonality)
        v = X[i].copy()
        for _ in range(2):
            v -= basis[:t].T @ (basis[:t] @ v)
        norm = np.linalg.norm(v)
        if t == 0 and norm == 0.0:
            raise InputError("X is all zeros; ATGP needs samples with non-zero norm")
        if norm <= 1e-6 * np.linalg.norm(X[i]):
            raise InputError(f"the data span only {t} independent directions; ask for at most {t} components")
        basis[t] = v / norm
        residual -= (X @ basis[t]) ** 2
        residual[indices[: t + 1]] = -np.inf  # a target is never picked twice
    return indices


class ATGP(UnmixingEstimator):
    """ATGP endmember extraction as an estimator.

    Parameters
    ----------
    n_components : int
        Number of endmembers (targets).
    abundance : {"fcls", "nnls", "ucls", "sto"}
        Solver for ``abundances_`` and :meth:`transform`.
    random_state : ignored
        ATGP is deterministic; kept for a uniform interface.

    Attributes
    ----------
    indices_ : ndarray (n_components,)
        Rows of X chosen as endmembers.
    components_ : ndarray (n_components, n_features)
        Those rows' spectra.
    abundances_ : ndarray (n_samples, n_components)
    """

    def __init__(self, n_components: int, *, abundance: str = "fcls", random_state=None):
        super().__init__(n_components, random_state=random_state)
        self.abundance = abundance

    def _fit(self, X):
        if self.abundance not in METHODS:
            raise InputError(f"unknown abundance method {self.abundance!r}; choose one of {', '.join(METHODS)}")
        self.indices_ = atgp(X, self.n_components)
        E = X[self.indices_].copy()
        return E, abundances(X, E, self.abundance)

    def _transform(self, X):
        return abundances(X, self.components_, self.abundance)


__all__ = ["atgp", "ATGP"]
