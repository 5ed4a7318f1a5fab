"""Registration of a spectrum image's simultaneous channel onto a high-resolution image.

The two data sets differ in pixel size and field of view. :func:`register`
(1) checks both calibrations, (2) smooths the fixed image over one spectral
pixel's footprint, (3) searches rotation (Fourier-Mellin candidate plus a
coarse angle grid) and translation (normalised cross-correlation template
match, sub-pixel by parabola), (4) refines all six affine parameters by
maximising the NCC, and (5) reports quality and refuses doubtful results.
:func:`to_image` / :func:`to_spectral` move maps between the two frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import ndimage, optimize

from ..errors import InputError, RegistrationError
from . import _register_search as _search
from .transform import AffineTransform


@dataclass
class Registration:
    """Result of :func:`register`.

    Attributes
    ----------
    transform : AffineTransform
        Spectral frame (nm) -> image frame (nm).
    residual : float
        ``1 - NCC`` of the moving image against the footprint-smoothed fixed image
        over the overlap, after registration (0 = perfect match, 1 = no correlation).
    confidence : float
        Significance of the chosen translation over the best distinct alternative
        (the runner-up local maximum of the NCC surface more than 1.5 spectral pixels
        away): ``(r1 - r2) * sqrt(n) / (1 - r1**2)``, i.e. the NCC gap in units of
        the NCC's standard error over ``n`` overlap pixels. A lattice-period
        ambiguity or pure noise gives values near 0; > 3 is a clear winner.
    error_px : float
        Estimated registration error in spectral pixels from sub-window
        consistency: each quadrant of the moving image is re-registered (shift
        only) from the final transform; ``error_px = rms(quadrant shifts) / 2``
        (four quadrants, each with a quarter of the pixels).
    overlap : float
        Fraction of the spectral pixel centres that land inside the image field of view.
    method : str
        The steps used.
    """

    transform: AffineTransform
    residual: float
    confidence: float
    error_px: float
    overlap: float
    method: str

    def to_dict(self) -> dict:
        """JSON-serialisable form (the transform as :meth:`AffineTransform.to_dict`)."""
        return {"transform": self.transform.to_dict(), "residual": float(self.residual),
                "confidence": float(self.confidence), "error_px": float(self.error_px),
                "overlap": float(self.overlap), "method": self.method}


@dataclass
class _Grid:
    """A checked, increasing (y, x) grid: origin, pitch (nm) and shape."""

    values: np.ndarray
    x0: float
    y0: float
    dx: float
    dy: float
    unit: str

    @property
    def shape(self):
        return self.values.shape

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        yy, xx = np.mgrid[: self.shape[0], : self.shape[1]]
        return self.x0 + xx * self.dx, self.y0 + yy * self.dy

    def to_px(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of physical positions."""
        return (np.asarray(y) - self.y0) / self.dy, (np.asarray(x) - self.x0) / self.dx

    def inside(self, x, y) -> np.ndarray:
        r, c = self.to_px(x, y)
        return (r >= -0.5) & (r <= self.shape[0] - 0.5) & (c >= -0.5) & (c <= self.shape[1] - 0.5)


