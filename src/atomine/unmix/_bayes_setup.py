"""Set-up of :class:`atomine.unmix.bayes.BayesianUnmixing`: parameter checks, starting points and the working space.

The sampler works in a scaled (optionally DCT-rotated) channel space where the noise is
modelled, on an affine (K-1)-dim subspace (the data's principal subspace, or one built
through known reference spectra); endmembers start from N-FINDR / VCA vertices shrunk
until they meet the sign constraints.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.fft
from scipy.optimize import linear_sum_assignment

from ..errors import InputError
from ._base import check_matrix
from ._projection import _exact_axes, pca_projection
from .nfindr import NFINDR
from .vca import VCA

_CORRELATED = 0.1  # |lag-1 autocorrelation| of the scaled residuals above which "auto" models correlated noise


def _count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_sign(sign, X):
    """Per-channel sign constraint (m,) in {-1, 0, +1} on the endmember spectra."""
    m = X.shape[1]
    if isinstance(sign, str):
        if sign != "auto":
            raise InputError(f"sign must be 'auto', True, False or an array of -1/0/+1 per channel, got {sign!r}")
        # the sign that (nearly) every sample shares in a channel; 0 (free) where noise straddles zero
        lo, hi = np.quantile(X, [0.01, 0.99], axis=0)
        return np.where(lo >= 0, 1.0, np.where(hi <= 0, -1.0, 0.0))
    if sign is True or sign is False or sign is None:
        return np.full(m, 1.0 if sign else 0.0)
    s = np.asarray(sign, dtype=np.float64)
    if s.shape != (m,) or not np.isin(s, (-1.0, 0.0, 1.0)).all():
        raise InputError(f"sign must hold -1, 0 or +1 for each of the {m} channels, got shape {s.shape}")
    return s


def _initial_endmembers(X, k, init, rng):
    if isinstance(init, str):
        if init == "nfindr":
            return NFINDR(k, random_state=rng).fit(X).components_
        if init == "vca":
            return VCA(k, random_state=rng).fit(X).components_
        raise InputError(f"init must be 'nfindr', 'vca' or a ({k}, n_features) array, got {init!r}")
    E = check_matrix(init, "init endmembers", allow_dask=False)
    if E.shape != (k, X.shape[1]):
        raise InputError(f"init endmembers must have shape ({k}, {X.shape[1]}), got {E.shape}")
    return E


def _check_references(references, k, m):
    """Known spectra (r, m), 1 <= r <= k, held fixed as the first r endmembers; None when not given."""
    if references is None:
        return None
    if np.ndim(references) == 1:  # one spectrum
        references = np.reshape(references, (1, -1))
    R = check_matrix(references, "references", allow_dask=False)
    if R.shape[1] != m:
        raise InputError(f"references have {R.shape[1]} channels but the data have {m}; give one value per channel")
    if R.shape[0] > k:
        raise InputError(f"{R.shape[0]} references but n_components={k}; give n_components >= {R.shape[0]}")
    return R


def _free_starts(Ew, Rw, from_init_array):
    """Starting points of the free endmembers: the initial vertices that no reference claims.

    A user's init array gives them as its last k - r rows; N-FINDR / VCA vertices are matched to
    the references by distance (Hungarian assignment) and the unmatched ones start the free endmembers.
    """
    r = Rw.shape[0]
    if from_init_array:
        return Ew[r:]
    cost = np.linalg.norm(Rw[:, None, :] - Ew[None, :, :], axis=2)
    _, taken = linear_sum_assignment(cost)
    return Ew[np.setdiff1d(np.arange(Ew.shape[0]), taken)]


# ----------------------------------------------------------------------------- working space
class _Space:
    """Linear map from channels to the working space: y = DCT(x / scale) or y = x / scale."""

    def __init__(self, scale, dct):
        self.scale, self.dct = scale, dct

    def forward(self, X):
        Y = X / self.scale
        return scipy.fft.dct(Y, type=2, norm="ortho", axis=-1) if self.dct else Y

    def inverse(self, Y):
        X = scipy.fft.idct(Y, type=2, norm="ortho", axis=-1) if self.dct else Y
        return X * self.scale

    def channel_variance(self, s2):
        """Per-channel noise variance of white noise with variances ``s2`` in the working space."""
        if not self.dct:
            return s2 * self.scale ** 2
        basis = scipy.fft.idct(np.eye(s2.size), type=2, norm="ortho", axis=-1)  # row f: DCT vector f
        return (s2 @ basis ** 2) * self.scale ** 2


def _noise_space(X, k, noise):
    """Per-channel noise levels from the residual off the (k-1)-dim PCA subspace, and the noise model."""
    n, m = X.shape
    mean, axes = pca_projection(X, k - 1)
    Xc = X - mean
    R = Xc - (Xc @ axes) @ axes.T
    level = np.sqrt((R ** 2).sum(axis=0) / max(n - k, 1))
    floor = 1e-9 * max(float(level.max()), float(np.abs(X).max()), 1e-300)
    level = np.maximum(level, floor)  # noiseless channels: keep the scaling finite
    Rs = R / level
    if noise == "auto":
        tot = float((Rs ** 2).sum())
        rho = float((Rs[:, :-1] * Rs[:, 1:]).sum()) / tot if tot > 0 and m > 2 else 0.0
        noise = "correlated" if abs(rho) > _CORRELATED else "channel"
    return _Space(level, noise == "correlated"), noise


def _reference_subspace(Y, Rw, k):
    """Affine (k-1)-dim subspace through the references: mean and orthonormal axes (m, k-1), working space.

    The references need not lie in the data's PCA subspace, so the subspace is built to contain
    them exactly: its origin is their mean, its first r-1 axes span their differences, and the
    k-r others are the leading (uncentred) principal axes of the data about that origin once
    the reference directions are removed; noiseless mixtures of the references and k-r other
    spectra lie in it exactly. Every conditional of the sampler is then exact in the full space.
    """
    r, m = Rw.shape
    mean_w = Rw.mean(axis=0)
    Q = np.zeros((m, 0))
    if r > 1:
        _, sv, vt = np.linalg.svd(Rw - mean_w, full_matrices=False)
        if not sv[r - 2] > 1e-6 * max(float(np.abs(Rw).max()), 1e-300) * np.sqrt(m):
            raise InputError("the references are affinely dependent (one is a mixture of the others), so their "
                             "abundances are not identifiable; drop the dependent reference")
        Q = vt[:r - 1].T
    if r == k:
        return mean_w, np.ascontiguousarray(Q)
    Yc = Y - mean_w
    off = Yc - (Yc @ Q) @ Q.T
    V, _ = np.linalg.qr(np.hstack([Q, _exact_axes(off, np.zeros(m), k - r)]))
    return mean_w, np.ascontiguousarray(V)


def _sign_bounds(sign, mean_o):
    """Constrained channels and their lower bounds: 0, or the mean's own value where noise left it outside."""
    rows = np.flatnonzero(sign != 0)
    sgn = sign[rows]
    # a noisy mean can sit just outside a constraint; never demand more of an endmember than of the mean
    lower = np.minimum(0.0, sgn * mean_o[rows])
    return rows, sgn, lower


def _feasible_start(t0, P_o, mean_o, rows, sgn, lower):
    """Shrink each initial coordinate vector towards the mean (t = 0) until it meets the sign constraints."""
    t = t0.copy()
    for k in range(t.shape[0]):
        v = sgn * (P_o[rows] @ t[k])
        slack = sgn * mean_o[rows] - lower  # >= 0: t = 0 is feasible
        bad = v < -slack
        if bad.any():
            t[k] *= 0.999 * float(np.min(slack[bad] / -v[bad]))
    return t
