"""Predictive models structure -> spectrum scored by spatial block cross-validation; CCA and PLS.

Random K-fold CV on pixels of smooth maps leaks: a held-out pixel's neighbours (nearly the
same value) sit in the training set. Here the grid is cut into contiguous blocks, each
block is held out in turn, and a buffer of ``buffer_px`` pixels around it is removed from
the training set as well (Roberts et al. 2017, "Cross-validation strategies for data with
temporal, spatial, hierarchical, or phylogenetic structure"). R^2 is computed once on the
pooled out-of-block predictions.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage
from sklearn.cross_decomposition import CCA, PLSRegression
from sklearn.linear_model import RidgeCV

_ALPHAS = np.logspace(-3, 3, 13)


def block_folds(shape: tuple[int, int], block_px: int, buffer_px: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) boolean masks (flattened) for leave-one-block-out with a buffer."""
    ny, nx = shape
    iy = np.arange(ny) // block_px
    ix = np.arange(nx) // block_px
    label = iy[:, None] * (ix.max() + 1) + ix[None, :]
    folds = []
    structure = np.ones((2 * buffer_px + 1, 2 * buffer_px + 1), bool) if buffer_px > 0 else None
    for b in np.unique(label):
        test = label == b
        blocked = ndimage.binary_dilation(test, structure=structure) if structure is not None else test
        folds.append((~blocked.ravel(), test.ravel()))
    return folds


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ok = np.isfinite(pred)
    if ok.sum() < 3:
        return float("nan")
    y, pred = y[ok], pred[ok]
    tot = np.sum((y - y.mean()) ** 2)
    return float(1.0 - np.sum((y - pred) ** 2) / tot) if tot > 0 else float("nan")


def cv_r2_single(x: np.ndarray, y: np.ndarray, folds, min_train: int = 8) -> float:
    """Block-CV R^2 of the one-descriptor OLS model y = a + b x (x, y flattened maps, NaN = invalid)."""
    valid = np.isfinite(x) & np.isfinite(y)
    pred = np.full(y.shape, np.nan)
    for train, test in folds:
        tr = train & valid
        te = test & valid
        if tr.sum() < min_train or not te.any():
            continue
        xt, yt = x[tr], y[tr]
        vx = np.var(xt)
        slope = np.mean((xt - xt.mean()) * (yt - yt.mean())) / vx if vx > 0 else 0.0
        pred[te] = yt.mean() + slope * (x[te] - xt.mean())
    return _r2(y[valid], pred[valid])


def cv_r2_multi(X: np.ndarray, y: np.ndarray, folds, min_train: int = 8) -> float:
    """Block-CV R^2 of a ridge model (alpha by internal efficient LOO) on all descriptors.

    X : (n_pixels, n_descriptors), y : (n_pixels,); rows with any NaN are not used.
    """
    valid = np.all(np.isfinite(X), axis=1) & np.isfinite(y)
    pred = np.full(y.shape, np.nan)
    for train, test in folds:
        tr = train & valid
        te = test & valid
        if tr.sum() < max(min_train, X.shape[1] + 2) or not te.any():
            continue
        mu, sd = X[tr].mean(0), X[tr].std(0)
        sd[sd == 0] = 1.0
        model = RidgeCV(alphas=_ALPHAS).fit((X[tr] - mu) / sd, y[tr])
        pred[te] = model.predict((X[te] - mu) / sd)
    return _r2(y[valid], pred[valid])


def _standardise(A: np.ndarray, ref: np.ndarray) -> np.ndarray:
    sd = ref.std(0)
    return (A - ref.mean(0)) / np.where(sd > 0, sd, 1.0)


def cca_summary(X: np.ndarray, Y: np.ndarray, folds, structure_names, property_names) -> dict:
    """First canonical pair between the descriptor sets: in-sample r, loadings and block-CV r.

    The CV r correlates the pooled out-of-block canonical scores; each fold's sign is aligned
    to the full fit (a canonical pair is only defined up to a common sign flip).
    """
    valid = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Y), axis=1)
    Xv, Yv = X[valid], Y[valid]
    if Xv.shape[0] < 16:
        return {"r": float("nan"), "cv_r": float("nan"), "note": "fewer than 16 complete pixels"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's convergence chatter on near-degenerate sets
        full = CCA(n_components=1, max_iter=1000).fit(_standardise(Xv, Xv), _standardise(Yv, Yv))
        u, v = full.transform(_standardise(Xv, Xv), _standardise(Yv, Yv))
        r = float(np.corrcoef(u[:, 0], v[:, 0])[0, 1])
        su = np.full(X.shape[0], np.nan)
        sv = np.full(X.shape[0], np.nan)
        for train, test in folds:
            tr, te = train & valid, test & valid
            if tr.sum() < 16 or not te.any():
                continue
            m = CCA(n_components=1, max_iter=1000).fit(_standardise(X[tr], X[tr]), _standardise(Y[tr], Y[tr]))
            a, b = m.transform(_standardise(X[te], X[tr]), _standardise(Y[te], Y[tr]))
            sign = np.sign(m.x_weights_[:, 0] @ full.x_weights_[:, 0]) or 1.0
            su[te], sv[te] = sign * a[:, 0], sign * b[:, 0]
    ok = np.isfinite(su) & np.isfinite(sv)
    cv_r = float(np.corrcoef(su[ok], sv[ok])[0, 1]) if ok.sum() >= 3 else float("nan")
    return {"r": r, "cv_r": cv_r,
            "x_loadings": dict(zip(structure_names, map(float, full.x_loadings_[:, 0]))),
            "y_loadings": dict(zip(property_names, map(float, full.y_loadings_[:, 0]))),
            "n": int(valid.sum())}


def pls_summary(X: np.ndarray, Y: np.ndarray, folds, structure_names, property_names) -> dict:
    """PLS regression structure -> spectra: in-sample and block-CV R^2 per property, loadings."""
    valid = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Y), axis=1)
    Xv, Yv = X[valid], Y[valid]
    k = int(min(2, X.shape[1], Y.shape[1]))
    if Xv.shape[0] < 16:
        return {"n_components": k, "note": "fewer than 16 complete pixels"}
    full = PLSRegression(n_components=k).fit(Xv, Yv)
    fit = full.predict(Xv).reshape(Yv.shape)
    pred = np.full(Y.shape, np.nan)
    for train, test in folds:
        tr, te = train & valid, test & valid
        if tr.sum() < 16 or not te.any():
            continue
        pred[te] = PLSRegression(n_components=k).fit(X[tr], Y[tr]).predict(X[te]).reshape(-1, Y.shape[1])
    return {"n_components": k,
            "r2": {p: _r2(Yv[:, j], fit[:, j]) for j, p in enumerate(property_names)},
            "cv_r2": {p: _r2(Y[valid, j], pred[valid, j]) for j, p in enumerate(property_names)},
            "x_loadings": {s: [float(v) for v in full.x_loadings_[i]] for i, s in enumerate(structure_names)},
            "y_loadings": {p: [float(v) for v in full.y_loadings_[j]] for j, p in enumerate(property_names)},
            "n": int(valid.sum())}
