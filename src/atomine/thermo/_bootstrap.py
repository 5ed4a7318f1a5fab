"""Image-sized replicas drawn from a fitted model: parametric bootstrap and predictive checks."""

from __future__ import annotations

import numpy as np

from ._reweight import distance_and_gradient, pooling_matrix
from .montecarlo import sample

REPLICA_EQUILIBRATION = 300  # sweeps from a random start: many correlation times away from a transition


def replicas(theta, prob, lattice, n: int, seed: int) -> np.ndarray:
    """``n`` independent configurations of the image's geometry at theta (int8, (n, n_i, n_j)).

    Without a field each is a periodic box of the image grid's shape at the image's composition,
    then the image's own holes are applied, so it is histogrammed exactly as the image was.
    With field-resolved classes the chains run on the image lattice itself.
    """
    from .fit import _couplings  # circular at import time only

    j, h = _couplings(np.asarray(theta, dtype=np.float64), prob)
    rng = np.random.default_rng(seed)
    if hasattr(prob.desc, "bin_of_site"):
        start, periodic = lattice.spins.copy(), lattice.periodic
    else:
        shape = lattice.shape
        n_sites = shape[0] * shape[1]
        flat = -np.ones(n_sites, dtype=np.int8)
        flat[rng.choice(n_sites, size=int(round(lattice.composition * n_sites)), replace=False)] = 1
        start, periodic = flat.reshape(shape), True
    res = sample(start, j, kind=prob.kind, field=h, site_field=prob.site_field if prob.has_field else None,
                 periodic=periodic, n_chains=int(n), n_sweeps=1, n_equilibrate=REPLICA_EQUILIBRATION,
                 n_snapshots=0, seed=int(rng.integers(2**31)))
    out = res.final.copy()
    out[:, ~lattice.valid] = 0
    return out


def refit_counts(counts, theta_start, ens, bins, prob, ess_min: float, max_refs: int = 6):
    """Minimise s^2 for another histogram, starting from a fitted reference ensemble.

    The same optimiser as the fit (Gauss-Newton across references, then trust-region
    reweighting): a replica's optimum may lie several standard errors away, beyond where the
    starting ensemble's weights reach, and a refit confined to that ensemble would shrink
    the bootstrap spread. Returns (theta, s^2 on ``bins``, the last reference ensemble).
    """
    from .fit import _optimise

    p = counts / counts.sum()
    outer, prob.progress = prob.progress, None  # the caller reports progress per replica, not per iteration
    try:
        theta, ens, _, _, _ = _optimise(prob, p, np.asarray(theta_start, dtype=np.float64), max_refs, ess_min, 0.5,
                                        ens=ens)
    finally:
        prob.progress = outer
    return theta, distance_at(ens, theta, counts, bins), ens


def parametric_bootstrap(result, prob, lattice, n: int, ess_min: float) -> np.ndarray:
    """(n, P) estimates refitted on configurations drawn from the fitted model."""
    confs = replicas(result.value, prob, lattice, n, seed=int(prob.rng.integers(2**31)))
    counts = prob.desc.histograms(confs, periodic=lattice.periodic).astype(np.float64)
    out = np.empty((n, len(result.value)))
    for b in range(n):
        out[b], _, _ = refit_counts(counts[b], result.value, result.ensemble, result.bins, prob, ess_min)
        if prob.progress is not None:
            prob.progress(b + 1, n)
    return out


def distance_at(ens, theta, counts, bins) -> float:
    """s^2 between a histogram and the model at theta, on the given pooling."""
    m = pooling_matrix(bins, int(bins.max()) + 1)
    q, dq = ens.predict(theta)
    return distance_and_gradient(counts @ m / counts.sum(), q @ m, dq @ m)[0]
