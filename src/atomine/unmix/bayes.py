"""Bayesian linear unmixing by Gibbs sampling, after Dobigeon et al. (IEEE Trans. Signal Process. 57, 4355, 2009).

Model: ``x_p = M' a_p + n_p`` for every sample p.

- Abundances ``a_p`` are Dirichlet(alpha) on the simplex, with the concentrations
  alpha_k learned (log-normal prior centred on alpha = 1, Dobigeon et al.'s uniform
  prior). Their conditional is a Gaussian restricted to the simplex times
  prod_k a_k ** (alpha_k - 1), drawn per pixel in its K-1 free coordinates. Why not the
  uniform prior: where pixels crowd near the vertices and edges (alpha < 1: smooth
  abundance fields with nearly pure regions), it explains the noisy crowd at the
  boundary by a larger simplex; its vertices then sat ~7 % too far out and its 95 %
  intervals covered 56-63 % of the truth (Dirichlet(0.4-0.5) mixtures and EELS fields
  with floor 0.002).
- Endmembers live in the (K-1)-dimensional affine PCA subspace of the data,
  ``m_k = mean + P t_k``, with a broad Gaussian prior on ``t_k`` truncated to the
  physical set: ``sign_l * m_kl >= 0`` in every constrained channel (non-negative
  spectra for counts; for tunnelling currents the sign of the bias).
- Noise is Gaussian. Dobigeon et al. use one variance with a Jeffreys prior. Our
  extension: one variance per channel, each with a Jeffreys prior and so an
  inverse-gamma conditional, because Poisson counts (EELS) have very different
  levels per channel. For noise correlated along the spectral axis (1/f current
  noise in CITS) the channels are first scaled by their noise level and turned by an
  orthonormal DCT, where stationary noise is nearly uncorrelated; the per-coordinate
  variances are then those of the noise power spectrum (``noise="correlated"``).

Everything is sampled in that working space (the plain channels for
``noise="channel"``); endmembers are mapped back for the sign constraints and the
outputs. A Gibbs sweep draws all abundances (numba, parallel over pixels; slice sampling
where alpha != 1), the concentrations (slice sampling on log alpha), each endmember's
coordinates, then the noise variances. Abundance summaries come from
running sums (means) and a thinned set of at most ``max_stored`` draws (intervals).

Mixing: Gibbs alone crawls along the ridge where a vertex moves out while the
abundances shrink (autocorrelation ~300 sweeps). Two remedies: the abundance and
endmember conditionals depend on the data only through their projection on the
subspace, so each noise update is followed by several cheap O(n K^2) rounds; and a
Metropolis move of one vertex that re-expresses every pixel in the new simplex (fit
unchanged; Jacobian = volume ratio ** n) travels along that ridge directly.

Calibration (default chain, K=3; coverage of the true abundances by the 95 % intervals):
Dirichlet(0.5) and Dirichlet(1) mixtures with Gaussian noise 0.95; the '*-mixed' presets
(smooth softmax fields of contrast 4, floor 1e-4: every phase > 0.99 somewhere), seeds 0-4,
workflow defaults (``validate_unmix`` in benchmarks/VALIDATION.md): 'eels-si-mixed' 0.914-0.946,
RMSE 0.011-0.014; 'cits-grid-mixed' 0.904-0.954, RMSE 0.007-0.011.
Identifiability: the data fix only their hull, and the posterior puts the vertices on it (a
Dirichlet prior on n ~ 2000 independent pixels is certain that some pixel lies within ~1e-3
of every vertex). Where no pixel is nearly pure the intervals therefore miss: with the presets'
former fields (contrast 2.5, floor 0.02, no pixel purer than 0.96) the posterior covered the
hull coordinates (a - m) / (1 - sum m) at 0.80-0.93 but only 50-57 % ('eels-si-mixed') and
18-25 % ('cits-grid-mixed') of the true abundances; at floor 1e-3, contrast 2.5, smooth
fields hold only ~5-20 independent patches, a component's purest pixel is often 0.5-3 % short
of its vertex, and coverage was 0.79-0.92 (EELS) and 0.77-0.91 (CITS). Not the noise model
(white Gaussian noise in its place: same bias) nor mixing (vertex autocorrelation at lag 100
below 0.15); iid logistic-normal abundances reaching their vertices are covered at
0.93-0.94. A spatial prior on the abundances would be the remedy for such data.

Known references (``references``): spectra held fixed as the first r endmembers. They
need not lie in the data's PCA subspace, so the sampler's affine subspace is built
around them (their mean as origin, their differences as the first axes, the data's
leading directions off them as the rest): ``M = mean + T V'`` then holds the references
exactly and every conditional (abundances, noise, the free endmembers) stays exact in
the full channel space. With the true pure spectra as references (600 sweeps, 200
burn-in): 'eels-si-mixed' coverage 0.958 / 0.953 / 0.951 (seeds 0/1/2), RMSE 0.0107-0.0113
(FCLS on the same spectra 0.0116-0.0125); 'cits-grid-mixed' 0.948 / 0.943 / 0.948 / 0.945 /
0.938 (seeds 0-4), RMSE 0.0049-0.0052 (FCLS 0.0053-0.0057). On the former fields the CITS
intervals were too narrow (0.80-0.85) while the simulator's 1/f noise was periodic over
each sweep, and 0.81-0.88 after that was fixed; eigenvectors of a Toeplitz covariance
estimated from the residuals off the PCA subspace did worse there (0.85-0.89). With r < K
the free endmembers still sit on the data hull.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.fft
import scipy.linalg
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from ..errors import InputError
from ._base import UnmixingEstimator, check_random_state
from ._bayes_setup import (_check_references, _check_sign, _count, _feasible_start, _free_starts,
                           _initial_endmembers, _noise_space, _reference_subspace, _sign_bounds)
from ._bayes_kernels import abundance_sweep, constrained_gaussian, dirichlet_concentration, stream_key
from ._projection import pca_projection
from .abundance import fcls

_NOISE = ("auto", "channel", "correlated")
_INNER = 5  # abundance / endmember / vertex-move rounds per noise update (cheap: projected data)
_PRIOR_SCALE = 10.0  # prior sd of the endmember coordinates, in units of the data's spread in the subspace
_ALPHA_PRIOR_SD = 1.5  # prior sd of log alpha (Dirichlet concentrations), centred on the uniform simplex
_LOG_FLOOR = 1e-12  # abundances at a face: bounds the Dirichlet pole, as in _bayes_kernels


# ----------------------------------------------------------------------------- parameter checks
# ----------------------------------------------------------------------------- the sampler
def _split_rhat(chain):
    """Split-R-hat (Gelman et al., BDA3) of each column of ``chain`` (n_draws, n_params)."""
    h = chain.shape[0] // 2
    if h < 2:
        return np.full(chain.shape[1], np.nan)
    parts = np.stack([chain[:h], chain[h:2 * h]])  # (2, h, p)
    w = parts.var(axis=1, ddof=1).mean(axis=0)
    b = h * parts.mean(axis=1).var(axis=0, ddof=1)
    var = (h - 1) / h * w + b / h
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w > 0, np.sqrt(var / w), 1.0)


class _Chain:
    """State and fixed quantities of one Gibbs chain in the working space."""

    def __init__(self, Y, mean_w, V, mean_o, P_o, constraints, T, A, s2, n_fixed=0):
        self.Y, self.mean_w, self.V, self.mean_o, self.P_o = Y, mean_w, V, mean_o, P_o
        self.free = range(n_fixed, T.shape[0])  # endmembers sampled; the first n_fixed are known references
        rows, sgn, lower = constraints
        self.Pc = sgn[:, None] * P_o[rows]  # sign constraints: Pc t >= floor
        self.floor = lower - sgn * mean_o[rows]
        self.T, self.A, self.s2 = T, A, s2
        self.alpha = np.ones(T.shape[0])  # Dirichlet concentrations of the abundance prior
        self.Mw = mean_w + T @ V.T
        self.yy = np.einsum("ij,ij->j", Y, Y)
        K, d = T.shape
        self.Dm = np.vstack([np.eye(d), -np.ones((1, d))])  # a = e_K + Dm c
        spread = np.sqrt(max(float(np.mean(np.sum(((Y - mean_w) @ V) ** 2, axis=1))), 1e-300))
        self.prior_prec = 1.0 / (_PRIOR_SCALE * spread) ** 2
        self.step = np.full(K, 0.01 * spread)  # vertex-move step, tuned during burn-in

    def project(self):
        """Data projected on the endmember subspace in the current noise metric (n x K, once per sweep).

        Every abundance and endmember conditional depends on the data only through these
        projections, so the inner updates cost O(n K^2) instead of O(n m K).
        """
        w_mean, W = self.mean_w / self.s2, self.V / self.s2[:, None]
        self.Z = self.Y @ np.column_stack([w_mean, W])
        self.mSm, self.VSm, self.VSV = float(self.mean_w @ w_mean), self.V.T @ w_mean, self.V.T @ W

    def abundances(self, rng):
        """Every pixel's abundances from their Gaussian conditional restricted to the simplex."""
        T, Dm = self.T, self.Dm
        K = T.shape[0]
        Tv = T @ self.VSm
        Lam = self.mSm + Tv[:, None] + Tv[None, :] + T @ self.VSV @ T.T  # M S^-1 M'
        L = np.linalg.cholesky(Dm.T @ Lam @ Dm)
        U = scipy.linalg.solve_triangular(L, np.eye(K - 1), lower=True).T  # U U' = conditional covariance
        B = self.Z[:, :1] + self.Z[:, 1:] @ T.T  # M S^-1 x for every pixel
        mu = scipy.linalg.cho_solve((L, True), ((B - Lam[:, K - 1]) @ Dm).T).T
        H = np.concatenate([mu, 1.0 - mu.sum(axis=1, keepdims=True)], axis=1)
        abundance_sweep(self.A, H, U, np.uint64(rng.integers(2 ** 63)), 1, self.alpha)

    def concentration(self, rng):
        """Dirichlet concentrations from their conditional given the abundances (slice sampling on log alpha)."""
        S = np.log(np.maximum(self.A, _LOG_FLOOR)).sum(axis=0)
        width = 3.0 / np.sqrt(self.A.shape[0])  # ~ the posterior sd of log alpha
        dirichlet_concentration(self.alpha, S, float(self.A.shape[0]), _ALPHA_PRIOR_SD, width,
                                np.uint64(rng.integers(2 ** 63)))

    def endmembers(self, rng):
        """Each free endmember's subspace coordinates from their truncated Gaussian conditional."""
        A, T, VSm, VSV = self.A, self.T, self.VSm, self.VSV
        K, d = T.shape
        if not len(self.free):
            return
        G = A.T @ A
        ZA = self.Z[:, 1:].T @ A  # V' S^-1 Y' A
        seed = np.uint64(rng.integers(2 ** 63))
        for k in self.free:
            others = [j for j in range(K) if j != k]
            lin = ZA[:, k] - VSm * G[k].sum() - VSV @ (T[others].T @ G[others, k])
            L = np.linalg.cholesky(G[k, k] * VSV + self.prior_prec * np.eye(d))
            U = scipy.linalg.solve_triangular(L, np.eye(d), lower=True).T
            mu = scipy.linalg.cho_solve((L, True), lin)
            constrained_gaussian(T[k], mu, U, -(self.Pc @ U), self.Pc @ mu - self.floor,
                                 np.uint64(stream_key(seed, k)), 2)

    def noise(self, rng):
        """Per-coordinate variances: inverse gamma (Jeffreys prior) from the residual sums of squares."""
        A, n = self.A, self.Y.shape[0]
        self.Mw = Mw = self.mean_w + self.T @ self.V.T
        G, YtA = A.T @ A, self.Y.T @ A
        ss = self.yy - 2.0 * np.einsum("lk,kl->l", YtA, Mw) + np.einsum("jl,jk,kl->l", Mw, G, Mw)
        ss = np.maximum(ss, 1e-12 * self.yy.max() / n + 1e-300)
        self.s2 = 0.5 * ss / rng.gamma(0.5 * n, size=ss.size)

    def vertex_moves(self, rng, adapt):
        """Metropolis moves of one vertex at a time that keep every pixel's fit (Liu & Sabatti 2000).

        Moving vertex k and re-expressing each pixel's point in the new simplex leaves the
        likelihood unchanged; the move is accepted with the prior ratio (endmember prior and
        the Dirichlet prior of the new abundances) times the Jacobian (old / new simplex
        volume) ** n_pixels, and only if every pixel stays inside. It travels along the ridge
        (bigger simplex, smaller abundance contrast) that the alternating conditionals cross
        only slowly.
        """
        T, A, am1 = self.T, self.A, self.alpha - 1.0
        K, d = T.shape
        n = A.shape[0]
        for k in self.free:
            B = np.vstack([np.ones(K), T.T])
            t_new = T[k] + self.step[k] * rng.standard_normal(d)
            ok = bool(np.all(self.Pc @ t_new >= self.floor))
            if ok:
                B2 = B.copy()
                B2[1:, k] = t_new
                sgn2, logdet2 = np.linalg.slogdet(B2)
                A2 = A @ np.linalg.solve(B2, B).T if sgn2 != 0 else A
                ok = sgn2 != 0 and A2.min() >= -1e-12
            if ok:
                log_ratio = n * (np.linalg.slogdet(B)[1] - logdet2) - 0.5 * self.prior_prec * (t_new @ t_new - T[k] @ T[k])
                log_ratio += float(am1 @ (np.log(np.maximum(A2, _LOG_FLOOR)) - np.log(np.maximum(A, _LOG_FLOOR))).sum(axis=0))
                ok = np.log(rng.random()) < log_ratio
            if ok:
                np.clip(A2, 0.0, None, out=A2)
                A[:] = A2 / A2.sum(axis=1, keepdims=True)
                T[k] = t_new
            if adapt:  # Robbins-Monro towards ~30 % acceptance; frozen after burn-in so the chain stays valid
                self.step[k] *= np.exp(0.05 * ((1.0 if ok else 0.0) - 0.3))


