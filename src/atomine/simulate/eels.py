"""EELS spectrum images with exact ground truth (linear mixing of pure-phase spectra).

Model. The expected core-loss spectrum at pixel p is the linear mixture

    X[p, E] = sum_k a[p, k] S_k(E - delta[p])

of the pure component spectra ``S_k`` (:mod:`atomine.simulate.eels_spectra`: power-law
background and tabulated edges) with abundances ``a`` (non-negative, summing to one;
:mod:`atomine.simulate.fields`), and ``delta`` an optional energy drift. The recorded
counts are Poisson with mean X. With no drift the noiseless truth equals
``abundances @ endmembers`` exactly: the model the unmixing methods assume.

Optionally a low-loss spectrum image on its own energy axis (zero-loss peak and
plasmons, Poisson multiple scattering in t/lambda; :mod:`atomine.simulate.eels_lowloss`)
and always a simultaneous ADF image (composition-weighted mean Z^1.7 times relative
thickness, Poisson noise) on the same spatial grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..data import GroundTruth, Simulation, check_values, explicit_coord, image, spectrum_image
from ..errors import CalibrationError, InputError
from .eels_lowloss import check_uniform_axis, lowloss_spectra
from .eels_spectra import Phase, PhaseModel, edge_sigma_ev, edges_table
from .fields import check_abundances

LOWLOSS_DIM = "energy_lowloss"  # the low-loss axis inside the truth Dataset (it differs from the core-loss one)


def _energy_axis(energy) -> np.ndarray:
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 1 or e.size < 2:
        raise InputError(f"the energy axis must be 1-D with at least 2 channels, got shape {e.shape}")
    explicit_coord(e, "eV", "energy")  # finite and monotonic, else CalibrationError
    if np.any(np.diff(e) <= 0):
        raise CalibrationError("the energy-loss axis must increase; reverse it (and the spectra) first")
    if e[0] <= 0:
        raise InputError(f"the core-loss energy axis must be above 0 eV (the power-law background diverges), "
                         f"starts at {e[0]:g} eV")
    return e


def _finite(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    return v


def _positive(value, name: str, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InputError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return v


def _grid(abundances, pixel_size_nm) -> tuple[float, tuple[float, float], list[str] | None]:
    """Pixel size (nm), origin and component names, from a DataArray's coords or the given pixel size."""
    names = None
    if isinstance(abundances, xr.DataArray):
        if set(abundances.dims) != {"y", "x", "component"}:
            raise InputError(f"abundances must have dims ('y', 'x', 'component'), got {abundances.dims}")
        if "component" in abundances.coords:
            names = [str(c) for c in abundances.coords["component"].values]
        if pixel_size_nm is None and "x" in abundances.coords and abundances.sizes["x"] > 1:
            if abundances.coords["x"].attrs.get("units", "nm") != "nm":
                raise CalibrationError("abundance coords must be in nm; rescale them or pass pixel_size_nm")
            x = abundances.coords["x"].values
            y = abundances.coords["y"].values
            return float(x[1] - x[0]), (float(y[0]), float(x[0])), names
    if pixel_size_nm is None:
        raise InputError("give pixel_size_nm (or abundances as a DataArray with nm coordinates)")
    return _positive(pixel_size_nm, "pixel_size_nm"), (0.0, 0.0), names


def _components(components, energy, sigma, counts):
    """(models or None, endmembers (k, n_e), names) from Phases or an array of spectra."""
    if isinstance(components, Sequence) and components and all(isinstance(c, Phase) for c in components):
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise InputError(f"phase names must be distinct, got {names}")
        models = [PhaseModel(c, energy, sigma, counts) for c in components]
        return models, np.stack([m(energy) for m in models]), names
    if isinstance(components, Sequence) and any(isinstance(c, Phase) for c in components):
        raise InputError("give either a list of Phase objects or an array of spectra, not a mixture")
    names = None
    if isinstance(components, xr.DataArray):
        if components.dims != ("component", "energy"):
            raise InputError(f"endmember spectra must have dims ('component', 'energy'), got {components.dims}")
        if "component" in components.coords:
            names = [str(c) for c in components.coords["component"].values]
    spectra = np.asarray(components.values if isinstance(components, xr.DataArray) else components, dtype=np.float64)
    check_values(spectra, "endmember spectra", 2, 2)
    if spectra.shape[1] != energy.size:
        raise InputError(f"endmember spectra have {spectra.shape[1]} channels but the energy axis has {energy.size}")
    if spectra.min() < 0:
        raise InputError("endmember spectra are expected counts and must be non-negative")
    return None, spectra.copy(), names or [f"component {i}" for i in range(spectra.shape[0])]


