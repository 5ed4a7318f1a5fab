"""Numba kernels: Levenberg-Marquardt fits of one elliptical Gaussian + constant per atom.

Model of atom k on its patch (pixel units), with neighbours' current models ``o`` fixed:

    t(p) = o + B + s A exp(-Q / 2),   Q = a dx^2 + 2 b dx dy + c dy^2,   dx = x - xc, dy = y - yc

p = (xc, yc, A, a, b, c, B); s = +1 for bright columns, -1 for dark (ABF) ones. The
precision-matrix form (a, b, c) keeps the problem smooth when the column is round
(where an angle would be undefined). Poisson noise: the negative log-likelihood
sum(t - d log t) is minimised by Fisher scoring (weights 1 / t), which is maximum
likelihood; Gaussian noise: least squares. At the solution the inverse Fisher
information gives the Cramer-Rao covariance (Gaussian: scaled by the residual variance).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

NPAR = 7
OK, NO_CONVERGENCE, TOO_FEW_PIXELS, SINGULAR = 0, 1, 2, 3
_MIN_PIXELS = 3 * NPAR


@njit(cache=True)
def _solve(H, g, lam, out):
    """Solve (H + lam diag(H)) out = g by Gaussian elimination with partial pivoting; False if singular."""
    n = g.size
    M = np.empty((n, n + 1))
    for i in range(n):
        for j in range(n):
            M[i, j] = H[i, j]
        M[i, i] += lam * H[i, i]
        M[i, n] = g[i]
    for col in range(n):
        piv = col
        for r in range(col + 1, n):
            if abs(M[r, col]) > abs(M[piv, col]):
                piv = r
        if M[piv, col] == 0.0 or not np.isfinite(M[piv, col]):
            return False
        if piv != col:
            for j in range(n + 1):
                tmp = M[col, j]
                M[col, j] = M[piv, j]
                M[piv, j] = tmp
        for r in range(col + 1, n):
            f = M[r, col] / M[col, col]
            for j in range(col, n + 1):
                M[r, j] -= f * M[col, j]
    for i in range(n - 1, -1, -1):
        acc = M[i, n]
        for j in range(i + 1, n):
            acc -= M[i, j] * out[j]
        out[i] = acc / M[i, i]
    return np.isfinite(out).all()


@njit(cache=True)
def _gauss(p, x, y):
    dx = x - p[0]
    dy = y - p[1]
    q = p[3] * dx * dx + 2.0 * p[4] * dx * dy + p[5] * dy * dy
    if q > 80.0:
        return 0.0
    return p[2] * np.exp(-0.5 * q)


@njit(cache=True)
def _objective(p, px, py, d, o, sign, poisson):
    """Negative log-likelihood (Poisson) or sum of squares; inf where the model is invalid."""
    if p[2] <= 0.0 or p[3] <= 0.0 or p[5] <= 0.0 or p[3] * p[5] - p[4] * p[4] <= 0.0:
        return np.inf
    total = 0.0
    for i in range(d.size):
        t = o[i] + p[6] + sign * _gauss(p, px[i], py[i])
        if poisson:
            if t <= 0.0:
                return np.inf
            total += t - d[i] * np.log(t)
        else:
            total += (d[i] - t) ** 2
    return total


@njit(cache=True)
def _normal_equations(p, px, py, d, o, sign, poisson, H, g):
    """Fisher information H and score g (Poisson), or J^T J and J^T r (least squares)."""
    H[:, :] = 0.0
    g[:] = 0.0
    J = np.empty(NPAR)
    for i in range(d.size):
        dx = px[i] - p[0]
        dy = py[i] - p[1]
        q = p[3] * dx * dx + 2.0 * p[4] * dx * dy + p[5] * dy * dy
        e = np.exp(-0.5 * q) if q < 80.0 else 0.0
        ae = sign * p[2] * e
        J[0] = ae * (p[3] * dx + p[4] * dy)
        J[1] = ae * (p[4] * dx + p[5] * dy)
        J[2] = sign * e
        J[3] = -0.5 * ae * dx * dx
        J[4] = -ae * dx * dy
        J[5] = -0.5 * ae * dy * dy
        J[6] = 1.0
        t = o[i] + p[6] + ae
        w = 1.0 / max(t, 1e-12) if poisson else 1.0
        r = d[i] - t
        for a in range(NPAR):
            g[a] += w * r * J[a]
            for b in range(a, NPAR):
                H[a, b] += w * J[a] * J[b]
    for a in range(NPAR):
        for b in range(a):
            H[a, b] = H[b, a]


@njit(cache=True)
def _fit_one(p, px, py, d, o, sign, poisson, max_iter, cov):
    """LM from p (updated in place); returns a status code and fills cov (7 x 7)."""
    H = np.empty((NPAR, NPAR))
    g = np.empty(NPAR)
    step = np.empty(NPAR)
    trial = np.empty(NPAR)
    f = _objective(p, px, py, d, o, sign, poisson)
    if not np.isfinite(f):
        return NO_CONVERGENCE
    lam = 1e-3
    ft = f
    status = NO_CONVERGENCE
    for _ in range(max_iter):
        _normal_equations(p, px, py, d, o, sign, poisson, H, g)
        improved = False
        while lam < 1e12:
            if _solve(H, g, lam, step):
                for k in range(NPAR):
                    trial[k] = p[k] + step[k]
                ft = _objective(trial, px, py, d, o, sign, poisson)
                if ft < f:
                    improved = True
                    break
            lam *= 4.0
        if not improved:
            # no direction lowers the objective: a minimum to machine precision
            status = OK
            break
        df = f - ft
        p[:] = trial
        f = ft
        lam = max(lam / 3.0, 1e-9)
        if df <= 1e-10 * (abs(f) + 1e-30) and abs(step[0]) < 1e-5 and abs(step[1]) < 1e-5:
            status = OK
            break
    _normal_equations(p, px, py, d, o, sign, poisson, H, g)
    if not poisson:
        rss = 0.0
        for i in range(d.size):
            rss += (d[i] - o[i] - p[6] - sign * _gauss(p, px[i], py[i])) ** 2
        H /= rss / (d.size - NPAR)
    eye = np.zeros(NPAR)
    col = np.empty(NPAR)
    for k in range(NPAR):
        eye[:] = 0.0
        eye[k] = 1.0
        if not _solve(H, eye, 0.0, col):
            return SINGULAR
        cov[:, k] = col
    return status


@njit(cache=True, parallel=True)
def fit_patches(img, cx, cy, radius, params, others, use_others, nbr_ptr, nbr_idx, sign, poisson, max_iter):
    """Fit every atom on the pixels within ``radius`` of (cx, cy), neighbours' models subtracted.

    Returns (params (N, 7), cov (N, 7, 7), status (N,), n_pixels (N,)).
    """
    n = cx.size
    ny, nx = img.shape
    out = params.copy()
    cov = np.full((n, NPAR, NPAR), np.nan)
    status = np.full(n, TOO_FEW_PIXELS, dtype=np.int64)
    npix = np.zeros(n, dtype=np.int64)
    for k in prange(n):
        r = radius[k]
        i0 = max(0, int(np.floor(cy[k] - r)))
        i1 = min(ny - 1, int(np.ceil(cy[k] + r)))
        j0 = max(0, int(np.floor(cx[k] - r)))
        j1 = min(nx - 1, int(np.ceil(cx[k] + r)))
        m = 0
        size = max(0, (i1 - i0 + 1) * (j1 - j0 + 1))
        px = np.empty(size)
        py = np.empty(size)
        d = np.empty(size)
        o = np.zeros(size)
        for i in range(i0, i1 + 1):
            for j in range(j0, j1 + 1):
                if (j - cx[k]) ** 2 + (i - cy[k]) ** 2 <= r * r:
                    px[m] = j
                    py[m] = i
                    d[m] = img[i, j]
                    m += 1
        npix[k] = m
        if m < _MIN_PIXELS:
            continue
        if use_others:
            for t in range(nbr_ptr[k], nbr_ptr[k + 1]):
                q = others[nbr_idx[t]]
                for u in range(m):
                    o[u] += sign * _gauss(q, px[u], py[u])
        p = out[k].copy()
        c = np.empty((NPAR, NPAR))
        status[k] = _fit_one(p, px[:m], py[:m], d[:m], o[:m], sign, poisson, max_iter, c)
        out[k] = p
        cov[k] = c
    return out, cov, status, npix
