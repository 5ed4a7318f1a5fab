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
# reassociation and fused multiply-add let LLVM vectorise the pixel sums; no "nnan"/"ninf",
# because infeasible steps are signalled by an infinite objective
_FAST = {"reassoc", "contract", "arcp", "nsz"}
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


@njit(cache=True, fastmath=_FAST)
def _gauss(p, x, y):
    dx = x - p[0]
    dy = y - p[1]
    q = p[3] * dx * dx + 2.0 * p[4] * dx * dy + p[5] * dy * dy
    if q > 80.0:
        return 0.0
    return p[2] * np.exp(-0.5 * q)


@njit(cache=True)
def _feasible(p, box):
    """Inside the bounds: amplitude > 0, centre within the patch, widths in [min_sigma, radius].

    box = (patch centre x, y, radius, smallest sigma, largest sigma), px. Without bounds a low-count fit can
    collapse onto one bright pixel (width -> 0) or wander off its column.
    """
    if p[2] <= 0.0 or p[3] <= 0.0 or p[5] <= 0.0 or p[3] * p[5] - p[4] * p[4] <= 0.0:
        return False
    if (p[0] - box[0]) ** 2 + (p[1] - box[1]) ** 2 > box[2] * box[2]:
        return False
    half = 0.5 * (p[3] + p[5])
    root = np.sqrt(0.25 * (p[3] - p[5]) ** 2 + p[4] * p[4])
    # precision eigenvalues are 1 / sigma^2 along the ellipse axes
    return half + root <= 1.0 / (box[3] * box[3]) and half - root >= 1.0 / (box[4] * box[4])


@njit(cache=True, fastmath=_FAST)
def _evaluate(p, px, py, d, o, sign, poisson, box, H, g):
    """Objective at p, with the Fisher information H and score g (Poisson) or J^T J and J^T r.

    One pass over the pixels (one exp each) gives all three; inf outside the bounds. The 28
    distinct entries of H are scalar accumulators (written out) so they stay in registers.
    """
    if not _feasible(p, box):
        return np.inf
    x0, y0, amp, a, b, c, bg = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    h00 = 0.0
    h01 = 0.0
    h02 = 0.0
    h03 = 0.0
    h04 = 0.0
    h05 = 0.0
    h06 = 0.0
    h11 = 0.0
    h12 = 0.0
    h13 = 0.0
    h14 = 0.0
    h15 = 0.0
    h16 = 0.0
    h22 = 0.0
    h23 = 0.0
    h24 = 0.0
    h25 = 0.0
    h26 = 0.0
    h33 = 0.0
    h34 = 0.0
    h35 = 0.0
    h36 = 0.0
    h44 = 0.0
    h45 = 0.0
    h46 = 0.0
    h55 = 0.0
    h56 = 0.0
    h66 = 0.0
    g0 = 0.0
    g1 = 0.0
    g2 = 0.0
    g3 = 0.0
    g4 = 0.0
    g5 = 0.0
    g6 = 0.0
    total = 0.0
    for i in range(d.size):
        dx = px[i] - x0
        dy = py[i] - y0
        q = a * dx * dx + 2.0 * b * dx * dy + c * dy * dy
        e = np.exp(-0.5 * q) if q < 80.0 else 0.0
        ae = sign * amp * e
        t = o[i] + bg + ae
        r = d[i] - t
        if poisson:
            if t <= 0.0:
                return np.inf
            total += t - d[i] * np.log(t)
            w = 1.0 / t
        else:
            total += r * r
            w = 1.0
        j0 = ae * (a * dx + b * dy)
        j1 = ae * (b * dx + c * dy)
        j2 = sign * e
        j3 = -0.5 * ae * dx * dx
        j4 = -ae * dx * dy
        j5 = -0.5 * ae * dy * dy
        j6 = 1.0
        w0, w1, w2, w3, w4, w5, w6 = w * j0, w * j1, w * j2, w * j3, w * j4, w * j5, w
        g0 += w0 * r
        g1 += w1 * r
        g2 += w2 * r
        g3 += w3 * r
        g4 += w4 * r
        g5 += w5 * r
        g6 += w6 * r
        h00 += w0 * j0
        h01 += w0 * j1
        h02 += w0 * j2
        h03 += w0 * j3
        h04 += w0 * j4
        h05 += w0 * j5
        h06 += w0 * j6
        h11 += w1 * j1
        h12 += w1 * j2
        h13 += w1 * j3
        h14 += w1 * j4
        h15 += w1 * j5
        h16 += w1 * j6
        h22 += w2 * j2
        h23 += w2 * j3
        h24 += w2 * j4
        h25 += w2 * j5
        h26 += w2 * j6
        h33 += w3 * j3
        h34 += w3 * j4
        h35 += w3 * j5
        h36 += w3 * j6
        h44 += w4 * j4
        h45 += w4 * j5
        h46 += w4 * j6
        h55 += w5 * j5
        h56 += w5 * j6
        h66 += w6 * j6
    H[0, 0] = h00
    H[0, 1] = h01
    H[1, 0] = h01
    H[0, 2] = h02
    H[2, 0] = h02
    H[0, 3] = h03
    H[3, 0] = h03
    H[0, 4] = h04
    H[4, 0] = h04
    H[0, 5] = h05
    H[5, 0] = h05
    H[0, 6] = h06
    H[6, 0] = h06
    H[1, 1] = h11
    H[1, 2] = h12
    H[2, 1] = h12
    H[1, 3] = h13
    H[3, 1] = h13
    H[1, 4] = h14
    H[4, 1] = h14
    H[1, 5] = h15
    H[5, 1] = h15
    H[1, 6] = h16
    H[6, 1] = h16
    H[2, 2] = h22
    H[2, 3] = h23
    H[3, 2] = h23
    H[2, 4] = h24
    H[4, 2] = h24
    H[2, 5] = h25
    H[5, 2] = h25
    H[2, 6] = h26
    H[6, 2] = h26
    H[3, 3] = h33
    H[3, 4] = h34
    H[4, 3] = h34
    H[3, 5] = h35
    H[5, 3] = h35
    H[3, 6] = h36
    H[6, 3] = h36
    H[4, 4] = h44
    H[4, 5] = h45
    H[5, 4] = h45
    H[4, 6] = h46
    H[6, 4] = h46
    H[5, 5] = h55
    H[5, 6] = h56
    H[6, 5] = h56
    H[6, 6] = h66
    g[0] = g0
    g[1] = g1
    g[2] = g2
    g[3] = g3
    g[4] = g4
    g[5] = g5
    g[6] = g6
    return total