def _gibbs(chain, schedule, rng, progress):
    """Run the chain; returns running sums, stored draws and the post-burn-in trace."""
    n, K = chain.A.shape
    d, m = K - 1, chain.Y.shape[1]
    n_iter, burn_in, thin, every, n_store = schedule
    sums = {"A": np.zeros((n, K)), "A2": np.zeros((n, K)), "T": np.zeros((K, d)), "s2": np.zeros(m),
            "alpha": np.zeros(K)}
    store_A = np.empty((n_store, n, K), dtype=np.float32)
    store_T = np.empty((n_store, K, d))
    trace = np.empty((n_iter - burn_in, K * d + 1 + K))
    n_kept = n_stored = 0
    for it in range(n_iter):
        chain.project()
        for _ in range(_INNER):
            chain.abundances(rng)
            chain.concentration(rng)
            chain.endmembers(rng)
            chain.vertex_moves(rng, it < burn_in)
        chain.noise(rng)
        if it >= burn_in:
            j = it - burn_in
            trace[j, :K * d] = chain.T.ravel()
            trace[j, K * d] = np.log(chain.s2.mean())
            trace[j, K * d + 1:] = np.log(chain.alpha)
            if j % thin == 0:
                n_kept += 1
                sums["A"] += chain.A
                sums["A2"] += chain.A * chain.A
                sums["T"] += chain.T
                sums["s2"] += chain.s2
                sums["alpha"] += chain.alpha
                if (n_kept - 1) % every == 0 and n_stored < n_store:
                    store_A[n_stored] = chain.A
                    store_T[n_stored] = chain.T
                    n_stored += 1
        if progress is not None:
            progress(it + 1, n_iter)
    return sums, n_kept, store_A[:n_stored], store_T[:n_stored], trace