def _shift_linear(spectra: np.ndarray, energy: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Each row of ``spectra`` evaluated at ``energy - shift[row]`` by linear interpolation (edge values held)."""
    idx = np.interp(energy[None, :] - shift[:, None], energy, np.arange(energy.size, dtype=np.float64))
    i0 = np.clip(np.floor(idx).astype(np.int64), 0, energy.size - 2)
    f = idx - i0
    rows = np.arange(spectra.shape[0])[:, None]
    return spectra[rows, i0] * (1 - f) + spectra[rows, i0 + 1] * f


def _mix(abund: np.ndarray, endmembers: np.ndarray, models, energy, shift) -> np.ndarray:
    """Expected counts (n_pix, n_e): linear mixing, each pixel's spectrum shifted by ``shift`` (eV)."""
    if not np.any(shift):
        return abund @ endmembers
    if models is None:
        return _shift_linear(abund @ endmembers, energy, shift)
    out = np.empty((abund.shape[0], energy.size))
    for lo in range(0, abund.shape[0], 512):  # bounded memory: 512 pixels at a time
        sl = slice(lo, lo + 512)
        e = energy[None, :] - shift[sl, None]
        out[sl] = sum(abund[sl, k, None] * m(e) for k, m in enumerate(models))
    return out


def _drift(rng, ny: int, nx: int, drift_ev: float, jitter_ev: float) -> np.ndarray:
    """Energy shift (eV) per pixel: linear in acquisition (raster) order plus white jitter."""
    order = np.arange(ny * nx, dtype=np.float64).reshape(ny, nx)
    shift = drift_ev * order / max(order.size - 1, 1)
    if jitter_ev > 0:
        shift = shift + rng.normal(0.0, jitter_ev, (ny, nx))
    return shift


def _thickness(thickness_nm, ny: int, nx: int) -> np.ndarray:
    t = np.asarray(thickness_nm, dtype=np.float64)
    if t.ndim == 0:
        t = np.full((ny, nx), float(t))
    if t.shape != (ny, nx):
        raise InputError(f"thickness_nm must be a number or a (y, x) map of shape {(ny, nx)}, got shape {t.shape}")
    if not np.all(np.isfinite(t)) or t.min() <= 0:
        raise InputError("thickness_nm must be positive and finite everywhere")
    return t


def simulate_eels(
    components,
    abundances,
    energy,
    *,
    pixel_size_nm: float | None = None,
    counts_per_channel: float = 1000.0,
    energy_resolution_ev: float = 1.0,
    energy_drift_ev: float = 0.0,
    energy_jitter_ev: float = 0.0,
    lowloss_energy=None,
    thickness_nm=60.0,
    lowloss_counts: float = 2.0e5,
    adf_counts: float = 2000.0,
    structural_map: xr.DataArray | None = None,
    beam_energy_kv: float = 200.0,
    convergence_angle_mrad: float = 25.0,
    collection_angle_mrad: float = 50.0,
    title: str | None = None,
    seed: int = 0,
) -> Simulation:
    """Simulate a core-loss EELS spectrum image (and optionally its low-loss) with ground truth.

    Parameters
    ----------
    components : sequence of Phase, or array_like (k, n_e)
        Pure phases (spectra built from edges; see :class:`~atomine.simulate.eels_spectra.Phase`)
        or endmember spectra given directly as expected counts per channel.
    abundances : xarray.DataArray or array_like, shape (ny, nx, k)
        Fractions of each component per pixel, non-negative and summing to one
        (e.g. from :mod:`atomine.simulate.fields`); a DataArray's nm coords set the grid.
    energy : array_like (n_e,)
        Energy-loss axis (eV), strictly increasing and above 0.
    pixel_size_nm : float, optional
        Spatial pixel size (nm) when ``abundances`` carries no coords.
    counts_per_channel : float
        Mean expected counts per channel of each pure phase's spectrum (the dose).
    energy_resolution_ev : float
        Spectrometer resolution (FWHM, eV); broadens edges and sets the zero-loss width.
    energy_drift_ev, energy_jitter_ev : float
        Energy shift growing linearly over the raster scan to ``energy_drift_ev`` at the
        last pixel, plus Gaussian per-pixel jitter of this standard deviation (eV).
    lowloss_energy : array_like, optional
        Uniform low-loss axis (eV, e.g. -5..50); when given, a low-loss spectrum image is
        simulated as ``extra["EELS_LL"]`` (needs Phases for the plasmons).
    thickness_nm : float or array_like (ny, nx)
        Specimen thickness (nm); with each phase's mean free path it sets t/lambda.
    lowloss_counts : float
        Electrons per pixel in the low-loss acquisition (incident, all losses).
    adf_counts : float
        Mean counts of the simultaneous ADF image.
    structural_map : xarray.DataArray, optional
        A ``("y", "x")`` map on the spectral grid the abundances were derived from (see
        :func:`atomine.simulate.fields.from_structural_map`); stored in the truth.
    beam_energy_kv, convergence_angle_mrad, collection_angle_mrad : float
        Acquisition metadata.
    title : str, optional
        Title in the metadata.
    seed : int
        Random seed (noise, jitter).

    Returns
    -------
    Simulation
        ``data``: float32 counts, dims ``("y", "x", "energy")``. ``truth``: kind
        ``"eels"``; maps ``abundances`` (y, x, component), ``endmembers``
        (component, energy), ``noiseless`` (the Poisson mean of ``data``),
        ``energy_shift_ev``, ``phase`` (dominant component), ``adf_noiseless`` (and
        ``noiseless_aligned`` when drifting, the low-loss truth on ``energy_lowloss``,
        ``structural_map``); tables ``edges`` and ``components``. ``extra``: ``ADF``
        (and ``EELS_LL``).
    """
    energy = _energy_axis(energy)
    px, origin, names_from_abund = _grid(abundances, pixel_size_nm)
    counts = _positive(counts_per_channel, "counts_per_channel (dose)")
    resolution = _positive(energy_resolution_ev, "energy_resolution_ev")
    drift = _finite(energy_drift_ev, "energy_drift_ev")
    jitter = _positive(energy_jitter_ev, "energy_jitter_ev", allow_zero=True)
    adf_counts = _positive(adf_counts, "adf_counts")
    e_ll = _lowloss_axis(lowloss_energy) if lowloss_energy is not None else None
    ll_counts = _positive(lowloss_counts, "lowloss_counts")
    sigma = edge_sigma_ev(resolution)
    models, endmembers, names = _components(components, energy, sigma, counts)
    a = check_abundances(abundances, len(names))
    ny, nx, k = a.shape
    if names_from_abund is not None and names_from_abund != names:
        if models is None and not isinstance(components, xr.DataArray):
            names = names_from_abund  # plain arrays carry no names: take the abundances'
        else:
            raise InputError(f"abundance components {names_from_abund} do not match the components {names}; "
                             "give them in the same order")
    thickness = _thickness(thickness_nm, ny, nx)
    if e_ll is not None and models is None:
        raise InputError("a low-loss spectrum image needs Phase components (their plasmons and mean free paths)")
    if structural_map is not None:
        structural_map = _structural(structural_map, ny, nx)
    rng_noise, rng_drift, rng_ll, rng_adf = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))

    shift = _drift(rng_drift, ny, nx, drift, jitter)
    flat = a.reshape(-1, k)
    expected = _mix(flat, endmembers, models, energy, shift.ravel())
    noisy = rng_noise.poisson(expected).astype(np.float32).reshape(ny, nx, -1)

    coords = {"y": ("y", origin[0] + np.arange(ny) * px, {"units": "nm"}),
              "x": ("x", origin[1] + np.arange(nx) * px, {"units": "nm"}),
              "component": names, "energy": ("energy", energy, {"units": "eV", "long_name": "energy loss"})}
    maps = xr.Dataset({
        "abundances": (("y", "x", "component"), a),
        "endmembers": (("component", "energy"), endmembers, {"units": "counts"}),
        "noiseless": (("y", "x", "energy"), expected.reshape(ny, nx, -1).astype(np.float32), {"units": "counts"}),
        "energy_shift_ev": (("y", "x"), shift, {"units": "eV"}),
        "phase": (("y", "x"), np.argmax(a, axis=2).astype(np.int16)),
    }, coords=coords)
    if np.any(shift):
        maps["noiseless_aligned"] = (("y", "x", "energy"), (flat @ endmembers).reshape(ny, nx, -1).astype(np.float32),
                                     {"units": "counts"})
    adf_weight = _adf_weights(models, endmembers)
    adf_clean = (a @ adf_weight) * thickness / thickness.mean()
    adf_clean = adf_counts / adf_clean.mean() * adf_clean
    maps["adf_noiseless"] = (("y", "x"), adf_clean, {"units": "counts"})
    adf = rng_adf.poisson(adf_clean).astype(np.float32)
    if structural_map is not None:
        maps["structural_map"] = structural_map

    elements = sorted({el for m in (models or []) for el in dict(m.phase.composition)})
    metadata = {"title": title or "simulated EELS spectrum image", "beam_energy_kv": beam_energy_kv,
                "convergence_angle_mrad": convergence_angle_mrad, "collection_angle_mrad": collection_angle_mrad,
                "detector": "EELS spectrometer (simulated)", "material": " / ".join(names), "elements": elements,
                "dispersion_ev": float((energy[-1] - energy[0]) / (energy.size - 1)),
                "energy_resolution_ev": resolution, "tags": ["simulated", "atomine"]}
    data = spectrum_image(noisy, px, energy=energy, origin=origin, signal="EELS", name="EELS", metadata=metadata)
    extra = {"ADF": image(adf, px, origin=origin, signal="ADF", name="ADF",
                          metadata={**metadata, "title": "simultaneous ADF (simulated)", "detector": "ADF"})}

    no_edges = pd.DataFrame(columns=["component", "element", "edge", "onset_ev"])
    tables = {"edges": edges_table(models) if models else no_edges,
              "components": _components_table(models, names, adf_weight, endmembers)}
    parameters = {"model": "X = abundances @ endmembers (shifted by energy_shift_ev), data ~ Poisson(X)",
                  "seed": int(seed), "pixel_size_nm": px, "shape": [ny, nx], "n_components": k,
                  "components": [m.phase.describe() for m in models] if models else names,
                  "energy_start_ev": float(energy[0]), "energy_end_ev": float(energy[-1]),
                  "n_channels": int(energy.size),
                  "counts_per_channel": counts, "energy_resolution_ev": resolution, "edge_sigma_ev": sigma,
                  "energy_drift_ev": drift, "energy_jitter_ev": jitter, "adf_counts": float(adf_counts),
                  "beam_energy_kv": beam_energy_kv, "convergence_angle_mrad": convergence_angle_mrad,
                  "collection_angle_mrad": collection_angle_mrad}
    if e_ll is not None:
        ll, ll_params = _lowloss(models, a, thickness, shift, e_ll, resolution, ll_counts, rng_ll, maps)
        extra["EELS_LL"] = spectrum_image(ll, px, energy=e_ll, origin=origin,
                                          signal="EELS", name="EELS_LL",
                                          metadata={**metadata, "title": "simultaneous low-loss EELS (simulated)"})
        parameters.update(ll_params)
    return Simulation(data=data, truth=GroundTruth("eels", parameters, tables, maps), extra=extra)


