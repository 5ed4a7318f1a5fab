"""Fit lattice-model interactions to an image's configuration histogram by statistical distance.

The image gives a histogram p of local dopant configurations (a :class:`Descriptor`).
A Monte Carlo reference ensemble at theta0 predicts q(theta) near theta0 by reweighting
(:mod:`._reweight`); the fit minimises s^2 = arccos(sum sqrt(p q))^2 in three stages:

1. Gauss-Newton steps from the linear response dq/dtheta = -Cov(r, h) at the reference,
   each followed by a new reference run (far from the answer reweighting cannot reach:
   the weights of whole snapshots collapse within about one standard error);
2. L-BFGS on the reweighted s^2 with its analytic gradient, inside a box where the
   reweighting stays trustworthy (effective sample size >= ``ess_min`` of the snapshots),
   re-referencing automatically when the optimum leaves it;
3. uncertainties: the sandwich (Fisher) covariance of the minimum-distance estimator with
   the histogram covariance of an image-sized window taken from the model itself, which
   is what makes overlapping neighbourhoods count correctly (the effective sample size
   n_eff = N / design effect is reported), and optionally a parametric bootstrap.

Parameters follow the atomine convention H = sum_m J_m sum_<ij>_m s_i s_j - h sum_i f_i s_i
(s = +1 dopant, -1 host) in units of k_B T_f.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.optimize import minimize

from ..errors import InputError
from ._field_bins import FieldBinnedDescriptor
from ._reweight import Ensemble, distance_and_gradient, pooling_matrix
from .fit_result import FitResult
from .configurations import Descriptor, descriptor as make_descriptor, pool_classes
from .lattice import Lattice, pair_sums
from .montecarlo import sample

MODELS = {"j1": 1, "j1j2": 2, "j1j2j3": 3}
MIN_COMPLETE_SITES = 64
CONVERGED_STEP = 0.05  # Gauss-Newton step, in trust-box units (about one standard error), that counts as converged


def parse_model(model: str) -> tuple[int, bool, tuple[str, ...]]:
    """(number of shells, has site field, parameter names) of a model name like ``j1j2+field``."""
    if not isinstance(model, str):
        raise InputError(f"model must be a name such as 'j1j2', got {model!r}")
    name = model.lower().replace(" ", "")
    has_field = name.endswith("+field")
    base = name[: -len("+field")] if has_field else name
    if base not in MODELS:
        raise InputError(f"unknown model {model!r}; use one of {', '.join(MODELS)} (optionally with '+field')")
    n = MODELS[base]
    names = tuple(f"J{m}" for m in range(1, n + 1)) + (("h",) if has_field else ())
    return n, has_field, names


@dataclass
class _Problem:
    """Everything fixed during one fit: the image histogram, the model and the MC set-up."""

    counts: np.ndarray
    desc: Descriptor
    kind: str
    n_shells: int
    has_field: bool
    start: np.ndarray
    periodic: bool
    site_field: np.ndarray | None
    n_chains: int
    n_snapshots: int
    thin: int
    n_equilibrate: int
    rng: np.random.Generator
    progress: Callable | None = None

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def _statistics(snaps: np.ndarray, prob: _Problem) -> np.ndarray:
    r = pair_sums(snaps, prob.kind, prob.n_shells, periodic=prob.periodic)
    if prob.has_field:
        f = np.sum(snaps * prob.site_field, axis=(-2, -1))
        r = np.concatenate([r, -f[:, None]], axis=1)
    return r


def _couplings(theta: np.ndarray, prob: _Problem):
    j = theta[: prob.n_shells]
    h = float(theta[prob.n_shells]) if prob.has_field else 0.0
    return j, h


def _reference(theta: np.ndarray, prob: _Problem) -> Ensemble:
    """A Monte Carlo reference ensemble at theta: snapshots' statistics and histograms."""
    j, h = _couplings(theta, prob)
    res = sample(prob.start, j, kind=prob.kind, field=h, site_field=prob.site_field if prob.has_field else None,
                 periodic=prob.periodic, n_chains=prob.n_chains, n_sweeps=prob.n_snapshots * prob.thin,
                 n_equilibrate=prob.n_equilibrate, thin=prob.thin, n_snapshots=prob.n_snapshots,
                 seed=int(prob.rng.integers(2**31)))
    snaps = res.snapshots.reshape((-1,) + res.snapshots.shape[-2:])
    counts = prob.desc.histograms(snaps, periodic=prob.periodic).astype(np.float64)
    h_norm = counts / counts.sum(axis=1, keepdims=True)
    # the next reference starts from an equilibrated configuration
    prob.start = res.final[0].copy()
    return Ensemble(np.array(theta, dtype=np.float64), _statistics(snaps, prob), h_norm)


