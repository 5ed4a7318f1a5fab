"""A simulated structure-property pair: a HAADF image and a coarse EELS SI whose response follows the structure.

The specimen is SrTiO3 [001] (10 cells thick) with two smooth, independent random
fields applied to it:

* a strain field: column displacements ``u = s grad(phi)`` with ``phi`` a Gaussian random
  field, so the strain trace ``exx + eyy = s lap(phi)`` is known exactly at every point
  (scaled to a root-mean-square trace of ``strain_amplitude``);
* a dopant density ``p(x, y) = p_max / (1 + exp(-2 g))``: each A column becomes a La
  dopant column (3 of its 10 Sr replaced) with probability ``p`` at its ideal position;
  1 % of the remaining A columns are empty (vacancies).

A HAADF image (``pixel_nm``, no scan distortion) is simulated from the columns. The
spectrum image has ``coarsening`` x larger pixels on its own (SPECTRAL) frame, which maps
to the image frame by the affine transform ``T = from_params(shift_nm, rotation_deg)``
(see :class:`atomine.correlate.transform.AffineTransform`): spectral pixel (i, j) is
centred at ``(x_s, y_s) = (j, i) * pixel_si`` and covers the square of side ``pixel_si``
around it; its FOOTPRINT is that square mapped by ``T``.

Per spectral pixel, the true drivers are footprint means (``supersample**2`` equal
sub-areas, the same rule as an area-weighted resampling):

* ``strain_trace``: mean of ``exx + eyy`` (unitless);
* ``dopant_fraction``: mean of the dopant indicator of the nearest A column, i.e. the
  fraction of the footprint's area lying in unit cells (A-sublattice Voronoi cells) whose
  A column is a dopant column.

The spectrum image mixes SrTiO3 with a reduced, La-bearing phase whose abundance is
``clip(intercept + c_strain * strain_trace + c_dopant * dopant_fraction, 0, 1)`` when
``driven``; otherwise the same law is applied to the drivers of an independent specimen
(other random fields and dopant draws), so null maps have exactly the driven maps'
statistics and autocorrelation but no link to this specimen's structure. The simultaneous ADF is the
noiseless HAADF averaged over each footprint, scaled to ``adf_counts`` and Poisson-sampled.

Defaults: HAADF at 0.05 nm/px (the A-A spacing of 0.39 nm spans ~8 px, enough for
:func:`atomine.workflows.analyze_atoms` to fit and classify every column); 64 x 64 spectral
pixels of 0.2 nm (12.8 nm field). A spectral pixel then holds ~0.26 A columns, so structural
descriptors need area weighting (``atoms_to_grid(..., weighting="area")``, the same
definition as ``dopant_fraction`` here) rather than counts of atoms per pixel.

Cost at the defaults: :func:`simulate_pair` ~0.6 s, ~60 MB peak; :func:`simulate_pair_maps`
(drivers and abundance only, for many-seed null checks) ~0.12 s (0.25 s with ``driven=False``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.fft
import xarray as xr
from scipy import ndimage
from scipy.spatial import cKDTree

from ..data import GroundTruth, Simulation, image, jsonable, linear_coord
from ..errors import InputError
from . import crystal, defects
from .eels_spectra import Phase

A_NM = 0.3905
ENERGY = 400.0 + np.arange(500) * 1.0  # Ti L2,3, O K, La M4,5
MARGIN_NM = 1.0  # the HAADF extends this far beyond the SI's footprint on every side
DRIVERS = ("strain_trace", "dopant_fraction")
COEFFICIENTS = {"strain_trace": 6.0, "dopant_fraction": 0.4}  # abundance per unit driver
INTERCEPT = 0.3

SRTIO3 = Phase("SrTiO3", {"Sr": 1, "Ti": 1, "O": 3}, background_exponent=3.2, crystal_field_ev={"Ti": 2.0},
               branching_ratio={"Ti": 0.66}, plasmon_ev=28.0, plasmon_width_ev=8.0, mean_free_path_nm=120.0)
# strained / La-doped SrTiO3: Ti partly reduced (smaller crystal-field splitting, higher L3/L2), La M4,5 present
REDUCED = Phase("La,Ti3+:SrTiO3", {"La": 0.3, "Sr": 0.7, "Ti": 1, "O": 3}, background_exponent=3.1,
                crystal_field_ev={"Ti": 1.5}, branching_ratio={"Ti": 0.69, "La": 0.44}, chemical_shift_ev={"Ti": -0.8},
                plasmon_ev=27.0, plasmon_width_ev=7.5, mean_free_path_nm=118.0)


def _positive(name: str, value, integer: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0 or (integer and v != int(v)):
        raise InputError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}")
    return int(v) if integer else v


def _options(shape_si, coarsening, shift_nm, rotation_deg, strain_amplitude, correlation_nm, pixel_nm,
             dopant_max, supersample) -> dict:
    shape = tuple(np.atleast_1d(shape_si))
    if len(shape) != 2:
        raise InputError(f"shape_si must be (ny, nx), got {shape_si!r}")
    shape = tuple(_positive("shape_si", s, integer=True) for s in shape)
    if min(shape) < 8:
        raise InputError(f"shape_si must be at least 8 x 8 spectral pixels, got {shape}")
    shift = np.asarray(shift_nm, dtype=float)
    if shift.shape != (2,) or not np.all(np.isfinite(shift)):
        raise InputError(f"shift_nm must be two finite numbers (x, y) in nm, got {shift_nm!r}")
    rot = float(rotation_deg)
    if not np.isfinite(rot) or abs(rot) > 45:
        raise InputError(f"rotation_deg must be within +-45 degrees, got {rotation_deg!r}")
    strain = float(strain_amplitude)
    if not np.isfinite(strain) or not 0 <= strain <= 0.05:
        raise InputError(f"strain_amplitude must be in [0, 0.05] (an RMS strain trace), got {strain_amplitude!r}")
    pmax = float(dopant_max)
    if not np.isfinite(pmax) or not 0 < pmax <= 1:
        raise InputError(f"dopant_max must be in (0, 1], got {dopant_max!r}")
    return {"shape_si": shape, "coarsening": _positive("coarsening", coarsening, integer=True),
            "shift_nm": (float(shift[0]), float(shift[1])), "rotation_deg": rot, "strain_amplitude": strain,
            "correlation_nm": _positive("correlation_nm", correlation_nm), "pixel_nm": _positive("pixel_nm", pixel_nm),
            "dopant_max": pmax, "supersample": _positive("supersample", supersample, integer=True)}


def _transform(o: dict):
    from ..correlate.transform import AffineTransform  # the shared spectral -> image contract

    return AffineTransform.from_params(shift_nm=o["shift_nm"], rotation_deg=o["rotation_deg"])


def _footprint_points(o: dict, T) -> tuple[np.ndarray, np.ndarray]:
    """Image-frame (x, y) of the supersample**2 sub-area centres of every spectral pixel: (ny, nx, s*s)."""
    (ny, nx), s = o["shape_si"], o["supersample"]
    ps = o["pixel_nm"] * o["coarsening"]
    off = ((np.arange(s) + 0.5) / s - 0.5) * ps
    xs = (np.arange(nx) * ps)[None, :, None, None] + off[None, None, None, :]
    ys = (np.arange(ny) * ps)[:, None, None, None] + off[None, None, :, None]
    xs, ys = np.broadcast_arrays(xs, ys)
    x, y = T(xs, ys)
    return x.reshape(ny, nx, s * s), y.reshape(ny, nx, s * s)


def _image_shape(o: dict, T) -> tuple[int, int]:
    """HAADF (ny, nx): the SI footprint plus MARGIN_NM all round, from the image origin (pixel (0, 0) at 0 nm)."""
    (ny, nx), ps = o["shape_si"], o["pixel_nm"] * o["coarsening"]
    cx, cy = T(np.array([-0.5, nx - 0.5, -0.5, nx - 0.5]) * ps, np.array([-0.5, -0.5, ny - 0.5, ny - 0.5]) * ps)
    if min(cx.min(), cy.min()) < MARGIN_NM:
        raise InputError(f"the SI footprint reaches ({cx.min():.2f}, {cy.min():.2f}) nm; give a shift_nm that keeps it "
                         f"at least {MARGIN_NM} nm inside the image (x and y >= {MARGIN_NM} nm)")
    px = o["pixel_nm"]
    return int(np.ceil((cy.max() + MARGIN_NM) / px)), int(np.ceil((cx.max() + MARGIN_NM) / px))


def _fields(rng: np.random.Generator, shape: tuple[int, int], corr_px: float) -> dict[str, np.ndarray]:
    """Standardised Gaussian random field g, and phi with exact grad and Laplacian, on the image grid.

    White noise smoothed by a Gaussian of s.d. ``corr_px``, generated on a grid padded by
    four kernel widths and cropped (not periodic across the image); derivatives are
    spectral, so trace = d(ux)/dx + d(uy)/dy holds to rounding.
    """
    pad = int(np.ceil(4 * corr_px))
    my, mx = shape[0] + 2 * pad, shape[1] + 2 * pad
    ky = 2 * np.pi * scipy.fft.fftfreq(my)[:, None]
    kx = 2 * np.pi * scipy.fft.rfftfreq(mx)[None, :]
    f = scipy.fft.rfft2(rng.standard_normal((my, mx))) * np.exp(-0.5 * corr_px**2 * (kx**2 + ky**2))
    crop = (slice(pad, pad + shape[0]), slice(pad, pad + shape[1]))
    out = {name: scipy.fft.irfft2(f * mult, s=(my, mx))[crop]
           for name, mult in (("phi", 1.0), ("dx", 1j * kx), ("dy", 1j * ky), ("lap", -(kx**2 + ky**2)))}
    return out  # derivatives per pixel; callers scale to nm


def _sample(field: np.ndarray, x_nm, y_nm, px: float) -> np.ndarray:
    """Bilinear sample of an image-grid field (pixel (i, j) at (j, i) * px) at nm positions."""
    return ndimage.map_coordinates(field, [np.ravel(y_nm) / px, np.ravel(x_nm) / px], order=1,
                                   mode="nearest").reshape(np.shape(x_nm))


def _standard(g: np.ndarray) -> np.ndarray:
    return (g - g.mean()) / g.std()


def _drivers(rngs, o: dict, T, shape) -> tuple:
    """One specimen: strained, doped structure, image-grid fields and the per-spectral-pixel driver maps."""
    r_strain, r_density, r_draw = rngs
    px, corr_px = o["pixel_nm"], o["correlation_nm"] / o["pixel_nm"]
    strain = _fields(r_strain, shape, corr_px)
    scale = o["strain_amplitude"] / (strain["lap"].std() / px**2) if o["strain_amplitude"] > 0 else 0.0
    ux, uy = scale * strain["dx"] / px, scale * strain["dy"] / px  # nm
    trace = scale * strain["lap"] / px**2
    g = _standard(_fields(r_density, shape, corr_px)["phi"])
    density = o["dopant_max"] / (1.0 + np.exp(-2.0 * g))

    s = crystal.lattice(crystal.perovskite_cell(A_NM, A="Sr", B="Ti", X="O", thickness_cells=10),
                        fov_nm=(shape[0] * px, shape[1] * px), margin_nm=0.5)
    dx, dy = _sample(ux, s.x0_nm, s.y0_nm, px), _sample(uy, s.x0_nm, s.y0_nm, px)
    s = s.replace(x_nm=s.x0_nm + dx, y_nm=s.y0_nm + dy, ux_nm=dx, uy_nm=dy)
    grid = defects.occupancy_grid(s, "A")
    a_rows = np.flatnonzero(s.site == "A")
    u = r_draw.random((2, a_rows.size))  # one dopant and one vacancy draw per A column
    p = _sample(density, s.x0_nm[a_rows], s.y0_nm[a_rows], px)
    occ = np.zeros(grid.shape, dtype=np.int8)
    occ[s.site_i[a_rows] - grid.i0, s.site_j[a_rows] - grid.j0] = np.where(u[0] < p, 1, np.where(u[1] < 0.01, -1, 0))
    s = defects.substitute(s, occ, site="A", dopant="La", atoms_per_column=3)

    fx, fy = _footprint_points(o, T)
    # nearest A column of each sub-area centre: the unit cell (A-sublattice Voronoi cell) it lies in
    _, nearest = cKDTree(np.c_[s.x_nm[a_rows], s.y_nm[a_rows]]).query(np.c_[fx.ravel(), fy.ravel()])
    is_dopant = (s.cls[a_rows] == "dopant").astype(float)
    maps = {"strain_trace": _sample(trace, fx, fy, px).mean(axis=2),
            "dopant_fraction": is_dopant[nearest].reshape(fx.shape).mean(axis=2),
            "dopant_density": _sample(density, fx, fy, px).mean(axis=2)}
    return s, maps, {"strain_trace": trace, "ux": ux, "uy": uy, "dopant_density": density}


def _build(seed: int, driven: bool, o: dict) -> dict:
    """Structure, fields, per-spectral-pixel drivers and the driven abundance (no images, no spectra)."""
    seed = int(_positive("seed", seed + 1, integer=True)) - 1  # accepts 0
    T = _transform(o)
    shape = _image_shape(o, T)
    streams = np.random.SeedSequence(seed).spawn(7)
    r_strain, r_density, r_draw, _, r_stem, r_eels, r_adf = (np.random.default_rng(q) for q in streams)
    s, maps, image_maps = _drivers((r_strain, r_density, r_draw), o, T, shape)
    raw = INTERCEPT + sum(COEFFICIENTS[k] * maps[k] for k in DRIVERS)
    if driven:
        abundance = raw
    else:
        # the same law applied to an independent specimen's drivers: same statistics, no link to this one
        _, shadow, _ = _drivers(tuple(np.random.default_rng(q) for q in streams[3].spawn(3)), o, T, shape)
        abundance = INTERCEPT + sum(COEFFICIENTS[k] * shadow[k] for k in DRIVERS)
        maps["null_field"] = abundance.copy()
    maps["abundance_unclipped"] = abundance
    maps["abundance"] = np.clip(abundance, 0.0, 1.0)
    return {"T": T, "shape": shape, "structure": s, "maps": maps, "seed": seed, "driven": bool(driven),
            "image_maps": image_maps,
            "rng": {"stem": int(r_stem.integers(2**31)), "eels": int(r_eels.integers(2**31)), "adf": r_adf}}


def _si_coords(o: dict) -> dict:
    (ny, nx), ps = o["shape_si"], o["pixel_nm"] * o["coarsening"]
    return {"y": linear_coord(ny, ps, 0.0, "nm", "y"), "x": linear_coord(nx, ps, 0.0, "nm", "x")}


_UNITS = {"strain_trace": "", "dopant_fraction": "", "dopant_density": "", "abundance": "", "abundance_unclipped": "",
          "null_field": ""}


def _maps_dataset(b: dict, o: dict) -> xr.Dataset:
    return xr.Dataset({k: (("y", "x"), v, {"units": _UNITS[k]}) for k, v in b["maps"].items()}, coords=_si_coords(o))


def _parameters(b: dict, o: dict) -> dict:
    return jsonable({
        "simulator": "atomine.simulate.correlated_pair.simulate_pair", "seed": b["seed"], "driven": b["driven"],
        **{k: list(v) if isinstance(v, tuple) else v for k, v in o.items()},
        "pixel_si_nm": o["pixel_nm"] * o["coarsening"], "image_shape_px": list(b["shape"]), "margin_nm": MARGIN_NM,
        "transform": b["T"].to_dict(), "drivers": list(DRIVERS) if b["driven"] else [],
        "coefficients": dict(COEFFICIENTS) if b["driven"] else {}, "intercept": INTERCEPT if b["driven"] else None,
        "driven_component": REDUCED.name,
        "model": ("abundance = clip(intercept + sum_k coefficients[k] * driver_k, 0, 1), drivers = footprint means"
                  if b["driven"] else "abundance = the same law on an independent specimen's drivers (null)"),
    })


def simulate_pair_maps(seed: int = 0, driven: bool = True, *, shape_si=(64, 64), coarsening: int = 4,
                       shift_nm=(1.37, 2.41), rotation_deg: float = 3.0, strain_amplitude: float = 0.02,
                       correlation_nm: float = 1.0, pixel_nm: float = 0.05, dopant_max: float = 0.5,
                       supersample: int = 8) -> xr.Dataset:
    """Fast path of :func:`simulate_pair`: only the per-spectral-pixel driver and abundance maps.

    Same seed and options give exactly the maps in ``simulate_pair(...).truth.maps``
    (no image, no spectra; ~0.1 s) for null checks over hundreds of seeds.

    Returns
    -------
    xarray.Dataset
        On the spectral grid (coords in nm, SPECTRAL frame): ``strain_trace``,
        ``dopant_fraction``, ``dopant_density`` (footprint mean of the smooth probability),
        ``abundance`` (the driven component's, clipped to [0, 1]),
        ``abundance_unclipped`` and, when not driven, ``null_field``; ``attrs`` holds the
        parameters (transform, drivers, coefficients).
    """
    o = _options(shape_si, coarsening, shift_nm, rotation_deg, strain_amplitude, correlation_nm, pixel_nm,
                 dopant_max, supersample)
    b = _build(seed, driven, o)
    ds = _maps_dataset(b, o)
    ds.attrs = _parameters(b, o)
    return ds


def simulate_pair(*, seed: int = 0, driven: bool = True, shape_si=(64, 64), coarsening: int = 4,
                  shift_nm=(1.37, 2.41), rotation_deg: float = 3.0, strain_amplitude: float = 0.02,
                  correlation_nm: float = 1.0, pixel_nm: float = 0.05, dopant_max: float = 0.5, supersample: int = 8,
                  dose_e_per_A2: float = 2.0e4, counts_per_channel: float = 400.0,
                  adf_counts: float = 2000.0) -> Simulation:
    """A HAADF image and a coarser, shifted and rotated EELS SI whose phase abundance follows strain and doping.

    Parameters
    ----------
    seed : int
        Seed of every random draw (fields, dopants, noise).
    driven : bool
        Whether the spectral response follows the drivers (else an independent random field).
    shape_si : (int, int)
        Spectral pixels (ny, nx).
    coarsening : int
        Spectral pixel size / HAADF pixel size.
    shift_nm : (float, float)
        Image-frame position (x, y) in nm of spectral pixel (0, 0)'s centre.
    rotation_deg : float
        Rotation of the spectral frame in the image, counter-clockwise as displayed.
    strain_amplitude : float
        RMS of the strain trace exx + eyy (unitless).
    correlation_nm : float
        Standard deviation of the Gaussian smoothing all random fields (nm).
    pixel_nm : float
        HAADF pixel size (nm); the spectral pixel is ``coarsening * pixel_nm``.
    dopant_max : float
        Highest local dopant probability of an A column.
    supersample : int
        Sub-areas per spectral-pixel side for the footprint means.
    dose_e_per_A2, counts_per_channel, adf_counts : float
        HAADF dose (e-/A^2), mean counts per channel of a pure-phase spectrum, mean ADF counts.

    Returns
    -------
    Simulation
        ``data``: EELS SI (y, x, energy), counts, SPECTRAL-frame coords (pixel (0, 0) at 0 nm).
        ``extra``: ``ADF`` (simultaneous, spectral grid) and ``HAADF`` (image frame, pixel
        (0, 0) at 0 nm). ``truth`` (kind ``"correlated_pair"``): ``parameters["transform"]``
        (``AffineTransform.to_dict()``, spectral -> image, nm), ``drivers``, ``coefficients``,
        ``intercept``; ``maps`` on the spectral grid as in :func:`simulate_pair_maps` plus the
        EELS truth (``abundances``, ``endmembers``, ``noiseless``, ``adf_noiseless``) and, on
        dims ``(y_image, x_image)``, ``haadf_expected``, ``strain_trace_image``, ``ux_image``,
        ``uy_image`` (nm), ``dopant_density_image``; tables ``atoms`` (true columns: x, y, ux,
        uy in nm, cls host/dopant/vacancy), ``sublattices``, ``edges``, ``components``,
        ``drivers`` (name, coefficient, std).
    """
    from .eels import simulate_eels
    from .fields import abundance_array
    from .stem import simulate_stem

    o = _options(shape_si, coarsening, shift_nm, rotation_deg, strain_amplitude, correlation_nm, pixel_nm,
                 dopant_max, supersample)
    b = _build(seed, driven, o)
    px, shape = o["pixel_nm"], b["shape"]
    stem = simulate_stem(b["structure"], pixel_size_nm=px, fov_nm=(shape[0] * px, shape[1] * px), detector="HAADF",
                         probe_fwhm_nm=0.1, probe_tail_fraction=0.05, dose_e_per_A2=dose_e_per_A2,
                         detector_noise_counts=0.5, seed=b["rng"]["stem"],
                         title="HAADF SrTiO3 [001]: La dopant density and strain fields (correlated pair)")
    a = b["maps"]["abundance"]
    ab = abundance_array(np.stack([1.0 - a, a], axis=-1), px * o["coarsening"], [SRTIO3.name, REDUCED.name])
    eels = simulate_eels((SRTIO3, REDUCED), ab, ENERGY, counts_per_channel=_positive("counts_per_channel",
                         counts_per_channel), seed=b["rng"]["eels"],
                         title="EELS SI driven by strain and La doping (correlated pair)")

    # simultaneous ADF: the noiseless HAADF averaged over each footprint (bilinear at the sub-area centres)
    fx, fy = _footprint_points(o, b["T"])
    expected = stem.truth.maps["expected"].values.astype(np.float64)
    adf_clean = _sample(expected, fx, fy, px).mean(axis=2)
    adf_clean *= _positive("adf_counts", adf_counts) / adf_clean.mean()
    adf = image(b["rng"]["adf"].poisson(adf_clean).astype(np.float32), px * o["coarsening"], origin=(0.0, 0.0),
                signal="ADF", name="ADF", metadata={**eels.data.attrs.get("metadata", {}),
                                                    "title": "simultaneous ADF (simulated)", "detector": "ADF"})

    maps = _maps_dataset(b, o)
    for k in ("abundances", "endmembers", "noiseless", "phase"):
        maps[k] = eels.truth.maps[k]
    maps["adf_noiseless"] = (("y", "x"), adf_clean, {"units": "counts"})
    img = {"y_image": linear_coord(shape[0], px, 0.0, "nm", "y_image"),
           "x_image": linear_coord(shape[1], px, 0.0, "nm", "x_image")}
    dims = ("y_image", "x_image")
    maps = maps.assign_coords(img)
    maps["haadf_expected"] = (dims, expected.astype(np.float32), {"units": "counts"})
    for k, v in b["image_maps"].items():
        maps[f"{k}_image"] = (dims, v.astype(np.float32), {"units": "nm" if k in ("ux", "uy") else ""})

    drivers = pd.DataFrame({"name": list(DRIVERS), "coefficient": [COEFFICIENTS[k] if driven else 0.0 for k in DRIVERS],
                            "std": [float(b["maps"][k].std()) for k in DRIVERS],
                            "definition": ["footprint mean of exx + eyy",
                                           "footprint area fraction in unit cells with a La dopant A column"]})
    tables = {"atoms": stem.truth.tables["atoms"], "sublattices": stem.truth.tables["sublattices"],
              "edges": eels.truth.tables["edges"], "components": eels.truth.tables["components"], "drivers": drivers}
    parameters = {**_parameters(b, o), "stem": stem.truth.parameters, "eels": eels.truth.parameters,
                  "adf_counts": float(adf_counts), "fraction_clipped": float(np.mean(
                      b["maps"]["abundance"] != b["maps"]["abundance_unclipped"]))}
    return Simulation(data=eels.data, truth=GroundTruth("correlated_pair", jsonable(parameters), tables, maps),
                      extra={"ADF": adf, "HAADF": stem.data})


def pair_haadf_eels(seed: int = 0) -> Simulation:
    """HAADF at 0.05 nm/px + 64 x 64 EELS SI at 0.2 nm/px (shifted, rotated 3 deg) following strain and La density."""
    return simulate_pair(seed=seed)


PRESETS = {"pair-haadf-eels": (pair_haadf_eels.__doc__.strip(), pair_haadf_eels)}

__all__ = ["COEFFICIENTS", "DRIVERS", "INTERCEPT", "PRESETS", "pair_haadf_eels", "simulate_pair", "simulate_pair_maps"]