def _adf_weights(models, endmembers) -> np.ndarray:
    if models is not None:
        return np.array([m.phase.mean_z() for m in models])
    # without a composition, a stronger-scattering phase is taken to give more counts
    return endmembers.mean(axis=1)


def _structural(structural_map, ny: int, nx: int) -> xr.DataArray:
    if not isinstance(structural_map, xr.DataArray) or tuple(structural_map.dims) != ("y", "x"):
        raise InputError("structural_map must be an xarray.DataArray with dims ('y', 'x') on the spectral grid")
    if structural_map.shape != (ny, nx):
        raise InputError(f"structural_map has shape {structural_map.shape}; it must be on the spectral grid {(ny, nx)} "
                         "(resample it with fields.resample_area)")
    check_values(structural_map.values, "structural_map", 2, 2)
    return xr.DataArray(np.asarray(structural_map.values, dtype=np.float64), dims=("y", "x"),
                        attrs=dict(structural_map.attrs))


def _components_table(models, names, adf_weight, endmembers) -> pd.DataFrame:
    rows = []
    for i, name in enumerate(names):
        row = {"component": name, "adf_weight": float(adf_weight[i]), "mean_counts": float(endmembers[i].mean())}
        if models is not None:
            p = models[i].phase
            row.update({"formula": p.formula(), "background_exponent": float(p.background_exponent),
                        "background_counts_at_start": float(models[i].background_level),
                        "plasmon_ev": float(p.plasmon_ev), "plasmon_width_ev": float(p.plasmon_width_ev),
                        "mean_free_path_nm": float(p.mean_free_path_nm)})
        rows.append(row)
    return pd.DataFrame(rows)