def _pooled(ens: Ensemble, theta, counts: np.ndarray, bins=None):
    q, dq = ens.predict(theta)
    if bins is None:
        bins = pool_classes(counts.sum() * q)
    m = pooling_matrix(bins, int(bins.max()) + 1)
    return q, dq, bins, m


def _gauss_newton_step(p_b, q_b, g_b, max_step: float) -> np.ndarray:
    w = 1.0 / np.clip(q_b, 1e-12, None)
    a = (g_b * w) @ g_b.T
    rhs = (g_b * w) @ (p_b - q_b)
    a += 1e-9 * np.trace(a) * np.eye(len(a)) / len(a)
    step = np.linalg.solve(a, rhs)
    big = np.max(np.abs(step))
    return step * (max_step / big) if big > max_step else step


def _trust_box(ens: Ensemble, theta) -> np.ndarray:
    """Half-widths per parameter within which one coordinate's log-weights spread by ~1."""
    return 1.0 / np.maximum(ens.r.std(axis=0), 1e-9)


def _refine(ens: Ensemble, theta0, p, bins, m, ess_min: float):
    """L-BFGS of the reweighted s^2 inside the trust box; returns (theta, s2, inside)."""
    p_b = p @ m
    half = _trust_box(ens, theta0)

    def fun(th):
        q, dq = ens.predict(th)
        return distance_and_gradient(p_b, q @ m, dq @ m)

    bounds = list(zip(theta0 - half, theta0 + half))
    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 200, "gtol": 1e-12, "ftol": 1e-15})
    th = res.x
    at_edge = np.any(np.abs(th - theta0) > 0.98 * half)
    ok = (not at_edge) and ens.ess(th) >= ess_min * ens.size
    return th, float(res.fun), ok


def _covariance(ens: Ensemble, theta, counts, bins, m, n_sites_mc: float):
    """Sandwich covariance, design effect, degrees of freedom and q at theta.

    The design effect d (n_eff = N / d) is the mean variance inflation over the pooled bins;
    along the fitted directions the inflation is larger (pair statistics are counted once per
    overlapping neighbourhood), so fitting removes more than P from E[chi^2]: the degrees of
    freedom are the expectation of 4 n_eff s^2 at the optimum, (B - 1) - tr(P_G W Sigma) N / d.
    """
    n = counts.sum()
    q, dq = ens.predict(theta)
    q_b, g_b = q @ m, dq @ m
    w = 1.0 / np.clip(q_b, 1e-12, None)
    # one image-sized window's histogram covariance, from the model's own snapshots
    sigma = m.T @ ens.snapshot_covariance(theta) @ m * (n_sites_mc / n)
    a = np.linalg.pinv((g_b * w) @ g_b.T)
    b = (g_b * w) @ sigma @ (g_b * w).T
    cov = a @ b @ a
    n_bins = len(q_b)
    design = max(float(n * np.sum(w * np.diag(sigma)) / max(n_bins - 1, 1)), 1e-3)
    x = (g_b * np.sqrt(w)).T  # (B, P): the fitted directions in the chi-square metric
    proj = x @ np.linalg.pinv(x.T @ x) @ x.T
    sw = np.sqrt(w)
    removed = float(n * np.trace(proj @ (sigma * sw[:, None] * sw[None, :])) / design)
    dof = (n_bins - 1) - removed
    return cov, design, dof, q


