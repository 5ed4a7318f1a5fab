"""Poisson noise weighting of count spectra before PCA or unmixing (Keenan & Kotula 2004).

PCA ranks directions by variance, so on raw counts it ranks the noise too: a channel with
many counts carries more Poisson variance than a channel with few and pulls principal
axes towards itself. M. R. Keenan and P. G. Kotula (Surf. Interface Anal. 36, 203, 2004)
scale the data matrix ``X`` (n pixels, m channels) so the noise becomes homoscedastic.
If the expected counts are about rank one, ``mu_ij ~ g_i h_j / c`` with ``g`` the mean
image, ``h`` the mean spectrum and ``c`` their common mean, then

    X_w = X / (sqrt(g_i / c) sqrt(h_j))

has noise variance ``mu_ij / (g_i h_j / c) ~ 1`` in every pixel and channel. The pixel
factor ``sqrt(g / c)`` is close to 1 for a spectrum image of constant dose and thickness;
folding ``c`` into it keeps the channel factor ``sqrt(h)`` the same in the full and the
channel-only weighting.

A factorisation of the weighted data ``X_w ~ C_w S_w`` maps back to counts as
``X ~ (p C_w)(S_w b)`` with p the pixel and b the channel factor. The pixel scaling
changes every abundance row by ``1 / p_i``, so rows that summed to one no longer do:
sum-to-one unmixing must use :attr:`PoissonWeights.channel_only`, whose abundances are
the counts-space abundances themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import InputError
from ._checks import is_dask


def _as_matrix(X, what: str):
    """(n, m) numpy or dask view of spectra with the channel axis last, plus the leading shape."""
    data = X.data if isinstance(X, xr.DataArray) else X
    if not is_dask(data):
        data = np.asarray(data)
    if data.ndim < 2:
        raise InputError(f"{what} must hold several spectra (pixels, ..., channels), got shape {data.shape}")
    if np.dtype(data.dtype).kind not in "biuf":
        raise InputError(f"{what} has non-numeric dtype {data.dtype}")
    lead = tuple(data.shape[:-1])
    return data.reshape(-1, data.shape[-1]), lead


@dataclass(frozen=True)
class PoissonWeights:
    """Pixel and channel factors that make Poisson noise unit-variance: ``X_w = X / (pixel[:, None] channel)``.

    Attributes
    ----------
    pixel : ndarray (n,)
        ``sqrt(g / c)``: mean image over its own mean (all ones for :attr:`channel_only`).
    channel : ndarray (m,)
        ``sqrt(h)``: square root of the mean spectrum (counts^0.5).
    shape : tuple of int
        Leading (pixel) shape of the data the weights were computed from, e.g. ``(ny, nx)``.
    pixel_scaling : bool
        False for :attr:`channel_only` weights, which then apply to any number of spectra
        (e.g. endmembers as well as pixels).
    """

    pixel: np.ndarray
    channel: np.ndarray
    shape: tuple
    pixel_scaling: bool = True

    @property
    def channel_only(self) -> "PoissonWeights":
        """The same channel factors with unit pixel factors: weighting that keeps abundances summing to one."""
        return PoissonWeights(np.ones_like(self.pixel), self.channel, self.shape, pixel_scaling=False)

    def _check(self, n: int | None, m: int | None, what: str) -> None:
        if m is not None and m != self.channel.size:
            raise InputError(f"{what} has {m} channels but the weights were computed for {self.channel.size}")
        if n is not None and n != self.pixel.size:
            raise InputError(f"{what} has {n} pixels but the weights were computed for {self.pixel.size}")

    def _apply(self, X, power: float, what: str):
        flat, lead = _as_matrix(X, what)
        self._check(flat.shape[0] if self.pixel_scaling else None, flat.shape[1], what)
        out = flat.astype(np.float64) * self.channel[None, :] ** power
        if self.pixel_scaling:
            out = out * self.pixel[:, None] ** power
        out = out.reshape(*lead, flat.shape[1])
        if isinstance(X, xr.DataArray):
            attrs = dict(X.attrs)
            attrs["units"] = "" if power < 0 else attrs.get("units", "counts")
            return X.copy(data=out).assign_attrs(attrs)
        return out

    def weight(self, X):
        """Weighted data ``X / (pixel channel)``: numpy, dask (lazy) or DataArray in, the same out."""
        return self._apply(X, -1.0, "the data to weight")

    def unweight(self, X_w):
        """Back to counts: ``X_w * pixel * channel`` (e.g. a denoised weighted reconstruction)."""
        return self._apply(X_w, 1.0, "the weighted data")

    def unweight_components(self, S):
        """Components (k, m) found on weighted data, back in counts per channel: ``S * channel``."""
        S = np.asarray(S, dtype=np.float64)
        if S.ndim != 2:
            raise InputError(f"components must be (k, channels), got shape {S.shape}")
        self._check(None, S.shape[1], "the components")
        return S * self.channel[None, :]

    def unweight_scores(self, C):
        """Scores / abundances (n, k) found on weighted data, back in counts-space units: ``C * pixel``."""
        lazy = is_dask(C)
        C = C if lazy else np.asarray(C, dtype=np.float64)
        if C.ndim != 2:
            raise InputError(f"scores must be (pixels, k), got shape {C.shape}")
        if not self.pixel_scaling:
            return C  # channel-only weighting leaves scores in counts-space units already
        self._check(C.shape[0], None, "the scores")
        return C * self.pixel[:, None]


def poisson_weights(X) -> PoissonWeights:
    """Keenan-Kotula weights of count data from its mean image and mean spectrum.

    Parameters
    ----------
    X : array_like, dask array or xarray.DataArray, shape (..., m)
        Counts (not background-subtracted: the weighting needs the Poisson mean), e.g. a
        ``("y", "x", "energy")`` spectrum image or an (n, m) matrix. Dask input costs one
        pass for the two means; nothing else is computed.

    Returns
    -------
    PoissonWeights
        ``weight(X)`` divides by ``sqrt(g_i / c) sqrt(h_j)`` (unit noise variance),
        ``unweight_components`` / ``unweight_scores`` map factors back to counts.

    Raises
    ------
    InputError
        Fewer than 2 pixels, NaN/inf, or a negative mean image / spectrum (not counts).
    """
    flat, lead = _as_matrix(X, "the counts")
    n, m = flat.shape
    if n < 2 or m < 2:
        raise InputError(f"Poisson weighting needs at least 2 pixels and 2 channels, got {n} x {m}")
    g = flat.mean(axis=1, dtype=np.float64)
    h = flat.mean(axis=0, dtype=np.float64)
    if is_dask(flat):
        import dask

        g, h = dask.compute(g, h)  # two small vectors: the only thing read eagerly
    g, h = np.asarray(g, dtype=np.float64), np.asarray(h, dtype=np.float64)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
        raise InputError("the counts hold NaN or inf values; mask or fill them before weighting")
    if g.min() < 0 or h.min() < 0:
        raise InputError("the mean image or mean spectrum is negative, so these are not Poisson counts; weight the raw "
                         "counts before background subtraction (or use weighted=False)")
    c = float(g.mean())
    if c <= 0:
        raise InputError("the data hold no counts; nothing to weight")
    # an empty pixel or channel is all zeros; any positive floor leaves its weighted values at 0
    tiny = 1e-12 * c
    return PoissonWeights(np.sqrt(np.maximum(g, tiny) / c), np.sqrt(np.maximum(h, tiny)), lead)


__all__ = ["PoissonWeights", "poisson_weights"]