def _lowloss_axis(lowloss_energy) -> np.ndarray:
    e_ll = np.asarray(lowloss_energy, dtype=np.float64)
    if e_ll.ndim != 1:
        raise InputError(f"lowloss_energy must be a 1-D axis, got shape {e_ll.shape}")
    explicit_coord(e_ll, "eV", "energy")  # finite and monotonic, else CalibrationError
    check_uniform_axis(e_ll, "the low-loss energy axis")
    return e_ll


def _lowloss(models, a, thickness, shift, e_ll, resolution, i0, rng, maps):
    ny, nx, k = a.shape
    lam = np.array([m.phase.mean_free_path_nm for m in models])
    tau = a.reshape(-1, k) * thickness.reshape(-1, 1) / lam[None, :]
    expected = lowloss_spectra(e_ll, tau, [m.phase.plasmon_ev for m in models],
                               [m.phase.plasmon_width_ev for m in models], zlp_fwhm_ev=resolution,
                               incident_counts=np.full(ny * nx, i0), shift_ev=shift.ravel())
    noisy = rng.poisson(expected).astype(np.float32).reshape(ny, nx, -1)
    maps.coords[LOWLOSS_DIM] = (LOWLOSS_DIM, e_ll, {"units": "eV", "long_name": "energy loss (low-loss axis)"})
    maps["lowloss_noiseless"] = (("y", "x", LOWLOSS_DIM), expected.reshape(ny, nx, -1).astype(np.float32),
                                 {"units": "counts"})
    maps["thickness_nm"] = (("y", "x"), thickness, {"units": "nm"})
    maps["t_over_lambda"] = (("y", "x"), tau.sum(axis=1).reshape(ny, nx), {"units": ""})
    params = {"lowloss_start_ev": float(e_ll[0]), "lowloss_end_ev": float(e_ll[-1]), "lowloss_channels": int(e_ll.size),
              "lowloss_counts": i0, "zlp_fwhm_ev": resolution,
              "lowloss_model": "J^ = I0 R^ exp(sum_k tau_k (S_k^ - 1)), tau_k = a_k t / lambda_k, S_k Drude"}
    return noisy, params


from .eels_presets import PRESETS  # noqa: E402  (the presets call simulate_eels)

__all__ = ["LOWLOSS_DIM", "PRESETS", "Phase", "simulate_eels"]