def _grid(da, name: str, *, need_values: bool = True) -> _Grid:
    if not isinstance(da, xr.DataArray) or set(da.dims) != {"y", "x"}:
        raise InputError(f"{name} must be a DataArray with dims ('y', 'x'); got "
                         f"{getattr(da, 'dims', type(da).__name__)}")
    da = da.transpose("y", "x")
    pitch, origin, units = {}, {}, {}
    for d in ("y", "x"):
        if d not in da.coords or da.sizes[d] < 2:
            raise InputError(f"{name} needs a calibrated '{d}' coordinate with at least 2 pixels")
        c = np.asarray(da.coords[d].values, dtype=float)
        step = np.diff(c)
        if not np.all(np.isfinite(c)) or step[0] == 0 or not np.allclose(step, step[0], rtol=1e-4, atol=0):
            raise RegistrationError(f"{name}'s '{d}' coordinate is not a regular grid; resample it to uniform pixels first")
        pitch[d], origin[d] = step[0], c[0]
        units[d] = str(da.coords[d].attrs.get("units", "px"))
    if units["x"] != units["y"]:
        raise RegistrationError(f"{name} has x in {units['x']!r} but y in {units['y']!r}; calibrate both axes in nm")
    values = np.asarray(da.values, dtype=float) if need_values else np.zeros(da.shape)
    # flip decreasing axes so every grid runs forward (the physical positions do not change)
    if pitch["y"] < 0:
        values, origin["y"], pitch["y"] = values[::-1], _c_last(da, "y"), -pitch["y"]
    if pitch["x"] < 0:
        values, origin["x"], pitch["x"] = values[:, ::-1], _c_last(da, "x"), -pitch["x"]
    if need_values and not np.all(np.isfinite(values)):
        raise InputError(f"{name} holds NaN or inf; fill or crop them before registering")
    return _Grid(values, origin["x"], origin["y"], pitch["x"], pitch["y"], units["x"])


def _c_last(da, d):
    return float(da.coords[d].values[-1])


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


class _Objective:
    """NCC of the moving image against the smoothed fixed image sampled at T(spectral pixel centres)."""

    def __init__(self, mov: _Grid, fix: _Grid, fixed_s: np.ndarray, sigma: float = 0.0):
        # sigma (spectral px) low-passes both images: at sigma ~ 3 a resolved lattice vanishes and only
        # aperiodic content (dopants, thickness, defects) drives the match, so no lattice-period jump
        if sigma > 0:
            mov = _Grid(ndimage.gaussian_filter(mov.values, sigma, mode="nearest"), mov.x0, mov.y0, mov.dx, mov.dy,
                        mov.unit)
            fixed_s = ndimage.gaussian_filter(fixed_s, (sigma * mov.dy / fix.dy, sigma * mov.dx / fix.dx),
                                              mode="nearest")
        self.mov, self.fix, self.fixed_s = mov, fix, fixed_s
        self.coef = ndimage.spline_filter(fixed_s, order=3)
        self.xs, self.ys = mov.centres()

    def sample(self, t: AffineTransform, sel=slice(None)):
        xi, yi = t(self.xs[sel], self.ys[sel])
        inside = self.fix.inside(xi, yi)
        r, c = self.fix.to_px(xi, yi)
        vals = ndimage.map_coordinates(self.coef, [r.ravel(), c.ravel()], order=3, mode="nearest",
                                       prefilter=False).reshape(r.shape)
        return vals, inside

    def ncc(self, t: AffineTransform, sel=slice(None)) -> tuple[float, float]:
        vals, inside = self.sample(t, sel)
        frac = float(inside.mean())
        if inside.sum() < 8:
            return 0.0, frac
        return _ncc(self.mov.values[sel][inside], vals[inside]), frac


