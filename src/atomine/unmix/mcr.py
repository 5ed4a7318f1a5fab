"""MCR-ALS: multivariate curve resolution by alternating least squares with exact constrained half-steps.

The data X (n_samples, n_features) are modelled as X ~ C S, with C (n_samples, k) the
abundances (concentrations) and S (k, n_features) the component spectra. Starting
from initial spectra S_0, the fit alternates

* C-step: C = argmin ||X - C S|| with S fixed, under the C constraints;
* S-step: S = argmin ||X - C S|| with C fixed, under the S constraints.

Each half-step is solved *exactly*: non-negativity (with or without closure) by the
numba active-set solver of :mod:`atomine.unmix.abundance` (FCLS / NNLS), closure alone
and no constraint by the closed forms of ``sum_to_one_ls`` / ``ucls``. The S-step is the
same problem transposed: every channel's column of X is fitted by the columns of C.
Because no step can increase the residual, the lack of fit never rises from one
iteration to the next; clipping negatives to zero after an unconstrained solve, as
many MCR codes do, gives neither this guarantee nor a least-squares answer.
How each constraint enters is documented in :mod:`atomine.unmix.constraints`.

Channel weights w (m,) fit X diag(w) ~ C (S diag(w)); for Poisson counts
w = 1/sqrt(mean spectrum) equalises the noise across channels (Keenan & Kotula 2004).
Abundances keep their meaning since only channels are weighted; S is returned on the
unweighted axis.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from ..errors import InputError
from ._base import UnmixingEstimator, check_matrix, check_n_components
from .abundance import fcls, solve_gram
from .constraints import Constraint, Plan, Selectivity, resolve
from .constraints import FixedSpectra as _FixedSpectra
from .n_components import estimate_n_components
from .nfindr import NFINDR
from .vca import VCA


# ----------------------------------------------------------------------------- half-steps
# Both half-steps are solved in Gram form: for X ~ A E (rows of A unknown) only G = E E' (k x k)
# and B = X E' (n x k) enter, so one product with X per half-step is the whole cost, and the same
# products give the lack of fit without forming X - C S.
def _gram_solve(G, B, nonneg: bool, closure: float | None):
    """Rows a of ``min 1/2 a'Ga - b'a`` (b = rows of B) under a >= 0 and/or sum(a) = closure."""
    if closure is not None:
        # sum(a) = t  <=>  a = t u with sum(u) = 1 and E scaled by t: G -> t^2 G, B -> t B
        return closure * _unit_closure(closure ** 2 * G, closure * B, nonneg)
    if nonneg:
        return _exact_active_set(G, B, sum_to_one=False)
    return B @ np.linalg.pinv(G)  # minimum-norm least squares, as abundance.ucls


def _unit_closure(G, B, nonneg: bool):
    if nonneg:
        return _exact_active_set(G, B, sum_to_one=True)  # FCLS
    # sum-to-one least squares (closed form of abundance.sum_to_one_ls): move the unconstrained
    # optimum onto sum(a) = 1 along G^-1 1, the direction that costs least in the G metric
    Gi = np.linalg.pinv(G)
    g1 = Gi.sum(axis=1)
    denom = g1.sum()
    if not np.isfinite(denom) or abs(denom) < 1e-300:
        raise InputError("the components are degenerate (their Gram matrix is singular); ask for fewer components")
    A = B @ Gi
    return A - np.outer(A.sum(axis=1) - 1.0, g1 / denom)


def _exact_active_set(G, B, sum_to_one: bool):
    """The exact active-set solver of :mod:`atomine.unmix.abundance` on a precomputed Gram system."""
    return solve_gram(G, B, sum_to_one, stacklevel=4)


def _c_step(XSt, G, plan: Plan):
    """Abundances C (n, k) for spectra S given XSt = X S' and G = S S', under the C constraints.

    Selectivity: samples sharing one pattern of absent components are solved together on the
    spectra of the present ones; the absent abundances are exactly 0.
    """
    if plan.absent is None or not plan.absent.any():
        return _gram_solve(G, XSt, plan.nonneg_c, plan.closure)
    C = np.zeros_like(XSt)
    patterns, group = np.unique(plan.absent, axis=0, return_inverse=True)
    group = group.ravel()
    for g, pattern in enumerate(patterns):  # at most 2**k patterns, not a loop over pixels
        rows = np.flatnonzero(group == g)
        p = np.flatnonzero(~pattern)
        C[np.ix_(rows, p)] = _gram_solve(G[np.ix_(p, p)], XSt[np.ix_(rows, p)], plan.nonneg_c, plan.closure)
    return C


def _s_step(XtC, CtC, S, plan: Plan):
    """Spectra S (k, m) for abundances C given XtC = X' C and CtC = C' C, under the S constraints.

    Per channel j the column X[:, j] is fitted by the columns of C: the abundance problem
    transposed, with C' as the "endmembers". Fixed rows are copied from ``S``; the free ones
    fit what the fixed ones leave, X - C_f S_f, whose products follow from XtC and CtC.
    """
    k = CtC.shape[0]
    S = S.copy()
    free = np.arange(k)
    B = XtC
    if plan.fixed_index is not None:
        fx = plan.fixed_index
        free = np.setdiff1d(free, fx)
        if free.size == 0:
            return S
        B = XtC[:, free] - S[fx].T @ CtC[np.ix_(fx, free)]
    S[free] = _gram_solve(CtC[np.ix_(free, free)], B, plan.nonneg_s, None).T
    return S


def _lack_of_fit(x_power, XSt, G, C) -> float:
    """100 sqrt(sum (X - C S)^2 / sum X^2), from ||X||^2 - 2 tr(C' X S') + tr(C'C S S')."""
    e2 = x_power - 2.0 * np.einsum("ij,ij->", C, XSt) + np.einsum("ij,ij->", C.T @ C, G)
    return float(100.0 * np.sqrt(max(e2, 0.0) / x_power))


def _average_purest(X, S0, fraction: float) -> np.ndarray:
    """Each row of S0 replaced by the mean of the samples with the largest FCLS abundance of it."""
    n, k = X.shape[0], S0.shape[0]
    count = int(min(max(10, round(fraction * n)), max(1, n // (2 * k))))
    C = fcls(X, S0)
    return np.stack([X[np.argpartition(-C[:, j], count - 1)[:count]].mean(axis=0) for j in range(k)])


# ----------------------------------------------------------------------------- estimator
class MCRALS(UnmixingEstimator):
    """Multivariate curve resolution by alternating least squares with pluggable constraints.

    Parameters
    ----------
    n_components : int or None
        Number of components k. None: the rows of an array ``init``, else the HySime
        estimate (:func:`atomine.unmix.estimate_n_components`).
    constraints : sequence of Constraint or str
        Default ``("nonneg", "closure")``: abundances on the simplex and non-negative spectra.
        Shortcuts ``"nonneg"``, ``"nonneg_C"``, ``"nonneg_S"``, ``"closure"``; instances of
        :class:`~atomine.unmix.constraints.NonNegative`, ``Closure``, ``FixedSpectra``,
        ``Selectivity``. An empty tuple gives unconstrained ALS.
    references : array (r, n_features), optional
        Known spectra of the first r components, held fixed (``FixedSpectra(range(r), references)``),
        in the units of X.
    selectivity : bool array (n_samples, n_components), optional
        True where a component is known to be absent (``Selectivity(selectivity)``).
    init : {"nfindr", "vca"} or array (k, n_features)
        Initial spectra: N-FINDR or VCA endmembers of X, or given spectra. Fixed
        references replace the extracted endmembers closest to them in spectral angle.
    init_average : float
        With "nfindr"/"vca": each extracted endmember is replaced by the mean of the
        ``init_average`` fraction of samples (at least 10) with the largest FCLS abundance of it.
        Why: those methods pick the single most extreme samples, whose noise carries them outside
        the true simplex, and ALS under non-negativity keeps any simplex that holds every sample,
        so the start's excess stays ('eels-si-mixed' seeds 0/1: abundance slope 0.87/0.83, RMSE
        0.062/0.075); averaging the purest samples starts inside and ALS grows it only as far as
        the noisy samples push it (slope 0.93/0.93, RMSE 0.032/0.032). 0 keeps the extracted samples.
    max_iter : int
        Maximum number of ALS iterations (one C-step and one S-step each).
    tol : float
        Stop when the lack of fit changes by less than ``tol`` relative to its previous value.
    weights : array (n_features,), optional
        Positive channel weights; the fit minimises ||(X - C S) diag(weights)||.
    random_state : None, int or numpy Generator
        Seed of the initial endmember extraction.
    progress : callable(done, total), optional
        Called after each iteration with (iteration, max_iter).

    Attributes
    ----------
    components_ : ndarray (k, n_features)
        Resolved spectra, in the units of X (unweighted axis).
    abundances_ : ndarray (n_samples, k)
        Abundances of the fitted samples (exact optimum for ``components_`` under the constraints).
    lack_of_fit_ : float
        Final lack of fit, % (100 sqrt(sum E^2 / sum X^2)), of the weighted problem when weighted.
    history_ : ndarray (n_iter_ + 1,)
        Lack of fit (%) of the initial guess and after every iteration; never increasing.
    n_iter_ : int
    converged_ : bool
    """

    accepts_dask = False

    def __init__(self, n_components: int | None = None, *, constraints=("nonneg", "closure"), references=None,
                 selectivity=None, init="nfindr", init_average: float = 0.01, max_iter: int = 300,
                 tol: float = 1e-7, weights=None, random_state=None, progress=None):
        super().__init__(n_components, random_state=random_state)
        self.constraints = constraints
        self.references = references
        self.selectivity = selectivity
        self.init = init
        self.init_average = init_average
        self.max_iter = max_iter
        self.tol = tol
        self.weights = weights
        self.progress = progress

    # -- parameter checks -------------------------------------------------------------------
    def _check_params(self, X):
        n, m = X.shape
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 0:
            raise InputError(f"max_iter must be a non-negative integer, got {self.max_iter!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) or not self.tol >= 0:
            raise InputError(f"tol must be a non-negative number, got {self.tol!r}")
        if self.progress is not None and not callable(self.progress):
            raise InputError("progress must be a callable(done, total) or None")
        avg = self.init_average
        if isinstance(avg, bool) or not isinstance(avg, numbers.Real) or not 0 <= avg < 1:
            raise InputError(f"init_average must be a fraction in [0, 1), got {avg!r}")
        init_array = None
        if isinstance(self.init, str):
            if self.init not in ("nfindr", "vca"):
                raise InputError(f"init must be 'nfindr', 'vca' or an array of spectra, got {self.init!r}")
        else:
            init_array = check_matrix(self.init, "init spectra", allow_dask=False)
            if init_array.shape[1] != m:
                raise InputError(f"init spectra have {init_array.shape[1]} channels but X has {m}")
        k = self.n_components
        if k is None:
            k = init_array.shape[0] if init_array is not None else estimate_n_components(X)[0]
        k = check_n_components(k, n, m)
        if init_array is not None and init_array.shape[0] != k:
            raise InputError(f"init has {init_array.shape[0]} spectra but n_components={k}")
        given = self.constraints
        constraints = [given] if isinstance(given, (str, Constraint)) else list(given or ())
        if self.references is not None:
            refs = check_matrix(np.atleast_2d(self.references), "references", allow_dask=False)
            if refs.shape[1] != m:
                raise InputError(f"references have {refs.shape[1]} channels but X has {m}; "
                                 "give them on the same energy/bias axis as X")
            if refs.shape[0] > k:
                raise InputError(f"{refs.shape[0]} references given for only {k} components")
            constraints.append(_FixedSpectra(np.arange(refs.shape[0]), refs))
        if self.selectivity is not None:
            constraints.append(Selectivity(self.selectivity))
        plan = resolve(constraints, n, k, m)
        w = None
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape != (m,) or not np.isfinite(w).all() or (w <= 0).any():
                raise InputError(f"weights must be {m} positive finite numbers (one per channel), "
                                 f"got shape {w.shape}")
        if plan.nonneg_s and plan.fixed_spectra is not None and (plan.fixed_spectra < 0).any():
            raise InputError("reference spectra have negative values but the spectra are constrained non-negative; "
                             "drop 'nonneg' on S or fix the references")
        return k, plan, w, init_array

    def _initial_spectra(self, X, k, plan: Plan, init_array):
        if init_array is not None:
            S0 = init_array.copy()
        else:
            est = NFINDR if self.init == "nfindr" else VCA
            S0 = est(k, random_state=self.random_state).fit(X).components_.copy()
            if self.init_average > 0:
                S0 = _average_purest(X, S0, self.init_average)
            if plan.fixed_index is not None:
                S0 = _place_references(S0, plan)
        if plan.fixed_index is not None:
            S0[plan.fixed_index] = plan.fixed_spectra
        return S0

    # -- fit --------------------------------------------------------------------------------
    def _fit(self, X):
        k, plan, w, init_array = self._check_params(X)
        S = self._initial_spectra(X, k, plan, init_array)
        fixed = plan.fixed_spectra
        if w is not None:  # everything below runs on the weighted channel axis
            X, S = X * w, S * w
            if plan.fixed_spectra is not None:
                plan.fixed_spectra = plan.fixed_spectra * w
        x_power = float(np.einsum("ij,ij->", X, X))
        if x_power == 0:
            raise InputError("X is all zeros; there is nothing to resolve")
        # the products per iteration are thin (n x m times m x k): BLAS threads gain little there and
        # fight the numba (OpenMP) threads of the active-set solver for the cores, as in scikit-learn's
        # KMeans; one BLAS thread makes the loop several times faster on a busy machine
        with threadpool_limits(limits=1, user_api="blas"):
            C, S, history, it, converged = self._als(X, S, plan, x_power)
        if not converged and self.max_iter > 0:
            warnings.warn(f"MCR-ALS did not converge in {self.max_iter} iterations (lack of fit {history[-1]:.4g} %); "
                          "raise max_iter or tol", RuntimeWarning, stacklevel=3)
        self.n_iter_, self.converged_ = it, converged
        self.history_ = np.asarray(history)
        self.lack_of_fit_ = float(history[-1])
        self.n_components_ = k
        self.weights_ = w
        self._c_rules = (plan.nonneg_c, plan.closure)
        if w is not None:
            S = S / w
            if plan.fixed_index is not None:  # exactly the references given, not ref * w / w
                S[plan.fixed_index] = fixed
        return S, C

    def _als(self, X, S, plan: Plan, x_power: float):
        """The alternation: C-step for the initial S, then (S-step, C-step) until the lack of fit settles."""
        G = S @ S.T
        XSt = X @ S.T
        C = _c_step(XSt, G, plan)
        history = [_lack_of_fit(x_power, XSt, G, C)]
        converged = False
        it = 0
        while it < self.max_iter:
            it += 1
            S = _s_step(X.T @ C, C.T @ C, S, plan)
            G, XSt = S @ S.T, X @ S.T
            C = _c_step(XSt, G, plan)
            history.append(_lack_of_fit(x_power, XSt, G, C))
            if self.progress is not None:
                self.progress(it, self.max_iter)
            prev, cur = history[-2], history[-1]
            if abs(prev - cur) <= self.tol * prev or cur == 0.0:
                converged = True
                break
        return C, S, history, it, converged

    def _transform(self, X):
        """Abundances of new samples for the fitted spectra under the C constraints (no selectivity)."""
        plan = Plan(nonneg_c=self._c_rules[0], closure=self._c_rules[1])  # selectivity was for the fitted pixels
        S = self.components_
        if self.weights_ is not None:
            X, S = X * self.weights_, S * self.weights_
        return _c_step(X @ S.T, S @ S.T, plan)

    def __repr__(self) -> str:
        return (f"MCRALS(n_components={self.n_components!r}, constraints={self.constraints!r}, "
                f"init={self.init if isinstance(self.init, str) else 'array'!r}, max_iter={self.max_iter!r})")


def _place_references(S0, plan: Plan):
    """Order extracted endmembers so that the ones most like the references sit at the fixed rows.

    The extracted spectra matched (Hungarian, on spectral angle) to the references are dropped;
    the others fill the free rows, so a reference never duplicates a free starting spectrum.
    """
    k = S0.shape[0]
    refs = plan.fixed_spectra
    cos = (refs @ S0.T) / np.outer(np.linalg.norm(refs, axis=1), np.linalg.norm(S0, axis=1)).clip(1e-300)
    ref_rows, ext_rows = linear_sum_assignment(-cos)  # maximise similarity = minimise angle
    out = np.empty_like(S0)
    out[plan.fixed_index[ref_rows]] = S0[ext_rows]
    free = np.setdiff1d(np.arange(k), plan.fixed_index)
    out[free] = S0[np.setdiff1d(np.arange(k), ext_rows)]
    return out


__all__ = ["MCRALS"]
