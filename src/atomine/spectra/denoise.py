"""PCA denoising of spectrum images that reports what it removed.

The spectra are Poisson-weighted (:mod:`.weighting`) so every channel carries unit noise
variance, the number of signal components K is chosen by a stated criterion, and each
spectrum is replaced by its projection on the mean plus the first K principal axes
(:class:`atomine.unmix.PCA`), mapped back to counts. K counts the dimension of the
*uncentred* signal subspace (K endmembers give K); keeping the mean plus K centred axes
contains that subspace whether or not the abundances sum to one (thickness changes), at
the price of one extra noise dimension out of m.

Criteria for K:

* ``"noise-floor"`` (default): eigenvalues ``s_i^2 / max(n, m)`` of the uncentred
  weighted data above the largest eigenvalue pure noise of variance sigma^2 can give, the
  Marchenko-Pastur edge ``sigma^2 (1 + sqrt(min(n, m) / max(n, m)))^2`` (times 1.05 for
  finite-size fluctuations). sigma^2 is measured from the bulk of the scree (median
  eigenvalue over the Marchenko-Pastur median), so it holds for gain-scaled counts too; on
  Poisson-weighted counts it comes out near 1.
* ``"hysime"`` / ``"cv"``: :func:`atomine.unmix.estimate_n_components` on the weighted
  data. HySime's regression noise estimate is biased low when pixels are not many times
  the channels (it gave 51-52 on the 2304 x 500 'eels-si-mixed'), so it is not the default.

What was removed is reported per pixel as the reduced chi-square of the removed part
against the Poisson expectation (the denoised counts): about 1 everywhere means only
noise was removed; a pixel or region well above 1 lost signal.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..data import with_step
from ..errors import InputError
from ..unmix import PCA, estimate_n_components
from ._checks import is_dask
from .weighting import poisson_weights

_CRITERIA = ("noise-floor", "hysime", "cv")
_EDGE_MARGIN = 1.05  # finite-size (Tracy-Widom) scatter of the largest noise eigenvalue is a few % here


@dataclass(frozen=True)
class DenoiseReport:
    """What :func:`pca_denoise` kept and removed.

    Attributes
    ----------
    n_components : int
        K, the principal axes kept (besides the mean spectrum).
    criterion : str
        How K was chosen: "noise-floor", "hysime", "cv" or "given".
    weighted : bool
        Whether the PCA ran on Poisson-weighted data.
    eigenvalues : ndarray
        Scree: ``s_i^2 / max(n, m)`` of the uncentred (weighted) data, largest first
        (weighted units: ~1 per noise eigenvalue on Poisson counts).
    noise_variance : float
        sigma^2 of the noise per element measured from the scree (weighted units).
    noise_floor : float
        Marchenko-Pastur edge ``sigma^2 (1 + sqrt(gamma))^2``: no pure-noise eigenvalue lies above it.
    variance_removed : float
        Fraction of the data's variance about the mean spectrum that was removed (counts^2 / counts^2).
    removed_norm : float
        Frobenius norm of the removed spectrum image (data units, e.g. counts).
    removed_norm_fraction : float
        ``removed_norm`` over the Frobenius norm of the data.
    chi2_map : xarray.DataArray (pixel dims)
        Reduced chi-square of the removed part per pixel, ``sum_j R_ij^2 / var_ij / (m - K)``,
        with ``var_ij`` the Poisson expectation (denoised counts); ~1 where only noise went.
    chi2_mean : float
        Mean of ``chi2_map``.
    dof : int
        Degrees of freedom per pixel, ``m - K``.
    noise_model : str
        "poisson" (counts) or "white" (data with negative values: the scree's sigma^2 is used).
    """

    n_components: int
    criterion: str
    weighted: bool
    eigenvalues: np.ndarray
    noise_variance: float
    noise_floor: float
    variance_removed: float
    removed_norm: float
    removed_norm_fraction: float
    chi2_map: xr.DataArray
    chi2_mean: float
    dof: int
    noise_model: str


def _mp_median(gamma: float) -> float:
    """Median of the Marchenko-Pastur law of aspect ratio gamma (0 < gamma <= 1) and unit variance."""
    a, b = (1.0 - np.sqrt(gamma)) ** 2, (1.0 + np.sqrt(gamma)) ** 2
    x = np.linspace(a, b, 20001)[1:-1]
    dens = np.sqrt((b - x) * (x - a)) / (2.0 * np.pi * gamma * x)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(x))])
    return float(np.interp(0.5 * cdf[-1], cdf, x))


def scree(Xw) -> tuple[np.ndarray, float, float]:
    """(eigenvalues ``s^2 / max(n, m)`` largest first, noise variance sigma^2, Marchenko-Pastur edge).

    ``Xw`` is an (n, m) numpy or dask matrix; only an m x m (or n x n) Gram matrix is formed.
    """
    n, m = Xw.shape
    if is_dask(Xw):
        gram = np.asarray((Xw.T @ Xw).compute()) if m <= n else np.asarray((Xw @ Xw.T).compute())
    else:
        gram = Xw.T @ Xw if m <= n else Xw @ Xw.T
    evals = np.sort(np.linalg.eigvalsh((gram + gram.T) / 2.0))[::-1] / max(n, m)
    evals = np.maximum(evals, 0.0)
    gamma = min(n, m) / max(n, m)
    # signal eigenvalues are few: the median of all of them is the noise bulk's median
    sigma2 = float(np.median(evals) / _mp_median(gamma))
    return evals, sigma2, sigma2 * (1.0 + np.sqrt(gamma)) ** 2


def _choose_k(Xw, evals: np.ndarray, edge: float, criterion: str, random_state) -> int:
    if criterion == "noise-floor":
        return max(1, int(np.count_nonzero(evals > _EDGE_MARGIN * edge)))
    return estimate_n_components(Xw, criterion, random_state=random_state)[0]


def _check_args(n_components, criterion, n, m) -> None:
    if criterion not in _CRITERIA:
        raise InputError(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
    if n_components is not None and (isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral)
                                     or not 1 <= n_components < min(n, m)):
        raise InputError(f"n_components must be None or a whole number from 1 to {min(n, m) - 1}, got {n_components!r}")


def pca_denoise(si: xr.DataArray, n_components: int | None = None, *, weighted: bool = True,
                criterion: str = "noise-floor", random_state=0):
    """Denoise a spectrum image by PCA on Poisson-weighted data and report what was removed.

    Parameters
    ----------
    si : xarray.DataArray, dims (..., spectral) e.g. ("y", "x", "energy")
        Raw counts (numpy or dask backed), spectral axis last. Weighting needs counts, not
        background-subtracted data.
    n_components : int, optional
        Principal axes to keep besides the mean; None chooses it by ``criterion``.
    weighted : bool
        Poisson-weight the data first (Keenan & Kotula); turn off for data that are not counts.
    criterion : {"noise-floor", "hysime", "cv"}
        How to choose ``n_components`` when it is None (see the module docstring).
    random_state : None, int or numpy Generator
        Seed of the randomized SVD and of "cv".

    Returns
    -------
    denoised : xarray.DataArray
        Same dims, coords and attrs (float32; provenance step ``spectra.pca_denoise``);
        lazy for dask input.
    report : DenoiseReport
        K and how it was chosen, the scree and noise floor, the variance fraction and norm
        removed, and the per-pixel chi-square map of the removed part.

    Raises
    ------
    InputError
        Not a DataArray, fewer than 3 pixels or channels, NaN/inf, bad n_components or
        criterion, or weighted=True on data whose mean spectrum is negative.
    """
    if not isinstance(si, xr.DataArray) or si.ndim < 2:
        raise InputError("si must be an xarray.DataArray with pixel dims and the spectral axis last "
                         "(e.g. atomine.data.spectrum_image)")
    lazy = is_dask(si.data)
    X = si.data.reshape(-1, si.shape[-1]).astype(np.float64)
    n, m = X.shape
    if n < 3 or m < 3:
        raise InputError(f"PCA denoising needs at least 3 pixels and 3 channels, got {n} x {m}")
    _check_args(n_components, criterion, n, m)
    if not lazy and not np.all(np.isfinite(X)):
        raise InputError("si holds NaN or inf values; mask or fill them before denoising")
    w = poisson_weights(X) if weighted else None
    Xw = w.weight(X) if weighted else X
    evals, sigma2, edge = scree(Xw)
    chosen = "given" if n_components is not None else criterion
    k = int(n_components) if n_components is not None else _choose_k(Xw, evals, edge, criterion, random_state)
    k = min(k, min(n, m) - 1)
    pca = PCA(k, method="randomized" if 4 * k < min(n, m) else "full", random_state=random_state).fit(Xw)
    Dw = pca.inverse_transform(pca.abundances_)
    D = w.unweight(Dw) if weighted else Dw
    R = X - D
    mean_count = X.mean()
    counts = bool(w is not None or (float(mean_count.compute() if lazy else mean_count) >= 0
                                    and float((X.min().compute() if lazy else X.min())) >= 0))
    if counts:
        # Poisson expectation = denoised counts; a floor keeps near-empty channels from dividing by ~0
        var = np.maximum(D, 1e-2 * mean_count)
        noise_model = "poisson"
    else:
        var = sigma2
        noise_model = "white"
    dof = m - k
    chi2 = (R * R / var).sum(axis=1) / dof
    centred = X - X.mean(axis=0)
    parts = [chi2, (R * R).sum(), (centred * centred).sum(), (X * X).sum()]
    if lazy:
        import dask

        parts = list(dask.compute(*parts))
    chi2, rss, tss, xss = (np.asarray(p, dtype=np.float64) for p in parts)
    pixel_dims = si.dims[:-1]
    chi2_map = xr.DataArray(chi2.reshape(si.shape[:-1]), dims=pixel_dims,
                            coords={d: si.coords[d] for d in pixel_dims if d in si.coords}, name="chi2_removed",
                            attrs={"units": "", "long_name": "reduced chi-square of the removed part"})
    denoised = si.copy(data=D.reshape(si.shape).astype(np.float32))
    params = {"n_components": k, "criterion": chosen, "weighted": bool(weighted)}
    denoised = with_step(denoised, "spectra.pca_denoise", params)
    report = DenoiseReport(
        n_components=k, criterion=chosen, weighted=bool(weighted), eigenvalues=evals, noise_variance=sigma2,
        noise_floor=edge, variance_removed=float(rss / tss) if tss > 0 else 0.0, removed_norm=float(np.sqrt(rss)),
        removed_norm_fraction=float(np.sqrt(rss / xss)) if xss > 0 else 0.0, chi2_map=chi2_map,
        chi2_mean=float(chi2.mean()), dof=int(dof), noise_model=noise_model)
    return denoised, report


__all__ = ["DenoiseReport", "pca_denoise", "scree"]