@njit(cache=True)
def _fit_one(p, px, py, d, o, sign, poisson, max_iter, cov, box):
    """LM from p (updated in place); returns a status code and fills cov (7 x 7)."""
    H = np.empty((NPAR, NPAR))
    g = np.empty(NPAR)
    Ht = np.empty((NPAR, NPAR))
    gt = np.empty(NPAR)
    step = np.empty(NPAR)
    trial = np.empty(NPAR)
    f = _evaluate(p, px, py, d, o, sign, poisson, box, H, g)
    if not np.isfinite(f):
        return NO_CONVERGENCE
    lam = 1e-3
    ft = f
    status = NO_CONVERGENCE
    for _ in range(max_iter):
        improved = False
        tiny = False
        while lam < 1e12:
            if _solve(H, g, lam, step):
                # at the optimum the step's predicted gain (g . step, in objective units) is below
                # rounding: stop here instead of raising lambda until no step is left
                gain = 0.0
                for k in range(NPAR):
                    gain += g[k] * step[k]
                if (gain <= 1e-6 if poisson else gain <= 1e-10 * abs(f)) and abs(step[0]) < 1e-4 \
                        and abs(step[1]) < 1e-4:
                    tiny = True
                    break
                for k in range(NPAR):
                    trial[k] = p[k] + step[k]
                ft = _evaluate(trial, px, py, d, o, sign, poisson, box, Ht, gt)
                if ft < f:
                    improved = True
                    break
            lam *= 4.0
        if tiny or not improved:
            # nothing left to gain, or no direction lowers the objective: a minimum
            status = OK
            break
        df = f - ft
        p[:] = trial
        H[:, :] = Ht
        g[:] = gt
        f = ft
        lam = max(lam / 3.0, 1e-9)
        # converged when the centre stops moving (1e-4 px, far below any Cramer-Rao bound) and
        # the objective changes by a statistically meaningless amount (Poisson: 1e-4 nats)
        small = df <= 1e-4 if poisson else df <= 1e-8 * abs(f)
        if small and abs(step[0]) < 1e-4 and abs(step[1]) < 1e-4:
            status = OK
            break
    if not poisson:
        # least squares: Fisher information J^T J / noise variance, the variance from the residuals
        H = H / (f / (d.size - NPAR))
    eye = np.zeros(NPAR)
    col = np.empty(NPAR)
    for k in range(NPAR):
        eye[:] = 0.0
        eye[k] = 1.0
        if not _solve(H, eye, 0.0, col):
            return SINGULAR
        cov[:, k] = col
    return status


@njit(cache=True)
def _patch(img, x, y, r, px, py, d):
    """Pixels within r of (x, y): coordinates and values into px, py, d; returns their count."""
    ny, nx = img.shape
    m = 0
    for i in range(max(0, int(np.floor(y - r))), min(ny - 1, int(np.ceil(y + r))) + 1):
        for j in range(max(0, int(np.floor(x - r))), min(nx - 1, int(np.ceil(x + r))) + 1):
            if (j - x) ** 2 + (i - y) ** 2 <= r * r:
                px[m] = j
                py[m] = i
                d[m] = img[i, j]
                m += 1
    return m


