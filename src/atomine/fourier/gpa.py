"""Geometric phase analysis (Hytch, Snoeck & Kilaas, Ultramicroscopy 74, 131 (1998)).

For a Bragg reflection g the image is filtered with a Gaussian mask centred on g in
Fourier space, giving the complex image H_g(r) = A_g(r) exp(i [2 pi g.r + P_g(r)]).
A lattice displaced by u(r), I(r) = I_0(r - u), has P_g = -2 pi g.u, so two
non-collinear reflections give the displacement field

    u = -(P_1 a_1 + P_2 a_2) / (2 pi),

with a_i the real-space basis dual to g_i (a_i . g_j = delta_ij). The local lattice has
reciprocal vectors g_i + grad P_i / (2 pi); rotation and strain are taken from it exactly
as in :func:`~.lattice.local_lattice` (polar decomposition, valid for large rotations),
which to first order is the usual D = grad u = -(1 / 2 pi) A grad P.
Phase gradients are taken from wrapped differences of exp(i P), so no unwrapping is
needed. Conventions as everywhere in atomine: x right, y down (nm); rotation in
degrees counter-clockwise as displayed; strain tensile positive.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import xarray as xr

from ..data import axis_offset, axis_scale, axis_units, with_step
from ..errors import InputError
from .lattice import _DERIVED, _derived

_ROWS = 256  # image rows per slab of the strain/rotation evaluation


def gpa(image: xr.DataArray, g_vectors, *, sigma_nm: float | None = None, reference=None,
        maps: str = "all") -> xr.Dataset:
    """Phase, displacement, strain and rotation maps of a lattice image at image resolution.

    Parameters
    ----------
    image : xarray.DataArray (y, x)
        Calibrated image (nm); a dask-backed image is loaded (the method needs the whole
        image's FFT).
    g_vectors : array_like, shape (2, 2)
        Rows g1, g2 = (gx, gy), cycles/nm, two non-collinear Bragg peaks (e.g. from
        :func:`~.lattice.find_lattice_peaks` on :func:`~.lattice.power_spectrum`).
    sigma_nm : float, optional
        Spatial resolution: standard deviation (nm) of the real-space smoothing the Gaussian
        Fourier mask amounts to (mask sigma in k: 1 / (2 pi sigma_nm)). Default one
        lattice spacing, 1 / min |g|.
    reference : boolean (y, x) mask or box (x0, x1, y0, y1) in nm, optional
        Region taken as unstrained and unrotated: g_i are refined so its mean phase
        gradient vanishes. Default: the given g_i are the reference lattice.
    maps : {"all", "phases"}
        "phases" returns only the phase and amplitude maps (all that dislocation finding
        needs), skipping the gradients, displacement, strain and rotation: ~2x faster.

    Returns
    -------
    xarray.Dataset on (y, x)
        ``phase1, phase2`` (rad, wrapped to [-pi, pi), reference ramps removed),
        ``amplitude1, amplitude2`` (image units; low where the lattice is absent),
        ``ux, uy`` (nm, from the wrapped phases, so defined modulo a lattice vector),
        ``exx, eyy, exy`` (1), ``rotation`` (degrees). attrs: ``g`` (the refined
        reference g_i, 1/nm), ``a`` (rows a_i, nm), ``sigma_nm``.
    """
    if maps not in ("all", "phases"):
        raise InputError(f"maps must be 'all' or 'phases', got {maps!r}")
    data, (sy, sx), (oy, ox), units = _image(image)
    g = _check_g(g_vectors, (sy, sx), data.shape)
    sigma_nm = 1.0 / float(np.min(np.linalg.norm(g, axis=1))) if sigma_nm is None else float(sigma_nm)
    if not np.isfinite(sigma_nm) or sigma_nm <= 0:
        raise InputError(f"sigma_nm must be a positive length in nm, got {sigma_nm!r}")
    if 2 * np.pi * sigma_nm * np.min(np.linalg.norm(g, axis=1)) < 2.0:
        raise InputError(f"sigma_nm={sigma_nm:g} is too small: the Fourier mask would overlap k = 0; use at least "
                         f"{2.0 / (2 * np.pi * np.min(np.linalg.norm(g, axis=1))):.3g} nm")
    ny, nx = data.shape
    y = oy + sy * np.arange(ny)
    x = ox + sx * np.arange(nx)
    # single precision halves the memory of the full-image transforms; phases keep ~1e-7 rad
    spectrum = scipy.fft.fft2(_periodic_component((data - data.mean()).astype(np.float32)), workers=-1)
    del data
    sigma_k = 1.0 / (2.0 * np.pi * sigma_nm)
    fields, grads = _geometric_phases(spectrum, g, sigma_k, y, x, gradients=maps == "all" or reference is not None)
    if reference is not None:
        sel = _reference_mask(reference, y, x)
        for _ in range(2):  # refine g, then filter again with masks centred on it: an off-centre mask biases phases
            shift = np.array([[np.mean(grads[i, j][sel]) for j in range(2)] for i in range(2)])
            g = g + shift / (2 * np.pi)  # dP/dr = 2 pi (g_local - g)
            fields, grads = _geometric_phases(spectrum, g, sigma_k, y, x)
    a = np.linalg.inv(g)  # columns a1, a2
    if maps == "phases":
        return _phase_dataset(image, fields, g, a, sigma_nm, units, y, x, reference, g_vectors)
    # local reciprocal basis g'_i = g_i + grad P_i / 2 pi; rotation and strain then follow exactly as
    # for the sliding-FFT lattice (polar decomposition of F = A' A^-1), so both methods agree
    maps = np.empty((4, ny, nx), dtype=np.float32)
    cols = [_DERIVED.index(k) for k in ("rotation", "exx", "eyy", "exy")]
    for r0 in range(0, ny, _ROWS):  # row slabs bound the float64 temporaries of the decomposition
        local = g[None, None] + np.moveaxis(grads[:, :, r0:r0 + _ROWS], (0, 1), (2, 3)) / (2 * np.pi)
        maps[:, r0:r0 + _ROWS] = np.moveaxis(_derived(local, g)[..., cols], -1, 0)
    rotation, exx, eyy, exy = maps
    phases = [np.angle(f) for f in fields]  # float32 from the complex64 fields
    c = (-a / (2 * np.pi)).astype(np.float32)
    ux = phases[0] * c[0, 0] + phases[1] * c[0, 1]
    uy = phases[0] * c[1, 0] + phases[1] * c[1, 1]
    dims = ("y", "x")
    f32 = np.float32
    ds = xr.Dataset(
        {"phase1": (dims, phases[0].astype(f32), {"units": "rad"}),
         "phase2": (dims, phases[1].astype(f32), {"units": "rad"}),
         "amplitude1": (dims, np.abs(fields[0]).astype(f32), {"units": "a.u."}),
         "amplitude2": (dims, np.abs(fields[1]).astype(f32), {"units": "a.u."}),
         "ux": (dims, ux.astype(f32), {"units": units, "long_name": "displacement x (modulo a lattice vector)"}),
         "uy": (dims, uy.astype(f32), {"units": units, "long_name": "displacement y (modulo a lattice vector)"}),
         "exx": (dims, exx.astype(f32), {"units": "1"}),
         "eyy": (dims, eyy.astype(f32), {"units": "1"}),
         "exy": (dims, exy.astype(f32), {"units": "1"}),
         "rotation": (dims, rotation.astype(f32), {"units": "deg",
                                                    "long_name": "lattice rotation, counter-clockwise as displayed"})},
        coords={"y": ("y", y, {"units": units}), "x": ("x", x, {"units": units})},
        attrs={"g": g.tolist(), "a": a.T.tolist(), "sigma_nm": sigma_nm, "length_units": units,
               "provenance": list(image.attrs.get("provenance", []))})
    return with_step(ds, "fourier.gpa", {"g_vectors": np.asarray(g_vectors, dtype=float).tolist(), "sigma_nm": sigma_nm,
                                         "reference": None if reference is None else _describe(reference)})


def _phase_dataset(image, fields, g, a, sigma_nm, units, y, x, reference, g_vectors) -> xr.Dataset:
    dims = ("y", "x")
    f32 = np.float32
    ds = xr.Dataset(
        {"phase1": (dims, np.angle(fields[0]).astype(f32), {"units": "rad"}),
         "phase2": (dims, np.angle(fields[1]).astype(f32), {"units": "rad"}),
         "amplitude1": (dims, np.abs(fields[0]).astype(f32), {"units": "a.u."}),
         "amplitude2": (dims, np.abs(fields[1]).astype(f32), {"units": "a.u."})},
        coords={"y": ("y", y, {"units": units}), "x": ("x", x, {"units": units})},
        attrs={"g": g.tolist(), "a": a.T.tolist(), "sigma_nm": sigma_nm, "length_units": units,
               "provenance": list(image.attrs.get("provenance", []))})
    return with_step(ds, "fourier.gpa", {"g_vectors": np.asarray(g_vectors, dtype=float).tolist(), "sigma_nm": sigma_nm,
                                         "reference": None if reference is None else _describe(reference),
                                         "maps": "phases"})


def _geometric_phases(spectrum, g, sigma_k: float, y, x, gradients: bool = True):
    """Complex fields A_i exp(i P_i) (carrier removed) and phase gradients (2, (d/dx, d/dy), ny, nx) in rad/nm."""
    sy, sx = float(y[1] - y[0]), float(x[1] - x[0])
    ky = scipy.fft.fftfreq(y.size, d=sy)[:, None]
    kx = scipy.fft.fftfreq(x.size, d=sx)[None, :]
    fields = []
    for gx, gy in g:  # the two reflections
        mask = np.exp(-((kx - gx) ** 2 + (ky - gy) ** 2) / (2.0 * sigma_k**2)).astype(np.float32)
        h = scipy.fft.ifft2(spectrum * mask, workers=-1)
        # remove the carrier 2 pi g.r: what remains is A exp(i P)
        carrier = (np.exp(-2j * np.pi * gy * y)[:, None].astype(np.complex64)
                   * np.exp(-2j * np.pi * gx * x)[None, :].astype(np.complex64))
        fields.append(h * carrier)
    if not gradients:
        return fields, None
    return fields, np.array([_phase_gradient(f, sy, sx) for f in fields], dtype=np.float32)


def _image(image):
    if not isinstance(image, xr.DataArray) or tuple(image.dims) != ("y", "x"):
        dims = (tuple(image.dims) if isinstance(image, xr.DataArray)
                else f"{type(image).__name__} of ndim {np.ndim(image)}")
        raise InputError(f"gpa needs a 2-D image DataArray with dims ('y', 'x'), got {dims}")
    data = np.asarray(image.data.compute() if hasattr(image.data, "compute") else image.data, dtype=np.float64)
    if min(data.shape) < 16:
        raise InputError(f"the image is {data.shape[0]} x {data.shape[1]} px; GPA needs at least 16 a side")
    if not np.all(np.isfinite(data)):
        raise InputError("the image contains NaN or inf; fill or crop unmeasured pixels first")
    scale = (axis_scale(image, "y"), axis_scale(image, "x"))
    return data, scale, (axis_offset(image, "y"), axis_offset(image, "x")), axis_units(image, "x") or "px"


def _check_g(g_vectors, scale, shape) -> np.ndarray:
    g = np.asarray(g_vectors, dtype=np.float64)
    if g.shape != (2, 2) or not np.all(np.isfinite(g)):
        raise InputError(f"g_vectors must be two finite rows (gx, gy) in cycles/nm, got shape {g.shape}")
    norms = np.linalg.norm(g, axis=1)
    if np.any(norms == 0) or abs(np.linalg.det(g)) < 1e-6 * np.prod(norms):
        raise InputError("g_vectors are zero or collinear; give two non-collinear Bragg peaks")
    nyq = 0.5 / np.array(scale)
    if np.any(np.abs(g[:, 1]) >= nyq[0]) or np.any(np.abs(g[:, 0]) >= nyq[1]):
        raise InputError("a g vector lies beyond the Nyquist frequency of the image; check its units (cycles/nm)")
    if np.min(norms) * min(shape[0] * abs(scale[0]), shape[1] * abs(scale[1])) < 4:
        raise InputError("the image holds fewer than 4 lattice periods along an axis; GPA needs a larger field of view")
    return g


def _periodic_component(u: np.ndarray) -> np.ndarray:
    """The periodic part of Moisan's periodic-plus-smooth decomposition (J. Math. Imaging Vis. 39, 161 (2011)).

    An image is not periodic in its box; the seam between opposite edges puts streaks
    through every Bragg peak of its FFT, which bias the phases far into the interior.
    The smooth part carries those seams (it solves Laplace's equation with the edge
    jumps as sources); what remains has the same lattice and a clean spectrum.
    """
    ny, nx = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] -= u[-1, :] - u[0, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] -= u[:, -1] - u[:, 0]
    q = np.arange(ny)[:, None]
    r = np.arange(nx)[None, :]
    denom = (2 * np.cos(2 * np.pi * q / ny) + 2 * np.cos(2 * np.pi * r / nx) - 4).astype(u.dtype)
    denom[0, 0] = 1.0
    smooth = scipy.fft.fft2(v, workers=-1) / denom
    smooth[0, 0] = 0.0
    return u - np.real(scipy.fft.ifft2(smooth, workers=-1))


def _phase_gradient(field: np.ndarray, sy: float, sx: float) -> np.ndarray:
    """(dP/dx, dP/dy) in rad per length unit of the phase of a complex field, from wrapped differences."""
    z = field / np.maximum(np.abs(field), 1e-30)
    out = np.empty((2,) + field.shape)
    for axis, (step, k) in enumerate(((sx, 1), (sy, 0))):
        fwd = np.angle(np.roll(z, -1, axis=k) * np.conj(z))
        # central difference from the two one-sided wrapped differences; one-sided at the edges
        grad = 0.5 * (fwd + np.roll(fwd, 1, axis=k))
        if k == 1:
            grad[:, 0], grad[:, -1] = fwd[:, 0], fwd[:, -2]
        else:
            grad[0, :], grad[-1, :] = fwd[0, :], fwd[-2, :]
        out[axis] = grad / step
    return out


def _reference_mask(reference, y, x) -> np.ndarray:
    ref = np.asarray(reference.values if isinstance(reference, xr.DataArray) else reference)
    if ref.shape == (y.size, x.size) and ref.dtype == bool:
        sel = ref
    elif ref.shape == (4,) and ref.dtype.kind in "iuf":
        x0, x1, y0, y1 = ref.astype(float)
        sel = ((x[None, :] >= min(x0, x1)) & (x[None, :] <= max(x0, x1))
               & (y[:, None] >= min(y0, y1)) & (y[:, None] <= max(y0, y1)))
    else:
        raise InputError(f"reference must be a boolean mask of shape {(y.size, x.size)} or a box (x0, x1, y0, y1) "
                         f"in nm, got an array of shape {ref.shape}")
    if not sel.any():
        raise InputError("the reference region holds no pixel of the image; check its coordinates (nm)")
    return sel


def _describe(reference):
    ref = np.asarray(reference.values if isinstance(reference, xr.DataArray) else reference)
    return {"box_nm": ref.astype(float).tolist()} if ref.shape == (4,) else {"mask_pixels": int(ref.sum())}


__all__ = ["gpa"]
