"""STM topographs of a doped perovskite-oxide (001) surface with complete ground truth.

Model (the seed use case is La5/8Ca3/8MnO3): a square surface lattice with the B site
(Mn) at (0, 0) of each cell, two oxygen sublattices O1 at (a/2, 0) and O2 at (0, a/2)
with different apparent heights, optionally imaged Mn, and the sub-surface A sites
at (a/2, a/2) whose occupancy (0 host La, 1 dopant Ca, -1 vacancy/defect) is given.
Every imaged feature is a Gaussian bump of apparent height (nm); a dopant or vacancy
adds a broader Gaussian (brighter or dimmer by its signed height) centred on its A
site. The tip is a unit-area Gaussian of width ``tip_sigma_nm``; the convolution is
done analytically, feature by feature (see :func:`blurred`). Noise is a mix of 1/f
(pink), scan-line offset and white noise scaled to an exact signal-to-noise ratio,
and piezo drift displaces the surface in the image with scan time (see
``_spm_noise``).

Signal-to-noise ratio: ``snr = std(noiseless tip-blurred topograph) / std(noise)``,
both standard deviations taken over the image pixels, and exact for every
realisation (``data - maps["topography_blurred"] == maps["noise"]``).

Occupancy helpers :func:`random_occupancy`, :func:`segregated_occupancy`,
:func:`model_occupancy` (an equilibrium draw of a known lattice model) and the
Warren-Cowley order parameter :func:`warren_cowley_alpha1` live here too.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import xarray as xr

from ..data import GroundTruth, Simulation, image, step
from ..errors import InputError
from ._spm_noise import drift_offset, mixed_noise, scan_fraction
from ._stm_lattice import OFFSETS, SurfaceLattice, blurred, render
from ._stm_truth import CLASS_NAMES, derived_parameters, truth_tables
from ._stm_occupancy import (
    DOPANT,
    VACANCY,
    _check_seed,
    check_occupancy,
    model_occupancy,
    random_occupancy,
    segregated_occupancy,
    warren_cowley_alpha1,
)

_MIN_IMAGE_PX = 16
_MAX_IMAGE_PX = 8192


def _number(value, name: str, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
            allow_inf: bool = False, hint: str = "") -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    ok = (math.isfinite(f) or (allow_inf and f == math.inf)) and (f > low if low_open else f >= low) and f <= high
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise InputError(f"{name} must be {bound} and <= {high:g}, got {value!r}{hint}")
    return f


def _pair(value, name: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be two numbers (x, y) in nm, got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)) or max(abs(a), abs(b)) > 1e3:
        raise InputError(f"{name} must be finite with |value| <= 1000 nm, got {value!r}")
    return a, b


def _image_shape(shape) -> tuple[int, int] | None:
    if shape is None:
        return None
    try:
        ny, nx = (int(s) for s in shape)
        ok = all(float(s) == int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be None or two integers (ny, nx), got {shape!r}") from None
    if not ok or not (_MIN_IMAGE_PX <= ny <= _MAX_IMAGE_PX and _MIN_IMAGE_PX <= nx <= _MAX_IMAGE_PX):
        raise InputError(f"shape must be two integers in [{_MIN_IMAGE_PX}, {_MAX_IMAGE_PX}] pixels, got {shape!r}")
    return ny, nx


def _max_drift(drift_nm, creep_nm, creep_tau) -> tuple[float, float]:
    dx, dy = drift_offset(np.linspace(0.0, 1.0, 2001), drift_nm, creep_nm, creep_tau)
    return float(np.abs(dx).max()), float(np.abs(dy).max())


def _place(n_i, n_j, a, rotation_deg, pixel_size, shape, sigmas, max_drift):
    """The lattice placed so the image centre sits at the centre of its usable region, and the image shape."""
    probe = SurfaceLattice(a, rotation_deg, (0.0, 0.0), n_i, n_j)
    u_lo, u_hi, v_lo, v_hi = probe.usable_range(sigmas)
    if shape is None:
        c, s = abs(math.cos(math.radians(rotation_deg))), abs(math.sin(math.radians(rotation_deg)))
        mx, my = max_drift
        half = min((u_hi - u_lo) / 2 * a - mx * c - my * s, (v_hi - v_lo) / 2 * a - mx * s - my * c) / (c + s)
        n = int(math.floor(2 * half / pixel_size)) + 1 if half > 0 else 0
        if n < _MIN_IMAGE_PX:
            raise InputError(f"occupancy of {n_i} x {n_j} sites is too small for a {_MIN_IMAGE_PX}-px image at "
                             f"{pixel_size:g} nm/px with this rotation and drift; give a larger occupancy array")
        shape = (min(n, _MAX_IMAGE_PX),) * 2
    ny, nx = shape
    centre = np.array([(nx - 1) / 2 * pixel_size, (ny - 1) / 2 * pixel_size])
    cu, cv = (u_lo + u_hi) / 2, (v_lo + v_hi) / 2
    origin = centre - cu * probe.a1 - cv * probe.a2
    return SurfaceLattice(a, rotation_deg, (float(origin[0]), float(origin[1])), n_i, n_j), shape, (u_lo, u_hi, v_lo, v_hi)


def simulate_stm(
    occupancy,
    *,
    lattice_nm: float = 0.388,
    pixel_size_nm: float = 0.03,
    shape: Sequence[int] | None = None,
    rotation_deg: float = 0.0,
    o1_height_nm: float = 0.030,
    o2_height_nm: float = 0.018,
    mn_height_nm: float | None = None,
    atom_sigma_nm: float = 0.06,
    dopant_height_nm: float = 0.012,
    dopant_sigma_nm: float = 0.15,
    vacancy_height_nm: float = -0.030,
    vacancy_sigma_nm: float = 0.12,
    tip_sigma_nm: float = 0.035,
    snr: float = 4.0,
    noise_mix: Sequence[float] = (0.6, 0.25, 0.15),
    pink_exponent: float = 1.0,
    drift_nm: Sequence[float] = (0.0, 0.0),
    creep_nm: Sequence[float] = (0.0, 0.0),
    creep_tau: float = 0.1,
    bias_v: float = 0.8,
    setpoint_a: float = 5e-11,
    seed: int = 0,
) -> Simulation:
    """Simulate a constant-current STM topograph of a doped perovskite (001) surface.

    Parameters
    ----------
    occupancy : array_like of int, shape (n_i, n_j)
        Sub-surface A-site lattice ``occupancy[site_i, site_j]``: 0 host, 1 dopant,
        -1 vacancy. It must cover the image plus the tails of the features (about
        3 sites beyond each edge); with ``shape=None`` the largest square image it
        covers is used. Not modified.
    lattice_nm : float
        Surface lattice constant a (nm).
    pixel_size_nm : float
        Pixel size (nm), below a / 2.
    shape : (int, int), optional
        Image shape (ny, nx) in pixels.
    rotation_deg : float
        Lattice rotation, counter-clockwise as displayed (degrees).
    o1_height_nm, o2_height_nm : float
        Apparent heights of the O1 (a/2, 0) and O2 (0, a/2) features (nm).
    mn_height_nm : float, optional
        Apparent height of Mn features (nm); ``None`` = Mn not imaged (not in the atom table).
    atom_sigma_nm : float
        Gaussian width of the surface features before tip blur (nm).
    dopant_height_nm, dopant_sigma_nm : float
        Signed apparent-height change (nm) and width (nm) of the bump around a dopant's A site.
    vacancy_height_nm, vacancy_sigma_nm : float
        The same for a vacancy / defect.
    tip_sigma_nm : float
        Width of the Gaussian tip function (nm); 0 = ideal tip.
    snr : float
        Signal-to-noise ratio as defined in the module docstring; ``inf`` = no noise.
    noise_mix : (float, float, float)
        Variance shares of (1/f, scan-line offset, white) noise.
    pink_exponent : float
        Exponent beta of the 1/f noise power spectrum ``|k|**-beta``.
    drift_nm : (float, float)
        Linear drift: apparent (x, y) displacement accumulated over the frame (nm).
    creep_nm : (float, float)
        Asymptotic apparent (x, y) displacement of piezo creep (nm).
    creep_tau : float
        Creep time constant in frame times.
    bias_v, setpoint_a : float
        Sample bias (V) and current setpoint (A), recorded in the metadata.
    seed : int
        Seed of the noise; the result is a pure function of the arguments.

    Returns
    -------
    Simulation
        ``data``: float32 image (nm) of apparent height, signal ``"STM"``.
        ``truth.tables["atoms"]``: every imaged surface feature (x, y true in nm; x_px, y_px
        apparent after drift; species, sublattice 0 = highest set height, site_i, site_j,
        height_nm = noiseless tip-blurred apparent height at the feature, base_height_nm,
        n_dopant_nn, n_vacancy_nn, cls "host"). ``truth.tables["sites"]``: every A site
        (site_i, site_j, x, y, x_px, y_px, cls, in_image, height_nm, dopant_nm).
        ``truth.maps``: topography (noiseless, no tip), topography_blurred, noise, dopant
        (tip-blurred dopant + vacancy contribution), drift_x, drift_y (nm), scan_time
        (frame fraction). ``truth.parameters``: all arguments plus derived quantities
        (lattice vectors, counts, Warren-Cowley alpha_1 periodic / open / in image).
    """
    occ = check_occupancy(occupancy)
    n_i, n_j = occ.shape
    a = _number(lattice_nm, "lattice_nm", low=0.0, low_open=True, high=10.0)
    px = _number(pixel_size_nm, "pixel_size_nm", low=0.0, low_open=True, high=a / 2,
                 hint=f" (it must resolve the {a:g} nm lattice)")
    img_shape = _image_shape(shape)
    rot = _number(rotation_deg, "rotation_deg", low=-360.0, high=360.0)
    h1 = _number(o1_height_nm, "o1_height_nm", low=-1.0, high=1.0)
    h2 = _number(o2_height_nm, "o2_height_nm", low=-1.0, high=1.0)
    hmn = None if mn_height_nm is None else _number(mn_height_nm, "mn_height_nm", low=-1.0, high=1.0)
    s_atom = _number(atom_sigma_nm, "atom_sigma_nm", low=0.0, low_open=True, high=a)
    hd = _number(dopant_height_nm, "dopant_height_nm", low=-1.0, high=1.0)
    sd = _number(dopant_sigma_nm, "dopant_sigma_nm", low=0.0, low_open=True, high=5 * a)
    hv = _number(vacancy_height_nm, "vacancy_height_nm", low=-1.0, high=1.0)
    sv = _number(vacancy_sigma_nm, "vacancy_sigma_nm", low=0.0, low_open=True, high=5 * a)
    tip = _number(tip_sigma_nm, "tip_sigma_nm", low=0.0, high=5 * a)
    snr = _number(snr, "snr", low=0.0, low_open=True, allow_inf=True, hint=" (use inf for no noise)")
    try:
        mix = tuple(float(m) for m in np.ravel(np.asarray(noise_mix, dtype=np.float64)))
    except (TypeError, ValueError):
        mix = None
    if mix is None or len(mix) != 3 or not all(math.isfinite(m) and m >= 0 for m in mix) or sum(mix) <= 0:
        raise InputError("noise_mix must be three non-negative variance shares (1/f, line, white), not all zero; "
                         f"got {noise_mix!r}")
    beta = _number(pink_exponent, "pink_exponent", low=0.0, high=4.0)
    drift, creep = _pair(drift_nm, "drift_nm"), _pair(creep_nm, "creep_nm")
    tau = _number(creep_tau, "creep_tau", low=0.0, low_open=True, high=1e3)
    bias = _number(bias_v, "bias_v", low=-20.0, high=20.0)
    if bias == 0:
        raise InputError("bias_v must be non-zero: no tunnelling current flows at zero sample bias")
    setpoint = _number(setpoint_a, "setpoint_a", low=0.0, low_open=True, high=1e-6)
    seed = _check_seed(seed)

    # (species, amplitude, sigma) of every Gaussian family; the A-site ones carry per-site heights.
    families = [("O1", h1, s_atom), ("O2", h2, s_atom)] + ([("Mn", hmn, s_atom)] if hmn is not None else [])
    defects = [("A", hd * (occ == DOPANT), sd)] if (occ == DOPANT).any() else []
    defects += [("A", hv * (occ == VACANCY), sv)] if (occ == VACANCY).any() else []
    sigmas = {name: blurred(1.0, s, tip)[1] for name, _, s in families}
    for _, _, s in defects:
        sigmas["A"] = max(sigmas.get("A", 0.0), blurred(1.0, s, tip)[1])

    lattice, (ny, nx), usable = _place(n_i, n_j, a, rot, px, img_shape, sigmas, _max_drift(drift, creep, tau))
    rows, cols = np.meshgrid(np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64), indexing="ij")
    s_frac = scan_fraction(cols, rows, (ny, nx))
    dx, dy = drift_offset(s_frac, drift, creep, tau)
    u, v = lattice.to_frac(cols * px - dx, rows * px - dy)  # the surface point each pixel samples
    _check_coverage(u, v, usable, occ.shape, (ny, nx), px)

    topo = sum(render(u, v, lattice, n, h, s) for n, h, s in families + defects)
    host_b = sum(render(u, v, lattice, n, *blurred(h, s, tip)) for n, h, s in families)
    dop_b = sum((render(u, v, lattice, n, *blurred(h, s, tip)) for n, h, s in defects), np.zeros((ny, nx)))
    topo_b = host_b + dop_b
    signal_std = float(topo_b.std())
    if snr != math.inf and signal_std == 0:
        raise InputError("the noiseless topograph is flat, so no SNR can be defined; "
                         "give non-zero feature heights or snr=inf")
    noise_std = 0.0 if snr == math.inf else signal_std / snr
    noise = mixed_noise((ny, nx), noise_std, mix, beta, np.random.default_rng(seed))

    params = {
        "lattice_nm": a, "pixel_size_nm": px, "shape": [ny, nx], "rotation_deg": rot,
        "o1_height_nm": h1, "o2_height_nm": h2, "mn_height_nm": hmn, "atom_sigma_nm": s_atom,
        "dopant_height_nm": hd, "dopant_sigma_nm": sd, "vacancy_height_nm": hv, "vacancy_sigma_nm": sv,
        "tip_sigma_nm": tip, "snr": snr, "noise_mix": list(mix), "pink_exponent": beta,
        "drift_nm": list(drift), "creep_nm": list(creep), "creep_tau": tau, "bias_v": bias,
        "setpoint_a": setpoint, "seed": seed,
    }
    atoms, sites = truth_tables(occ, lattice, families, defects, tip, px, (ny, nx), drift, creep, tau)
    params.update(derived_parameters(occ, lattice, sites, signal_std, noise, families))
    metadata = {
        "title": "simulated STM topograph of La5/8Ca3/8MnO3 (001)",
        "instrument": "atomine.simulate.stm",
        "sample": "simulated LCMO thin film",
        "material": "La5/8Ca3/8MnO3",
        "elements": ["La", "Ca", "Mn", "O"],
        "bias_v": bias,
        "setpoint_a": setpoint,
        "tags": ["simulated", "STM", "topography", "perovskite", "dopant segregation"],
    }
    data = image((topo_b + noise).astype(np.float32), px, signal="STM", value_units="nm", name="topography",
                 metadata=metadata, provenance=[step("atomine.simulate.stm.simulate_stm", params)])
    def var(values, units, long_name):
        return (("y", "x"), values.astype(np.float32), {"units": units, "long_name": long_name})

    maps = xr.Dataset(
        {
            "topography": var(topo, "nm", "noiseless, ideal tip"),
            "topography_blurred": var(topo_b, "nm", "noiseless, tip-blurred"),
            "noise": var(noise, "nm", "added noise"),
            "dopant": var(dop_b, "nm", "tip-blurred dopant and vacancy contribution"),
            "drift_x": var(dx, "nm", "apparent x displacement at scan time"),
            "drift_y": var(dy, "nm", "apparent y displacement at scan time"),
            "scan_time": var(s_frac, "frame", "scan time as frame fraction"),
        },
        coords={"y": data.coords["y"], "x": data.coords["x"]},
    )
    return Simulation(data=data, truth=GroundTruth(kind="stm", parameters=params,
                                                    tables={"atoms": atoms, "sites": sites}, maps=maps))


def _check_coverage(u, v, usable, occ_shape, shape, px) -> None:
    u_lo, u_hi, v_lo, v_hi = usable
    short = max(u_lo - u.min(), u.max() - u_hi, v_lo - v.min(), v.max() - v_hi)
    if short > 0:
        need = int(math.ceil(2 * short)) + 1
        raise InputError(f"the {occ_shape[0]} x {occ_shape[1]} occupancy does not cover a {shape[0]} x {shape[1]}-px "
                         f"image at {px:g} nm/px with this rotation and drift; add about {need} sites per axis "
                         f"or pass shape=None for the largest image it covers")


def _lcmo(seed: int, segregated: bool) -> Simulation:
    occ_seed, noise_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2))
    kw = {"vacancy_fraction": 0.01, "seed": occ_seed}
    occ = (segregated_occupancy((40, 40), 3 / 8, j_nn=-0.8, sweeps=300, **kw) if segregated
           else random_occupancy((40, 40), 3 / 8, **kw))
    return simulate_stm(occ, pixel_size_nm=0.03, shape=(352, 352), rotation_deg=3.0, snr=4.0,
                        drift_nm=(0.12, 0.06), creep_nm=(-0.08, 0.05), creep_tau=0.08, seed=noise_seed)


# The known lattice model behind stm-lcmo-correlated (atomine convention, units k_B T_f).
CORRELATED_MODEL = {
    "couplings": [-0.2, -0.06],
    "names": ["J1", "J2"],
    "convention": "H = sum_m J_m sum_<ij>_m s_i s_j, s=+1 dopant, -1 host, units k_B T_f",
    "composition": 3 / 8,
    "kind": "square",
    "temperature": 1.0,
    "ensemble": "canonical",
    "sweeps": 500,
}


def _lcmo_correlated(seed: int) -> Simulation:
    """stm-lcmo imaging of Ca drawn from a known J1-J2 model, on a ~64 x 64-site field for a model fit."""
    occ_seed, noise_seed = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(2))
    model = CORRELATED_MODEL
    # 72 x 72 sites cover an 832-px field (64 sites across) with the rotation, drift and feature tails
    occ = model_occupancy((72, 72), model["composition"], model["couplings"], vacancy_fraction=0.01,
                          sweeps=model["sweeps"], seed=occ_seed)
    sim = simulate_stm(occ, pixel_size_nm=0.03, shape=(832, 832), rotation_deg=3.0, snr=4.0,
                       drift_nm=(0.12, 0.06), creep_nm=(-0.08, 0.05), creep_tau=0.08, seed=noise_seed)
    # the model sits next to the occupancy's truth (counts, alpha_1) so a report can show it beside a fit
    lattice_model = {**model, "couplings": list(model["couplings"]), "names": list(model["names"]),
                     "occupancy_seed": occ_seed}
    sim.truth.parameters["lattice_model"] = lattice_model
    sim.data.attrs["metadata"]["lattice_model"] = {**lattice_model, "couplings": list(model["couplings"]),
                                                   "names": list(model["names"])}
    sim.data.attrs["metadata"]["tags"] = [*sim.data.attrs["metadata"]["tags"], "lattice model"]
    return sim


PRESETS = {
    "stm-lcmo": ("STM topograph of La5/8Ca3/8MnO3 (001): two O sublattices, 3/8 random sub-surface Ca, 1% A vacancies, "
                 "352 px at 0.03 nm/px, SNR 4, 1/f + line noise, drift", lambda seed: _lcmo(seed, False)),
    "stm-lcmo-segregated": ("as stm-lcmo but the Ca are clustered (Kawasaki Monte Carlo, J_nn = -0.8 kT, 300 sweeps)",
                            lambda seed: _lcmo(seed, True)),
    "stm-lcmo-correlated": ("as stm-lcmo but the Ca drawn in equilibrium from the lattice model (J1, J2) = "
                            "(-0.2, -0.06) k_B T_f at c = 3/8; 72 x 72 sites, 832 px (64 sites across)",
                            _lcmo_correlated),
}

__all__ = ["simulate_stm", "random_occupancy", "segregated_occupancy", "model_occupancy", "warren_cowley_alpha1",
           "PRESETS", "CORRELATED_MODEL", "CLASS_NAMES", "OFFSETS"]