@njit(cache=True, parallel=True)
def initial_params(img, cx, cy, radius, sign):
    """Start (xc, yc, A, a, b, c, B) per atom: rim median, summed excess, second moment.

    The peak comes from the summed excess, not one pixel: at low dose the central pixel may
    be a dip, and a start with zero amplitude leaves the fit no gradient toward the column.
    """
    n = cx.size
    out = np.empty((n, NPAR))
    for k in prange(n):
        r = radius[k]
        size = (2 * int(np.ceil(r)) + 3) ** 2
        px = np.empty(size)
        py = np.empty(size)
        d = np.empty(size)
        m = _patch(img, cx[k], cy[k], r, px, py, d)
        rim = np.empty(max(m, 1))
        nr = 0
        for u in range(m):
            if (px[u] - cx[k]) ** 2 + (py[u] - cy[k]) ** 2 > (r - 1.5) ** 2:
                rim[nr] = d[u]
                nr += 1
        if nr == 0:
            rim[0] = d[0] if m > 0 else 0.0
            nr = 1
        bg = np.median(rim[:nr])
        sw = 0.0
        swr = 0.0
        for u in range(m):
            w = max(sign * (d[u] - bg), 0.0)
            sw += w
            swr += w * ((px[u] - cx[k]) ** 2 + (py[u] - cy[k]) ** 2)
        s2 = swr / (2.0 * sw) if sw > 0 else (r / 3.0) ** 2
        s2 = min(max(s2, 0.25), (r / 2.0) ** 2)
        amp = max(sw / (2.0 * np.pi * s2), 1e-6 * (abs(bg) + 1.0))
        out[k, 0] = cx[k]
        out[k, 1] = cy[k]
        out[k, 2] = amp
        out[k, 3] = 1.0 / s2
        out[k, 4] = 0.0
        out[k, 5] = 1.0 / s2
        out[k, 6] = bg
    return out


@njit(cache=True, parallel=True)
def fit_patches(img, atoms, cx, cy, radius, bound, max_sigma, start, others, use_others, nbr_ptr, nbr_idx, sign,
                poisson, max_iter, min_sigma, skip_chi2, params, cov, status, npix, resvar):
    """Fit the atoms listed in ``atoms`` on the pixels within ``radius`` of (cx, cy).

    The centre must stay within ``bound`` of (cx, cy) and the widths within [min_sigma, max_sigma].

    Neighbours' models (``others``, when ``use_others``) are subtracted; an atom already fitted
    (status OK) whose neighbours' models change its patch by less than ``skip_chi2`` (sum of
    squared contributions over the noise variance) keeps its previous fit. Results are written
    in place into ``params`` (N, 7), ``cov`` (N, 7, 7), ``status`` (N,), ``npix`` (N,) and
    ``resvar`` (N,: residual variance per degree of freedom, least squares only).
    """
    for t in prange(atoms.size):
        k = atoms[t]
        r = radius[k]
        size = (2 * int(np.ceil(r)) + 3) ** 2
        px = np.empty(size)
        py = np.empty(size)
        d = np.empty(size)
        o = np.zeros(size)
        m = _patch(img, cx[k], cy[k], r, px, py, d)
        npix[k] = m
        if m < _MIN_PIXELS:
            status[k] = TOO_FEW_PIXELS
            cov[k] = np.nan
            continue
        if use_others:
            for e in range(nbr_ptr[k], nbr_ptr[k + 1]):
                q = others[nbr_idx[e]]
                for u in range(m):
                    o[u] += sign * _gauss(q, px[u], py[u])
            if status[k] == OK:
                chi2 = 0.0
                for u in range(m):
                    var = max(abs(d[u]), 1.0) if poisson else resvar[k]
                    chi2 += o[u] * o[u] / var
                if chi2 < skip_chi2:
                    continue
        p = start[k].copy()
        c = np.empty((NPAR, NPAR))
        box = np.array([cx[k], cy[k], bound[k], min_sigma, max_sigma[k]])
        if not _feasible(p, box):
            # a start outside the bounds (e.g. a very broad moment estimate): round, mid-range width
            s0 = 0.5 * (min_sigma + max_sigma[k])
            p[0], p[1], p[3], p[4], p[5] = cx[k], cy[k], 1.0 / (s0 * s0), 0.0, 1.0 / (s0 * s0)
            p[2] = max(p[2], 1e-12)
        status[k] = _fit_one(p, px[:m], py[:m], d[:m], o[:m], sign, poisson, max_iter, c, box)
        params[k] = p
        cov[k] = c
        if not poisson:
            rss = 0.0
            for u in range(m):
                rss += (d[u] - o[u] - p[6] - sign * _gauss(p, px[u], py[u])) ** 2
            resvar[k] = rss / max(m - NPAR, 1)
