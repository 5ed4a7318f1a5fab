"""Histogram reweighting of a Monte Carlo reference ensemble to nearby model parameters.

A reference run at theta0 gives S snapshots with sufficient statistics r_s (E = theta . r)
and normalised configuration histograms h_s. At theta the Boltzmann weights are
w_s ~ exp(-(theta - theta0) . r_s / t) (log-sum-exp normalised), the predicted histogram
is q(theta) = sum_s w_s h_s and its exact derivative is dq/dtheta = -Cov_w(r, h) / t.
Reweighting is only trustworthy while the weights stay spread over many snapshots: the
effective sample size ESS = 1 / sum w_s^2 is what the fit's trust region watches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp


@dataclass(frozen=True)
class Ensemble:
    """Reference snapshots: statistics ``r`` (S, P), histograms ``h`` (S, K) rows summing to 1."""

    theta0: np.ndarray
    r: np.ndarray
    h: np.ndarray
    temperature: float = 1.0

    @property
    def size(self) -> int:
        return self.r.shape[0]

    def log_weights(self, theta) -> np.ndarray:
        d = np.asarray(theta, dtype=np.float64) - self.theta0
        lw = -(self.r @ d) / self.temperature
        return lw - logsumexp(lw)

    def weights(self, theta) -> np.ndarray:
        return np.exp(self.log_weights(theta))

    def ess(self, theta) -> float:
        """Kish effective sample size of the reweighted ensemble."""
        lw = self.log_weights(theta)
        return float(np.exp(-logsumexp(2 * lw)))

    def predict(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """q(theta) (K,) and dq/dtheta (P, K)."""
        w = self.weights(theta)
        q = w @ self.h
        rbar = w @ self.r
        dq = -((self.r - rbar) * w[:, None]).T @ (self.h - q) / self.temperature
        return q, dq

    def snapshot_covariance(self, theta) -> np.ndarray:
        """Weighted covariance (K, K) of one snapshot's histogram at theta."""
        w = self.weights(theta)
        q = w @ self.h
        d = self.h - q
        return (d * w[:, None]).T @ d


def bhattacharyya(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(np.sqrt(np.clip(p, 0, None) * np.clip(q, 0, None))))


def distance_and_gradient(p: np.ndarray, q: np.ndarray, dq: np.ndarray) -> tuple[float, np.ndarray]:
    """s^2 = arccos(BC)^2 between pooled p and q, and d(s^2)/dtheta from dq (P, K)."""
    bc = min(bhattacharyya(p, q), 1.0)
    s = float(np.arccos(bc))
    qs = np.clip(q, 1e-300, None)
    dbc = dq @ (np.sqrt(np.clip(p, 0, None)) / (2 * np.sqrt(qs)))
    # d arccos(x)/dx = -1/sqrt(1 - x^2); s / sqrt(1 - bc^2) -> 1 as s -> 0
    ratio = s / np.sqrt(max(1 - bc * bc, 1e-300)) if s > 1e-12 else 1.0
    return s * s, -2.0 * ratio * dbc


def pooling_matrix(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """One-hot (K, B) matrix: ``values @ M`` sums classes into their pooled bins."""
    m = np.zeros((len(bins), n_bins))
    m[np.arange(len(bins)), bins] = 1.0
    return m