def _refine(obj: _Objective, t0: AffineTransform, *, affine: bool, rotation: bool, sel=slice(None),
            shift_only: bool = False) -> AffineTransform:
    """Maximise the NCC over the affine parameters (Powell), starting from ``t0``; parameters in ~pixel units."""
    mov = obj.mov
    xs, ys = obj.xs[sel], obj.ys[sel]
    cx, cy = float(xs.mean()), float(ys.mean())
    half = 0.5 * max(xs.max() - xs.min(), ys.max() - ys.min(), mov.dx)
    pix = 0.5 * (mov.dx + mov.dy)
    a0 = t0.matrix[:2, :2].copy()
    b0 = np.array(t0(cx, cy), dtype=float)
    rot0 = t0.params()["rotation_deg"]

    def build(q):
        b = b0 + q[:2] * pix
        if len(q) == 2:  # shift only
            a = a0
        elif affine:
            a = a0 + q[2:].reshape(2, 2) * pix / half
        else:  # rigid: rotation only (scale fixed by the calibrations)
            a = AffineTransform.from_params(rotation_deg=rot0 + np.rad2deg(q[2] * pix / half)).matrix[:2, :2] \
                @ np.linalg.inv(AffineTransform.from_params(rotation_deg=rot0).matrix[:2, :2]) @ a0
        m = np.eye(3)
        m[:2, :2] = a
        m[:2, 2] = b - a @ np.array([cx, cy])
        return AffineTransform(m)

    n = 2 if shift_only or not (affine or rotation) else (6 if affine else 3)

    # overlap floor: the NCC over a smaller overlap is noisier and, on a narrow field (e.g. 10 px wide), a
    # few pixels more or less can raise it spuriously, so the refinement drifts off the field (measured: 4 px
    # on a 50 x 10 Velox map). A full-overlap start stays at full overlap; a partial one may lose at most one
    # row and one column (the start is pixel-accurate). Falling below costs 2 NCC per unit fraction.
    frac0 = obj.ncc(t0, sel)[1]
    hh, ww = xs.shape
    floor = frac0 if frac0 >= 0.999 else frac0 - 1.0 / hh - 1.0 / ww

    def cost(q):
        t = build(q)
        r, frac = obj.ncc(t, sel)
        # calibrations fix the scale to within a few %: larger linear changes are overfitting, not registration
        dev = np.abs(t.matrix[:2, :2] - a0).max()
        return (-r + (10.0 * (0.25 - frac) if frac < 0.25 else 0.0) + (100.0 * (dev - 0.1) if dev > 0.1 else 0.0)
                + 2.0 * max(floor - frac, 0.0))

    res = optimize.minimize(cost, np.zeros(n), method="Powell",
                            options={"xtol": 1e-3, "ftol": 1e-7, "maxfev": 4000})
    return build(res.x)


