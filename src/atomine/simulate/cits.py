"""CITS grids (current-imaging tunnelling spectroscopy) with exact ground truth.

Model. Pixel p's sample DOS mixes the component DOS curves with abundances a
(:mod:`atomine.simulate.fields`): ``rho_p = sum_k a[p, k] rho_k``. Its tunnelling
current ``I_raw,p(V) = sum_k a[p, k] I_k(V)`` follows :mod:`atomine.simulate.cits_dos`
(constant tip DOS, optional WKB transmission and Fermi broadening).

Set-point normalisation. Before each spectrum the feedback loop sets the tip height so
that the current at the set-point bias ``V_s`` equals the set-point current ``I_s``;
the feedback is then opened and the bias swept. Modelling the height change as a
pure prefactor (its effect on the energy dependence of the WKB factor is neglected),
the recorded curve is ``I_p(V) = I_s sign(V_s) I_raw,p(V) / |I_raw,p(V_s)|``, so
``I_p(V_s) = sign(V_s) I_s`` exactly. Equivalently, with each pure component's curve
normalised the same way (truth ``endmember_iv``),

    I_p(V) = sum_k w[p, k] endmember_iv_k(V),   w[p, k] = a[p, k] I_k(V_s) / sum_j a[p, j] I_j(V_s),

a convex combination with the *current weights* w (truth ``current_weights``): the
linear model that unmixing a CITS grid recovers. Noise: white Gaussian current noise
plus optional 1/f noise along each sweep (acquisition order = bias order). The
simultaneous topography is the constant-current height at the set point,
``z = ln(|I_raw(V_s)| / mean) / (2 kappa)``, plus Gaussian noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.fft
import xarray as xr

from ..data import GroundTruth, Simulation, cits_grid, explicit_coord, image
from ..errors import InputError
from .cits_dos import DOS_TYPES, KAPPA_PER_NM, GappedDOS, MetallicDOS, ResonanceDOS, energy_grid, tunnelling_currents
from .fields import check_abundances

DEFAULT_BARRIER_EV = 4.0  # work-function-like barrier used for the topography when none is given


def _number(value, name: str, *, positive: bool = False, allow_zero: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise InputError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return v


def _bias_axis(bias) -> np.ndarray:
    b = np.asarray(bias, dtype=np.float64)
    if b.ndim != 1 or b.size < 3:
        raise InputError(f"the bias axis must be 1-D with at least 3 values, got shape {b.shape}")
    explicit_coord(b, "V", "bias")  # finite and strictly monotonic, else CalibrationError
    return b


def _grid(abundances, pixel_size_nm):
    if isinstance(abundances, xr.DataArray):
        if set(abundances.dims) != {"y", "x", "component"}:
            raise InputError(f"abundances must have dims ('y', 'x', 'component'), got {abundances.dims}")
        names = [str(c) for c in abundances.coords["component"].values] if "component" in abundances.coords else None
        if pixel_size_nm is None and "x" in abundances.coords and abundances.sizes["x"] > 1:
            x, y = abundances.coords["x"].values, abundances.coords["y"].values
            return float(x[1] - x[0]), (float(y[0]), float(x[0])), names
        return _number(pixel_size_nm, "pixel_size_nm", positive=True, allow_zero=False), (0.0, 0.0), names
    if pixel_size_nm is None:
        raise InputError("give pixel_size_nm (or abundances as a DataArray with nm coordinates)")
    return _number(pixel_size_nm, "pixel_size_nm", positive=True, allow_zero=False), (0.0, 0.0), None


_FLICKER_SPAN = 4  # 1/f noise is synthesised over this many sweep lengths and cropped to one


def _flicker(rng, shape, rms: float) -> np.ndarray:
    """1/f (pink) noise along the last axis with the given rms (A).

    Synthesised by FFT over ``_FLICKER_SPAN`` sweep lengths and cropped to the first sweep:
    noise built over exactly one sweep would be periodic across it (its end joined smoothly
    to its start), which real 1/f current noise is not. The crop keeps the 1/f spectrum and
    adds the sub-sweep frequencies, i.e. a random slow offset and slope per curve.
    """
    n = shape[-1]
    n_long = _FLICKER_SPAN * n
    white = rng.standard_normal(shape[:-1] + (n_long,))
    f = np.arange(n_long // 2 + 1, dtype=np.float64)
    filt = np.zeros_like(f)
    filt[1:] = 1.0 / np.sqrt(f[1:])  # power ~ 1/f
    pink = scipy.fft.irfft(scipy.fft.rfft(white, axis=-1) * filt, n=n_long, axis=-1)[..., :n]
    sd = pink.std()
    return pink * (rms / sd) if sd > 0 else pink


def simulate_cits(
    dos,
    abundances,
    bias,
    *,
    pixel_size_nm: float | None = None,
    setpoint_a: float = 1.0e-10,
    setpoint_v: float | None = None,
    temperature_k: float = 0.0,
    barrier_ev: float | None = None,
    tip_height_nm: float = 0.6,
    noise_a: float = 1.0e-12,
    flicker_noise_a: float = 0.0,
    topography_noise_nm: float = 0.002,
    title: str | None = None,
    seed: int = 0,
) -> Simulation:
    """Simulate a CITS grid of I(V) curves from model DOS curves mixed by abundance maps.

    Parameters
    ----------
    dos : sequence of MetallicDOS, GappedDOS or ResonanceDOS
        One model DOS per component (:mod:`atomine.simulate.cits_dos`), distinct names.
    abundances : xarray.DataArray or array_like, shape (ny, nx, k)
        DOS mixing fractions per pixel, non-negative and summing to one.
    bias : array_like (n_bias,)
        Sample bias values (V) in sweep order, strictly monotonic.
    pixel_size_nm : float, optional
        Grid spacing (nm) when ``abundances`` carries no coords.
    setpoint_a : float
        Set-point current magnitude (A); the current at ``setpoint_v`` is ``sign(setpoint_v) * setpoint_a``.
    setpoint_v : float, optional
        Set-point (stabilisation) bias (V), non-zero; default the bias with the largest |V|
        (the positive one when both ends are equally far from zero).
    temperature_k : float
        Temperature (K) of the Fermi functions; 0 gives a sharp window.
    barrier_ev : float, optional
        Mean barrier height (eV) of the WKB transmission; None for a constant transmission.
    tip_height_nm : float
        Barrier width (nm) in the WKB factor.
    noise_a, flicker_noise_a : float
        Rms of the white and the 1/f current noise (A).
    topography_noise_nm : float
        Rms noise of the topography (nm).
    title : str, optional
        Title in the metadata.
    seed : int
        Random seed.

    Returns
    -------
    Simulation
        ``data``: float32 current (A), dims ``("y", "x", "bias")``. ``truth``: kind
        ``"cits"``; maps ``abundances``, ``current_weights`` (y, x, component), ``dos``
        (component, energy), ``endmember_iv`` and ``endmember_didv`` (component, bias),
        ``iv_noiseless``, ``didv_noiseless`` (y, x, bias), ``setpoint_scale`` and
        ``topography_noiseless`` (y, x), ``phase``; tables ``dos`` (model, gap, broadening
        per component) and ``resonances``. ``extra``: ``topography`` (STM image, nm).
    """
    dos = list(dos) if not isinstance(dos, DOS_TYPES) else [dos]
    if not dos or not all(isinstance(d, DOS_TYPES) for d in dos):
        raise InputError("dos must be a list of MetallicDOS, GappedDOS or ResonanceDOS models")
    names = [d.name for d in dos]
    if len(set(names)) != len(names):
        raise InputError(f"DOS component names must be distinct, got {names}")
    bias = _bias_axis(bias)
    px, origin, abund_names = _grid(abundances, pixel_size_nm)
    a = check_abundances(abundances, len(dos))
    if abund_names is not None and abund_names != names:
        raise InputError(f"abundance components {abund_names} do not match the DOS components {names}")
    ny, nx, k = a.shape
    i_sp = _number(setpoint_a, "setpoint_a", positive=True, allow_zero=False)
    # default: the largest |V| of the sweep, the positive one on a tie
    if setpoint_v is None:
        v_sp = float(bias[np.lexsort((bias, np.abs(bias)))[-1]])
    else:
        v_sp = _number(setpoint_v, "setpoint_v")
    if v_sp == 0:
        raise InputError("setpoint_v must be non-zero: at 0 V there is no tunnelling current to stabilise on")
    temp = _number(temperature_k, "temperature_k", positive=True)
    z_tip = _number(tip_height_nm, "tip_height_nm", positive=True, allow_zero=False)
    if barrier_ev is not None:
        phi = _number(barrier_ev, "barrier_ev", positive=True, allow_zero=False)
        vmax = max(float(np.abs(bias).max()), abs(v_sp))
        if phi <= vmax / 2.0 + 0.1:
            raise InputError(f"barrier_ev = {phi} is too low for biases up to {vmax} V; it must exceed |V|/2 + 0.1 eV")
        barrier_ev = phi
    noise = _number(noise_a, "noise_a", positive=True)
    flicker = _number(flicker_noise_a, "flicker_noise_a", positive=True)
    topo_noise = _number(topography_noise_nm, "topography_noise_nm", positive=True)

    _, h = energy_grid(bias, dos, temp)
    n = bias.size
    currents = tunnelling_currents(dos, np.concatenate([bias, bias + h, bias - h, [v_sp]]),
                                   temperature_k=temp, barrier_ev=barrier_ev, tip_height_nm=z_tip)
    i_k, didv_k, i_k_sp = currents[:, :n], (currents[:, n:2 * n] - currents[:, 2 * n:3 * n]) / (2 * h), currents[:, -1]
    tiny = 1e-6 * np.abs(currents[:, :n]).max(axis=1)
    for name, cur, t in zip(names, i_k_sp, tiny):
        if not abs(cur) > t:
            raise InputError(f"no tunnelling current from component {name!r} at the set-point bias {v_sp} V "
                             "(inside its gap); choose a set-point bias outside every gap")
    target = np.sign(v_sp) * i_sp
    norm = target / i_k_sp  # per component: its pure curve passes through the set point
    iv_k, didv_k_n = i_k * norm[:, None], didv_k * norm[:, None]

    flat = a.reshape(-1, k)
    raw_sp = flat @ i_k_sp  # raw (model-unit) current of each pixel at the set point
    weights = flat * i_k_sp[None, :] / raw_sp[:, None]
    iv = weights @ iv_k
    didv = weights @ didv_k_n
    rng_noise, rng_flicker, rng_topo = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    noisy = iv + (rng_noise.normal(0.0, noise, iv.shape) if noise > 0 else 0.0)
    if flicker > 0:
        noisy = noisy + _flicker(rng_flicker, iv.shape, flicker)

    kappa = KAPPA_PER_NM * np.sqrt(barrier_ev if barrier_ev is not None else DEFAULT_BARRIER_EV)
    z_clean = np.log(np.abs(raw_sp) / np.abs(raw_sp).mean()) / (2.0 * kappa)
    z_clean = z_clean.reshape(ny, nx)
    z = z_clean + (rng_topo.normal(0.0, topo_noise, z_clean.shape) if topo_noise > 0 else 0.0)

    energy = bias  # DOS truth at E = eV for each bias value
    coords = {"y": ("y", origin[0] + np.arange(ny) * px, {"units": "nm"}),
              "x": ("x", origin[1] + np.arange(nx) * px, {"units": "nm"}),
              "component": names,
              "bias": ("bias", bias, {"units": "V", "long_name": "sample bias"}),
              "energy": ("energy", energy, {"units": "eV", "long_name": "energy relative to the sample Fermi level"})}
    shape3 = (ny, nx, n)
    maps = xr.Dataset({
        "abundances": (("y", "x", "component"), a),
        "current_weights": (("y", "x", "component"), weights.reshape(ny, nx, k)),
        "dos": (("component", "energy"), np.stack([d.density(energy) for d in dos]), {"units": "states/eV (relative)"}),
        "endmember_iv": (("component", "bias"), iv_k, {"units": "A"}),
        "endmember_didv": (("component", "bias"), didv_k_n, {"units": "A/V"}),
        "iv_noiseless": (("y", "x", "bias"), iv.reshape(shape3), {"units": "A"}),
        "didv_noiseless": (("y", "x", "bias"), didv.reshape(shape3), {"units": "A/V"}),
        "setpoint_scale": (("y", "x"), (np.abs(target) / np.abs(raw_sp)).reshape(ny, nx),
                           {"units": "A per model current unit"}),
        "topography_noiseless": (("y", "x"), z_clean, {"units": "nm"}),
        "phase": (("y", "x"), np.argmax(a, axis=2).astype(np.int16)),
    }, coords=coords)
    resonances = [r for d in dos if hasattr(d, "resonances") for r in d.resonances()]
    tables = {"dos": pd.DataFrame([d.describe() for d in dos]),
              "resonances": pd.DataFrame(resonances, columns=["component", "energy_ev", "hwhm_ev", "amplitude"])}
    parameters = {"model": "I = sum_k w_k endmember_iv_k; endmember_iv_k = I_s sign(V_s) I_k(V) / I_k(V_s); "
                           "I_k = integral rho_k(E) [f(E - eV) - f(E)] T(E, V) dE (constant tip DOS)",
                  "seed": int(seed), "pixel_size_nm": px, "shape": [ny, nx], "n_components": k,
                  "components": [d.describe() | ({"resonances": d.resonances()} if hasattr(d, "resonances") else {})
                                 for d in dos],
                  "bias_start_v": float(bias[0]), "bias_end_v": float(bias[-1]), "n_bias": int(n),
                  "setpoint_a": i_sp, "setpoint_v": float(v_sp), "temperature_k": temp,
                  "barrier_ev": barrier_ev, "tip_height_nm": z_tip, "noise_a": noise, "flicker_noise_a": flicker,
                  "topography_noise_nm": topo_noise, "didv_step_v": h}
    metadata = {"title": title or "simulated CITS grid", "instrument": "STM (simulated)", "bias_v": float(v_sp),
                "setpoint_a": i_sp, "material": " / ".join(names), "tags": ["simulated", "atomine"],
                "temperature_k": temp}
    data = cits_grid(noisy.reshape(shape3).astype(np.float32), px, bias=bias, origin=origin, signal="CITS",
                     value_units="A", name="CITS", metadata=metadata)
    topo = image(z.astype(np.float32), px, origin=origin, signal="STM", value_units="nm", name="topography",
                 metadata={**metadata, "title": "constant-current topography at the set point (simulated)"})
    return Simulation(data=data, truth=GroundTruth("cits", parameters, tables, maps), extra={"topography": topo})


from .cits_presets import PRESETS  # noqa: E402  (the presets call simulate_cits)

__all__ = ["GappedDOS", "MetallicDOS", "PRESETS", "ResonanceDOS", "simulate_cits"]
