"""The unmixing methods of :func:`atomine.workflows.unmix.unmix_spectra`, on a (pixels, channels) matrix.

Each takes the weighted, scaled data and returns abundances, endmembers, extra arrays
(credible intervals) and a JSON-able record of how they were found.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

METHODS = ("fcls", "nnls", "nmf", "mcr", "bayes")
BAYES_ITER, BAYES_BURN_IN = 1000, 500


def _denoised_vertices(est) -> np.ndarray:
    """N-FINDR's vertex pixels projected on its own PCA subspace (mean + k-1 axes): the noise off the
    signal subspace is removed, which on 'eels-si-mixed' took the spectral angles from ~3 to < 1 deg
    (measured on the preset's former, less pure fields)."""
    E, mean, axes = est.components_, est.mean_, est.axes_
    return mean + (E - mean) @ axes @ axes.T


def _nfindr(Xs, k, random_state):
    from ..unmix import NFINDR

    est = NFINDR(k, random_state=random_state).fit(Xs)
    # counts and tunnelling conductance are not negative: the clip only touches channels where a
    # denoised vertex sits within noise of zero
    return np.maximum(_denoised_vertices(est), 0.0) if k > 1 else np.maximum(est.components_, 0.0)


def _nmf(Xs, E0, random_state) -> tuple[np.ndarray, dict]:
    """NMF started from the N-FINDR endmembers, then rescaled so abundances sum to one (exact FCLS).

    NMF alone is not identifiable on these data (every pixel mixes all phases, and the interface
    phase lies near the mean of the others): from its default start it lands 10-45 deg away from
    the pure spectra; started from the simplex vertices it refines them.
    """
    import warnings

    from sklearn.decomposition import NMF as _SkNMF
    from sklearn.exceptions import ConvergenceWarning

    from ..unmix import fcls

    clipped = float(np.mean(Xs < 0))
    Xp = np.maximum(Xs, 0.0)  # NMF needs non-negative data; negatives are noise around zero
    W0 = fcls(Xp, E0)
    seed = random_state if isinstance(random_state, (int, np.integer)) else None
    model = _SkNMF(E0.shape[0], init="custom", solver="cd", max_iter=200, tol=1e-6, random_state=seed)
    with warnings.catch_warnings():  # the iteration cap is recorded (n_iter); from this start it refines, not converges
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        W = model.fit_transform(Xp, W=np.ascontiguousarray(W0), H=np.ascontiguousarray(E0))
    H = np.asarray(model.components_, dtype=np.float64)
    c, *_ = np.linalg.lstsq(W, np.ones(W.shape[0]), rcond=None)  # NMF's scale is free: fix it by sum-to-one
    if not np.all(c > 0):
        raise InputError("nmf: the pixels are not convex mixtures of the NMF components; try method='fcls' or 'mcr'")
    H = H / c[:, None]
    return H, {"init": "nfindr (denoised vertices)", "solver": "coordinate descent (scikit-learn, custom start)",
               "n_iter": int(model.n_iter_), "negative_values_clipped": clipped}


def _import(name: str):
    """MCRALS / BayesianUnmixing from atomine.unmix (public name first)."""
    import importlib

    from .. import unmix

    if hasattr(unmix, name):
        return getattr(unmix, name)
    module = {"MCRALS": "mcr", "BayesianUnmixing": "bayes"}[name]
    try:
        return getattr(importlib.import_module(f"atomine.unmix.{module}"), name)
    except (ImportError, AttributeError):
        raise InputError(f"method needs atomine.unmix.{name}, which this installation does not have yet") from None


def unmix_matrix(Xs, k, method, refs_s, random_state, inner) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """(abundances (n, k), endmembers (k, m), extra arrays, method info) in the scaled weighted space."""
    from ..unmix import fcls, nnls

    extra: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}
    r = refs_s.shape[0]
    if method in ("fcls", "nnls"):
        if r:
            E = refs_s
            info["endmembers"] = "the references (fixed)"
        else:
            E = _nfindr(Xs, k, random_state)
            info["endmembers"] = "N-FINDR vertices projected on the (k-1)-dim PCA subspace, clipped at 0"
        A = fcls(Xs, E) if method == "fcls" else nnls(Xs, E)
        info["abundances"] = "exact FCLS (>= 0, sum to one)" if method == "fcls" else "exact NNLS (>= 0)"
    elif method == "nmf":
        E, info = _nmf(Xs, _nfindr(Xs, k, random_state), random_state)
        A = fcls(np.maximum(Xs, 0.0), E)
        info["abundances"] = "exact FCLS on the NMF components"
    elif method == "mcr":
        MCRALS = _import("MCRALS")
        est = MCRALS(k, constraints=("nonneg", "closure"), references=refs_s if r else None, init="nfindr",
                     random_state=random_state, progress=inner).fit(Xs)
        E, A = np.asarray(est.components_), np.asarray(est.abundances_)
        info = {"constraints": ["nonneg", "closure"], "init": "nfindr", "fixed_references": r,
                "n_iter": int(getattr(est, "n_iter_", -1)), "lack_of_fit_percent": float(getattr(est, "lack_of_fit_", np.nan))}
    else:  # bayes
        Bayes = _import("BayesianUnmixing")
        # everything the workflow unmixes (counts, dI/dV) is non-negative in every channel
        # references (scaled like the data) are held fixed as the first r endmembers; the rest are sampled
        est = Bayes(k, n_iter=BAYES_ITER, burn_in=BAYES_BURN_IN, init="nfindr", sign=True,
                    references=refs_s if r else None, random_state=random_state, progress=inner).fit(Xs)
        E, A = np.asarray(est.components_), np.asarray(est.abundances_)
        for name in ("abundance_lo_", "abundance_hi_", "components_lo_", "components_hi_"):
            extra[name] = np.asarray(getattr(est, name))
        info = {"n_iter": BAYES_ITER, "burn_in": BAYES_BURN_IN, "init": "nfindr", "credible": 0.95,
                "rhat": float(getattr(est, "rhat_", np.nan)), "noise_model": str(getattr(est, "noise_model_", "")),
                "fixed_references": r}
    return np.asarray(A, dtype=np.float64), np.asarray(E, dtype=np.float64), extra, info