# ----------------------------------------------------------------------------- estimator
class BayesianUnmixing(UnmixingEstimator):
    """Joint Bayesian endmember extraction and linear unmixing (Gibbs sampler).

    Parameters
    ----------
    n_components : int
        Number of endmembers K (>= 2).
    n_iter : int
        Gibbs sweeps in all, burn-in included.
    burn_in : int
        Sweeps discarded before the summaries (< n_iter).
    thin : int
        Keep every ``thin``-th sweep after the burn-in.
    init : {"nfindr", "vca"} or array (K, n_features)
        Starting endmembers (projected onto the PCA subspace); starting abundances by FCLS.
    credible : float
        Probability mass of the equal-tailed credible intervals, in (0, 1).
    noise : {"auto", "channel", "correlated"}
        Independent channels with one variance each, or noise correlated along the
        spectral axis (stationary after scaling each channel by its noise level). "auto"
        picks "correlated" when the residuals off the PCA subspace have a lag-1
        autocorrelation above 0.1.
    sign : "auto", bool or array (n_features,) of -1/0/+1
        Sign constraint on every endmember channel: True = non-negative spectra, False =
        none, "auto" = the sign that at least 99 % of the samples share in that channel
        (all channels of raw counts; both branches of an I(V) curve), 0 where they do not.
    max_stored : int
        Most thinned draws kept for the intervals (memory: max_stored x n x K float32).
    references : array (r, n_features), optional
        Known pure spectra in data units, held fixed as the first r endmembers (1 <= r <= K).
        With r == K only the abundances, their concentrations and the noise are sampled;
        otherwise the K - r free endmembers are sampled in the (K-1)-dim affine subspace
        through the references (see :func:`_reference_subspace`) and ``init`` only starts
        those (an init array's last K - r rows; N-FINDR/VCA vertices not matched to a
        reference). The references need not obey ``sign`` nor lie in the data's PCA subspace.
    random_state : None, int or numpy Generator
        Seeds the initialisation and the chain; equal seeds give equal results.
    progress : callable(done, total), optional
        Called after every sweep.

    Attributes
    ----------
    components_ : ndarray (K, n_features)
        Posterior-mean endmembers, in data units; satisfy the sign constraints.
    components_lo_, components_hi_ : ndarray (K, n_features)
        Equal-tailed credible bounds of the endmembers.
    abundances_ : ndarray (n_samples, K)
        Posterior-mean abundances (rows on the simplex).
    abundance_lo_, abundance_hi_ : ndarray (n_samples, K)
        Equal-tailed credible bounds of the abundances.
    abundance_std_ : ndarray (n_samples, K)
        Posterior standard deviations of the abundances.
    noise_variance_ : ndarray (n_features,)
        Posterior-mean noise variance per channel (data units squared).
    concentration_ : ndarray (K,)
        Posterior-mean Dirichlet concentrations of the abundance prior (1 = uniform on the
        simplex; below 1 = pixels crowd near the pure components).
    noise_model_ : str
        "channel" or "correlated", as used.
    sign_ : ndarray (n_features,)
        The sign constraints used.
    rhat_ : float
        Largest split-R-hat over the endmember coordinates, the log mean noise
        variance and the log concentrations (about 1 at convergence; above ~1.1 run longer).
    n_draws_, n_stored_ : int
        Draws averaged into the means, and kept for the intervals.
    n_references_ : int
        Number of fixed reference endmembers (the first rows of ``components_``).
    """

    def __init__(self, n_components: int, *, n_iter: int = 2000, burn_in: int = 700, thin: int = 1,
                 init="nfindr", credible: float = 0.95, noise: str = "auto", sign="auto", max_stored: int = 500,
                 references=None, random_state=None, progress=None):
        super().__init__(n_components, random_state=random_state)
        self.n_iter, self.burn_in, self.thin = n_iter, burn_in, thin
        self.init, self.credible, self.noise, self.sign = init, credible, noise, sign
        self.max_stored, self.progress, self.references = max_stored, progress, references

    def _schedule(self):
        n_iter = _count(self.n_iter, "n_iter", 2)
        burn_in = _count(self.burn_in, "burn_in", 0)
        thin = _count(self.thin, "thin", 1)
        if burn_in >= n_iter - 1:
            raise InputError(f"burn_in={burn_in} leaves fewer than 2 of the n_iter={n_iter} sweeps; "
                             "make burn_in smaller than n_iter - 1")
        kept = -(-(n_iter - burn_in) // thin)
        if kept < 2:
            raise InputError(f"thin={thin} keeps fewer than 2 draws after burn-in; lower thin or raise n_iter")
        n_store = min(_count(self.max_stored, "max_stored", 2), kept)
        every = -(-kept // n_store)
        return n_iter, burn_in, thin, every, -(-kept // every)

    def _fit(self, X):
        schedule = self._schedule()
        n, m = X.shape
        K = self.n_components
        if K < 2:
            raise InputError("n_components must be at least 2 for unmixing; one component is the mean spectrum")
        if K - 1 > min(n - 1, m):
            raise InputError(f"n_components={K} needs at least {K} samples and {K - 1} features; got shape {X.shape}")
        if not (isinstance(self.credible, numbers.Real) and 0.0 < self.credible < 1.0):
            raise InputError(f"credible must be a probability in (0, 1), got {self.credible!r}")
        if self.noise not in _NOISE:
            raise InputError(f"noise must be one of {', '.join(_NOISE)}, got {self.noise!r}")
        if self.progress is not None and not callable(self.progress):
            raise InputError("progress must be a callable(done, total) or None")
        refs = _check_references(self.references, K, m)
        r = 0 if refs is None else refs.shape[0]
        rng = check_random_state(self.random_state)
        sign = _check_sign(self.sign, X)
        E0 = _initial_endmembers(X, K, self.init, rng) if r < K else None  # all known: nothing to start

        space, self.noise_model_ = _noise_space(X, K, self.noise)
        Y = space.forward(X)
        if r:
            Rw = space.forward(refs)
            mean_w, V = _reference_subspace(Y, Rw, K)
        else:
            mean_w, V = pca_projection(Y, K - 1)
        mean_o, P_o = space.inverse(mean_w), space.inverse(V.T).T
        constraints = _sign_bounds(sign, mean_o)
        T = np.empty((K, K - 1))
        if r:
            T[:r] = (Rw - mean_w) @ V  # exact: the subspace contains the references
        if r < K:
            Ew = space.forward(E0)
            starts = _free_starts(Ew, Rw, not isinstance(self.init, str)) if r else Ew
            T[r:] = _feasible_start((starts - mean_w) @ V, P_o, mean_o, *constraints)
        Mw = mean_w + T @ V.T
        A = fcls(Y, Mw)
        s2 = np.maximum(((Y - A @ Mw) ** 2).mean(axis=0), 1e-12 * float((Y ** 2).mean()) + 1e-300)
        chain = _Chain(Y, mean_w, V, mean_o, P_o, constraints, T, A, s2, r)

        with threadpool_limits(limits=1, user_api="blas"):
            # per-sweep products are small: BLAS threads would only contend with numba's
            sums, kept, sA, sT, trace = _gibbs(chain, schedule, rng, self.progress)
        tail = (1.0 - self.credible) / 2.0
        mean_A = sums["A"] / kept
        self.abundance_std_ = np.sqrt(np.maximum(sums["A2"] / kept - mean_A ** 2, 0.0))
        self.abundance_lo_, self.abundance_hi_ = (q.astype(np.float64) for q in
                                                  np.quantile(sA, [tail, 1.0 - tail], axis=0))
        comp = mean_o + sT @ P_o.T  # (draws, K, m)
        self.components_lo_, self.components_hi_ = np.quantile(comp, [tail, 1.0 - tail], axis=0)
        components = mean_o + (sums["T"] / kept) @ P_o.T
        if r:  # the references as given, not as mapped there and back
            components[:r] = self.components_lo_[:r] = self.components_hi_[:r] = refs
        self.noise_variance_ = space.channel_variance(sums["s2"] / kept)
        self.concentration_ = sums["alpha"] / kept
        self.sign_ = sign
        self.trace_ = trace
        self.rhat_ = float(np.nanmax(_split_rhat(trace)))
        self.n_draws_, self.n_stored_ = kept, sA.shape[0]
        self.n_references_ = r
        return components, mean_A

    def _transform(self, X):
        """Abundances of new samples: FCLS on the posterior-mean endmembers."""
        return fcls(X, self.components_)


__all__ = ["BayesianUnmixing"]