def _search_transform(mov: _Grid, fix: _Grid, fixed_s: np.ndarray, angles) -> list[tuple]:
    """Candidate (NCC peak, transform, runner-up) per angle from the template match, best first."""
    out = []
    pad = (mov.shape[0] // 2, mov.shape[1] // 2)
    for ang in angles:
        a = np.deg2rad(ang)
        c, s = np.cos(a), np.sin(a)
        # one moving step (drow, dcol) in fixed pixels (row, col); rotation per AffineTransform.from_params
        lin = np.array([[c * mov.dy / fix.dy, -s * mov.dx / fix.dy],
                        [s * mov.dy / fix.dx, c * mov.dx / fix.dx]])
        search, lo = _search.rotated_fixed(fixed_s, lin, pad)
        if search.shape[0] < mov.shape[0] or search.shape[1] < mov.shape[1]:
            continue
        surf = _search.ncc_surface(search.astype(np.float32), mov.values.astype(np.float32))
        (pr, pc), top, second = _search.peak_and_runner_up(surf, exclusion=1.5)
        row, col = lin @ (lo + np.array([pr, pc]))
        x0i, y0i = fix.x0 + col * fix.dx, fix.y0 + row * fix.dy  # image position of moving pixel (0, 0)
        rot = AffineTransform.from_params(rotation_deg=ang)
        rx, ry = rot(mov.x0, mov.y0)
        t = AffineTransform.from_params(shift_nm=(x0i - rx, y0i - ry), rotation_deg=ang)
        out.append((top, t, second, ang))
    out.sort(key=lambda o: -o[0])
    return out


def register(moving, fixed, *, rotation: bool = True, affine: bool = True, max_rotation_deg: float = 10.0,
             min_confidence: float = 3.0, max_residual: float = 0.6, max_error_px: float = 0.5) -> Registration:
    """Register the spectral image's simultaneous channel ``moving`` onto the image ``fixed``.

    Parameters
    ----------
    moving : xarray.DataArray (y, x)
        Simultaneous ADF channel (or summed signal) of the spectrum image, coords in nm
        (the spectral frame).
    fixed : xarray.DataArray (y, x)
        High-resolution image, coords in nm (the image frame); may have finer pixels
        and a larger field of view.
    rotation : bool
        Search rotations within ``±max_rotation_deg`` (Fourier-Mellin candidate plus a 1 deg grid).
    affine : bool
        Refine all six affine parameters; otherwise shift and rotation only.
    min_confidence, max_residual, max_error_px : float
        Refuse (raise :class:`~atomine.errors.RegistrationError`) when the confidence is
        lower, or the residual or the estimated error (spectral pixels) higher; see
        :class:`Registration`. On lattice images the confidence alone does not catch a
        different area (the lattice matches everywhere): measured on perovskite HAADF, the
        true area gives residual 0.002 and error 0.0002 px, another area 0.74 and 0.58 px.

    Returns
    -------
    Registration
    """
    mov, fix = _grid(moving, "moving"), _grid(fixed, "fixed")
    if mov.unit != fix.unit or "px" in (mov.unit, fix.unit) and mov.unit != fix.unit:
        raise RegistrationError(f"mismatched calibrations: moving in {mov.unit!r}, fixed in {fix.unit!r}; "
                                "calibrate both in nm (e.g. set the pixel size) before registering")
    ratio = max(mov.dx / fix.dx, mov.dy / fix.dy, fix.dx / mov.dx, fix.dy / mov.dy)
    if ratio > 64:
        raise RegistrationError(f"mismatched calibrations: pixel sizes differ {ratio:.0f}x "
                                f"(moving {mov.dx:.4g} {mov.unit}, fixed {fix.dx:.4g} {fix.unit}); check the scales")
    for g, name in ((mov, "moving"), (fix, "fixed")):
        if np.ptp(g.values) <= 1e-12 * max(1.0, abs(g.values).max()):
            raise RegistrationError(f"registration failed: the {name} image is flat (no contrast to register)")
    fixed_s = _search.footprint_smooth(fix.values, mov.dy / fix.dy, mov.dx / fix.dx)

    angles = [0.0]
    method = "ncc-template"
    if rotation:
        angles = list(np.arange(-np.floor(max_rotation_deg), np.floor(max_rotation_deg) + 0.5, 1.0))
        try:
            coarse = _search.footprint_smooth(fixed_s, 1, 1)[:: max(1, round(mov.dy / fix.dy)),
                                                             :: max(1, round(mov.dx / fix.dx))]
            fm = _search.fourier_mellin_angle(mov.values, coarse)
            angles += [a for a in (fm, fm - 180.0 * np.sign(fm)) if abs(a) <= max_rotation_deg]
        except ValueError:  # images too small for a log-polar spectrum: the angle grid still runs
            pass
        method = "fourier-mellin+angle-grid+ncc-template"
    sigmas = [sg for sg in (3.0, 1.0) if sg <= min(mov.shape) / 8] + [0.0]
    low = _Objective(mov, fix, fixed_s, sigmas[0])
    cands = _search_transform(low.mov, fix, low.fixed_s, angles)
    if not cands:
        raise RegistrationError("registration failed: the moving field of view is larger than the fixed image's; "
                                "crop the spectrum image to the imaged area")
    objs = [low] + [_Objective(mov, fix, fixed_s, sg) for sg in sigmas[1:]]
    obj = objs[-1]
    best = None
    # refine the three best distinct starts, coarse to fine (low-passed first, so a lattice cannot pull
    # the solution one period away)
    for top, t0, second, ang in cands[:3]:
        t = t0
        for o in objs:
            t = _refine(o, t, affine=False, rotation=rotation)
        r, frac = obj.ncc(t)
        if affine:
            # the affine parameters start from the rigid optimum and are kept only if they raise the NCC: freed
            # from the start, a lattice image can pull them into a sheared local optimum (measured: 7 deg,
            # shear 0.07, residual 0.66 on a pair the rigid fit registers to 0.003 px)
            ta = t
            for o in objs[-2:]:
                ta = _refine(o, ta, affine=True, rotation=rotation)
            ra, fa = obj.ncc(ta)
            if ra > r:
                t, r, frac = ta, ra, fa
        if best is None or r > best[0]:
            best = (r, frac, t, top, second)
    r, frac, t, top, second = best
    method += "+affine-ncc" if affine else "+rigid-ncc"
    err = _subwindow_error(obj, t)
    if _prior_holds(obj, t, r, frac, err):
        t = AffineTransform.identity()
        r, frac = obj.ncc(t)
        err = _subwindow_error(obj, t)
        method += "+calibration-prior"
    n = mov.values.size * frac
    confidence = float((top - second) * np.sqrt(n) / max(1.0 - top**2, 1e-3))
    residual = 1.0 - r
    if frac < 0.25:
        raise RegistrationError(f"non-overlapping fields of view: only {frac:.0%} of the spectral pixels fall inside "
                                "the image; check that both show the same area")
    if residual > max_residual:
        raise RegistrationError(f"registration failed: residual {residual:.3f} > max_residual {max_residual} "
                                "(no correlated content found; check that the channels show the same area)")
    if confidence < min_confidence:
        raise RegistrationError(f"registration failed: confidence {confidence:.2f} < min_confidence {min_confidence} "
                                "(another position matches almost as well, e.g. one lattice period away); "
                                "use a channel with aperiodic content or lower min_confidence knowingly")
    if np.isfinite(err) and err > max_error_px:
        raise RegistrationError(f"registration failed: the quadrants of the field of view disagree by {err:.2f} "
                                f"spectral px (> max_error_px {max_error_px}); check that both show the same area")
    return Registration(t, float(residual), confidence, err, float(frac), method)


def _prior_holds(obj: _Objective, t: AffineTransform, r: float, frac: float, err: float) -> bool:
    """Whether the data fail to reject the calibrations' own alignment (the identity) in favour of ``t``.

    Both data sets' coordinates already place them; a registration should move away from that only when the
    data say so. On a small, noisy map (e.g. a 50 x 10 summed-EDS map from the same scan as its HAADF) the NCC
    surface is flat to ~0.005 over +-0.5 px, so its maximum wanders by about the measured uncertainty. The
    identity is kept when it covers at least as much of the moving field and lies within two estimated errors
    (``err``, spectral px) of ``t``; without a usable ``err`` (tiny maps), when its NCC is within one standard
    error ``(1 - r**2) / sqrt(n)`` of ``t``'s.
    """
    ident = AffineTransform.identity()
    r0, frac0 = obj.ncc(ident)
    if frac0 < frac - 1e-9:
        return False
    xs, ys = obj.xs, obj.ys
    d = np.subtract(t(xs, ys), ident(xs, ys))
    dist = float(np.max(np.hypot(d[0] / obj.mov.dx, d[1] / obj.mov.dy)))
    if np.isfinite(err):
        return dist <= 2.0 * err
    return (r - r0) <= (1.0 - r0**2) / np.sqrt(obj.mov.values.size * frac0)


def _subwindow_error(obj: _Objective, t: AffineTransform) -> float:
    """rms/2 of the quadrant shifts (spectral px) when each quadrant is re-registered from ``t``."""
    h, w = obj.mov.shape
    if h < 8 and w < 8:
        return float("nan")  # quadrants of a few pixels carry no usable estimate
    shifts = []
    for sy in ((slice(0, h // 2), slice(h // 2, h)) if h >= 8 else (slice(0, h),)):
        for sx in ((slice(0, w // 2), slice(w // 2, w)) if w >= 8 else (slice(0, w),)):
            tq = _refine(obj, t, affine=False, rotation=False, sel=(sy, sx), shift_only=True)
            cx, cy = obj.xs[sy, sx].mean(), obj.ys[sy, sx].mean()
            d = np.subtract(tq(cx, cy), t(cx, cy))
            shifts.append(np.hypot(d[0] / obj.mov.dx, d[1] / obj.mov.dy))
    return float(np.sqrt(np.mean(np.square(shifts))) / np.sqrt(len(shifts)))


__all__ = ["Registration", "register"]