def fit_model(
    lattice: Lattice,
    model: str = "j1j2",
    *,
    descriptor: Descriptor | str | None = None,
    site_field=None,
    theta_start=None,
    n_chains: int = 2,
    n_snapshots: int = 150,
    thin: int = 2,
    n_equilibrate: int = 100,
    max_iter: int = 15,
    ess_min: float = 0.3,
    max_step: float = 0.5,
    bootstrap: int = 0,
    seed: int = 0,
    progress: Callable | None = None,
) -> FitResult:
    """Fit the interactions of a lattice model to one image's configuration histogram.

    Parameters
    ----------
    lattice : Lattice
        The image's occupancy lattice (see :func:`occupancy_lattice`).
    model : str
        ``j1``, ``j1j2`` or ``j1j2j3``, optionally ``+field`` (then ``site_field`` is needed).
    descriptor : Descriptor or str, optional
        Local configuration classes; default ``shell_counts`` over the model's shells (pass one
        descriptor to compare models on the same histogram).
    site_field : array (n_i, n_j), optional
        Field profile f_i on the lattice grid (e.g. exp(-distance / decay)); used with ``+field``.
    theta_start : sequence, optional
        Starting parameters (default 0: a random alloy).
    n_chains, n_snapshots, thin, n_equilibrate : int
        Monte Carlo per reference: chains in parallel, snapshots per chain, sweeps between
        snapshots, sweeps of equilibration.
    max_iter : int
        Reference runs at most.
    ess_min : float
        Smallest effective sample size (fraction of the snapshots) reweighting may use.
    max_step : float
        Largest Gauss-Newton step per parameter (k_B T_f).
    bootstrap : int
        Parametric-bootstrap replicas (0 = none): image-sized configurations drawn from the
        fitted model, each refitted.
    seed : int
    progress : callable(done, total), optional

    Returns
    -------
    FitResult
    """
    t0 = time.perf_counter()
    prob, names = _problem(lattice, model, descriptor, site_field, n_chains, n_snapshots, thin, n_equilibrate,
                           seed, progress)
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or not 0 <= bootstrap <= 10_000:
        raise InputError(f"bootstrap must be an integer in [0, 10000], got {bootstrap!r}")
    p = prob.counts / prob.n
    theta = np.zeros(len(names)) if theta_start is None else np.asarray(theta_start, dtype=np.float64).copy()
    if theta.shape != (len(names),) or not np.all(np.isfinite(theta)):
        raise InputError(f"theta_start must hold {len(names)} finite numbers ({', '.join(names)})")
    theta, ens, bins, history, converged = _optimise(prob, p, theta, max_iter, ess_min, max_step)
    m = pooling_matrix(bins, int(bins.max()) + 1)
    n_mc = float(np.mean(prob.desc.histograms(prob.start[None], periodic=prob.periodic).sum()))
    cov, design, dof, q = _covariance(ens, theta, prob.counts, bins, m, n_mc)
    s2, _ = distance_and_gradient(p @ m, q @ m, np.zeros((1, m.shape[1])))
    n_eff = prob.n / design
    result = FitResult(
        model=model.lower(), names=names, value=theta, stderr=np.sqrt(np.clip(np.diag(cov), 0, None)),
        covariance=cov, statistical_distance=float(np.sqrt(s2)), chi2=float(4 * n_eff * s2), dof=dof,
        n_sites=prob.n, n_eff=float(n_eff), design_effect=design, composition=float(lattice.composition),
        kind=prob.kind, descriptor=prob.desc.name, class_labels=tuple(prob.desc.labels), counts_image=prob.counts,
        q_model=q, bins=bins, converged=converged, iterations=history, ensemble=ens, classes=prob.desc,
    )
    if bootstrap:
        from ._bootstrap import parametric_bootstrap

        result.bootstrap = parametric_bootstrap(result, prob, lattice, int(bootstrap), ess_min)
        result.stderr_bootstrap = np.std(result.bootstrap, axis=0, ddof=1)
    result.seconds = time.perf_counter() - t0
    return result


def _problem(lattice, model, descriptor, site_field, n_chains, n_snapshots, thin, n_equilibrate, seed, progress):
    if not isinstance(lattice, Lattice):
        raise InputError("fit_model needs a Lattice; build one with occupancy_lattice(atoms)")
    n_shells, has_field, names = parse_model(model)
    for name, v, lo, hi in (("n_chains", n_chains, 1, 64), ("n_snapshots", n_snapshots, 10, 100_000),
                            ("thin", thin, 1, 1000), ("n_equilibrate", n_equilibrate, 0, 1_000_000)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise InputError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
    if descriptor is None:
        desc = make_descriptor(lattice.kind, "shell_counts", n_shells=n_shells)
    elif isinstance(descriptor, str):
        desc = make_descriptor(lattice.kind, descriptor)
    else:
        desc = descriptor
    if has_field and not hasattr(desc, "bin_of_site"):
        desc = FieldBinnedDescriptor(desc, _check_field(site_field, lattice, model), lattice.valid)
    if desc.kind != lattice.kind:
        raise InputError(f"the descriptor is for a {desc.kind} lattice but the image lattice is {lattice.kind}")
    counts = desc.histogram(lattice.spins, periodic=lattice.periodic).astype(np.float64)
    if counts.sum() < MIN_COMPLETE_SITES:
        raise InputError(f"only {int(counts.sum())} sites have a complete {desc.name} neighbourhood; at least "
                         f"{MIN_COMPLETE_SITES} are needed (a larger field of view, or a smaller descriptor)")
    c = lattice.composition
    if not 0 < c < 1:
        raise InputError("the lattice holds a single species; a lattice model needs dopants and hosts")
    f = _check_field(site_field, lattice, model) if has_field else None
    if hasattr(desc, "bin_of_site"):
        # the classes depend on where a site is: simulate the image's own lattice (open, its holes)
        start, periodic = lattice.spins.copy(), lattice.periodic
    else:
        # bulk model: a periodic box the size of the image grid at the image's composition
        rng = np.random.default_rng(seed)
        shape = tuple(max(s, 24) for s in lattice.shape)
        n = shape[0] * shape[1]
        flat = -np.ones(n, dtype=np.int8)
        flat[rng.choice(n, size=int(round(c * n)), replace=False)] = 1
        start, periodic = flat.reshape(shape), True
    prob = _Problem(counts=counts, desc=desc, kind=lattice.kind, n_shells=n_shells, has_field=has_field,
                    start=start, periodic=periodic, site_field=f, n_chains=int(n_chains),
                    n_snapshots=int(n_snapshots), thin=int(thin), n_equilibrate=int(n_equilibrate),
                    rng=np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]), progress=progress)
    return prob, names


def _check_field(site_field, lattice: Lattice, model: str) -> np.ndarray:
    if site_field is None:
        raise InputError(f"model {model!r} has a site field: pass site_field, the profile f on the lattice grid")
    f = np.asarray(site_field, dtype=np.float64)
    if f.shape != lattice.shape or not np.all(np.isfinite(f[lattice.valid])):
        raise InputError(f"site_field must be a finite array of the lattice's shape {lattice.shape}")
    return np.where(lattice.valid, f, 0.0)


def _optimise(prob: _Problem, p, theta, max_iter, ess_min, max_step, ens: Ensemble | None = None):
    """Gauss-Newton across references with a trust radius, then L-BFGS on the reweighted s^2.

    A Gauss-Newton step is only accepted when the new reference run really lowers s^2;
    otherwise the radius shrinks and the step is proposed again from the best point
    (linear response overshoots near an ordering transition).
    """
    history = []
    if ens is None:
        ens = _reference(theta, prob)
    q, dq, bins, m = _pooled(ens, theta, prob.counts)
    s2 = distance_and_gradient(p @ m, q @ m, dq @ m)[0]
    radius = max_step
    converged = False
    for it in range(max_iter):
        q, dq, bins, m = _pooled(ens, theta, prob.counts)
        p_b = p @ m
        step = _gauss_newton_step(p_b, q @ m, dq @ m, radius)
        history.append({"theta": theta.tolist(), "s2": s2, "step": step.tolist(), "radius": radius})
        if prob.progress is not None:
            prob.progress(it + 1, max_iter)
        target = theta + step
        box = _trust_box(ens, theta)
        if np.all(np.abs(step) <= CONVERGED_STEP * box):
            # the remaining step is far below the statistical error: done
            theta, converged = target, True
            break
        if ens.ess(target) >= ess_min * ens.size and np.all(np.abs(step) <= box):
            th, _, ok = _refine(ens, theta, p, bins, m, ess_min)
            if ok:
                theta, converged = th, True
                break
            target = th
        trial = _reference(target, prob)
        q_t, dq_t, bins_t, m_t = _pooled(trial, target, prob.counts)
        s2_t = distance_and_gradient(p @ m_t, q_t @ m_t, dq_t @ m_t)[0]
        # within one trust box the two references' Monte Carlo noise can outweigh the true change of s^2,
        # so a step that small is taken on the linear model's word
        if s2_t < s2 or np.all(np.abs(target - theta) <= box):
            theta, ens, s2 = target, trial, s2_t
            radius = min(2.0 * radius, max_step)
        else:
            radius = max(0.3 * float(np.max(np.abs(step))), 1e-4)
    q, dq, bins, m = _pooled(ens, theta, prob.counts)
    history.append({"theta": theta.tolist(), "s2": distance_and_gradient(p @ m, q @ m, dq @ m)[0], "step": []})
    return theta, ens, bins, history, converged


__all__ = ["FitResult", "MODELS", "fit_model", "parse_model"]
