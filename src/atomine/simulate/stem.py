"""STEM image simulation (HAADF, ADF, ABF) from a projected structure, with ground truth.

Image formation, per pixel, in incident electrons N = dose x pixel area:

* dark field (HAADF, ADF): expected counts = N [b + sum_k s_k P(r - r_k)], where P is the
  probe intensity (per nm^2) and s_k the column's scattering cross-section (nm^2),
  s_k = c sum over the atoms of the column of Z^n. HAADF: n = 1.7 (incoherent
  Rutherford-like scattering to high angles); ADF: n = 1.4 (a lower inner angle
  collects more low-angle, less Z-dependent scattering) with a larger c and b.
  A column's expected integrated counts are dose x s_k, whatever the pixel size.
* annular bright field (ABF): a bright background fraction b minus dips,
  N [b - sum_k d_k P(r - r_k)], with d_k = c sum Z^(1/3): the depth grows slowly with
  Z, so light (O) columns stay visible next to heavy ones.

The model stays physical only while the detected fraction lies in [0, 1]; thicker or
heavier specimens raise InputError. Counts are then Poisson-sampled and Gaussian
detector noise is added. Per-line jitter and slow drift are rendered by evaluating
the model at each row's shifted positions (see :mod:`.scan_noise`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..data import GroundTruth, Simulation, image, jsonable, step
from ..errors import InputError
from . import _stem_checks as check
from .probe import Probe, apparent_positions, render_columns
from .scan_noise import describe as describe_scan
from .scan_noise import detect, scan_shifts
from .structure import Structure

_ELECTRON_CHARGE_C = 1.602176634e-19
_NM2_PER_A2 = 0.01
_MAX_SIDE_PX = 8192


@dataclass(frozen=True)
class DetectorModel:
    """Signal model of one STEM detector.

    Attributes
    ----------
    name : str
    exponent : float
        n in the per-atom cross-section c Z^n.
    cross_section_nm2 : float
        c, per atom and per unit Z^n, nm^2.
    background_fraction : float
        Fraction of incident electrons detected away from columns (dark field: diffuse
        background; ABF: bright-field annulus).
    collection_angle_mrad : (float, float)
        Inner and outer collection semi-angles (metadata only).
    dark_field : bool
        Columns add signal (True) or remove it (ABF).
    """

    name: str
    exponent: float
    cross_section_nm2: float
    background_fraction: float
    collection_angle_mrad: tuple[float, float]
    dark_field: bool


# Cross-sections are chosen so a 10-unit-cell SrTiO3 Sr column under a 0.09 nm probe
# scatters ~10 % of the probe to the HAADF detector at its peak, as in experiments.
DETECTORS: dict[str, DetectorModel] = {
    "HAADF": DetectorModel("HAADF", 1.7, 2.0e-7, 0.005, (80.0, 200.0), True),
    "ADF": DetectorModel("ADF", 1.4, 8.0e-7, 0.01, (40.0, 100.0), True),
    "ABF": DetectorModel("ABF", 1.0 / 3.0, 1.9e-5, 0.25, (12.0, 25.0), False),
}


def simulate_stem(
    structure: Structure,
    *,
    pixel_size_nm: float,
    fov_nm=None,
    detector: str = "HAADF",
    probe_fwhm_nm: float = 0.09,
    probe_tail_fraction: float = 0.0,
    probe_tail_fwhm_nm: float = 0.3,
    dose_e_per_A2: float = 2.0e4,
    background_fraction: float | None = None,
    shot_noise: bool = True,
    detector_noise_counts: float = 0.0,
    line_jitter_px: float = 0.0,
    drift_px_per_line=(0.0, 0.0),
    beam_energy_kv: float = 300.0,
    convergence_angle_mrad: float = 25.0,
    probe_current_pa: float = 20.0,
    title: str | None = None,
    seed: int = 0,
) -> Simulation:
    """Simulate a STEM image of ``structure`` with its ground truth.

    Parameters
    ----------
    structure : Structure
        Projected columns (see :mod:`.crystal` and :mod:`.defects`).
    pixel_size_nm : float
        Pixel size, nm. Pixel (i, j) is centred at (x, y) = (j, i) x pixel size.
    fov_nm : float or (float, float), optional
        Field of view (height, width) in nm; default the structure's.
    detector : {"HAADF", "ADF", "ABF"}
    probe_fwhm_nm, probe_tail_fraction, probe_tail_fwhm_nm : float
        Probe core FWHM (nm), fraction of intensity in a broad Gaussian tail, tail FWHM (nm).
    dose_e_per_A2 : float
        Electron dose, e-/A^2; incident electrons per pixel = dose x pixel area.
    background_fraction : float, optional
        Detected fraction away from columns; default the detector's (see ``DETECTORS``).
    shot_noise : bool
        Poisson-sample the counts.
    detector_noise_counts : float
        Standard deviation of additive Gaussian detector noise, counts.
    line_jitter_px : float
        RMS random x shift of each scan line, pixels.
    drift_px_per_line : (float, float)
        Slow drift (vx, vy), pixels per scan line.
    beam_energy_kv, convergence_angle_mrad, probe_current_pa : float
        Acquisition metadata; the probe current sets the dwell time for the dose.
    title : str, optional
    seed : int
        Seed of every random draw (jitter, shot noise, detector noise: independent streams).

    Returns
    -------
    Simulation
        ``data``: float32 image in counts. ``truth.tables["atoms"]``: one row per column
        (vacancies included) with true positions ``x``, ``y`` (nm), apparent image positions
        ``x_px``, ``y_px``, composition, ``sublattice`` (0 = strongest mean signal), lattice
        indices, ``cls``, expected integrated ``intensity`` (counts; ABF: dip depth), grain,
        phase, displacements. ``truth.tables["scan"]``: per-row shifts. ``truth.maps``:
        ``expected`` (noiseless image), ``grain``, ``phase``, ``boundary``, and ``ux``, ``uy``
        (nm) or ``dx_pm``, ``dy_pm`` where dislocations or polar fields exist, all at the
        specimen positions each pixel sampled.
    """
    if not isinstance(structure, Structure):
        raise InputError("structure must be a Structure (from crystal.lattice, grains, phases), "
                         f"got {type(structure).__name__}")
    px = check.positive("pixel_size_nm", pixel_size_nm)
    height, width = check.fov(structure.fov_nm if fov_nm is None else fov_nm)
    model = DETECTORS[check.choice("detector", detector, tuple(DETECTORS))]
    probe = Probe(probe_fwhm_nm, probe_tail_fraction, probe_tail_fwhm_nm)
    dose = check.positive("dose_e_per_A2", dose_e_per_A2)
    background = (model.background_fraction if background_fraction is None
                  else check.fraction("background_fraction", background_fraction))
    for name, value in (("beam_energy_kv", beam_energy_kv), ("convergence_angle_mrad", convergence_angle_mrad),
                        ("probe_current_pa", probe_current_pa)):
        check.positive(name, value)
    seed = check.integer("seed", seed, minimum=0)
    shape = (int(round(height / px)), int(round(width / px)))
    if min(shape) < 8 or max(shape) > _MAX_SIDE_PX:
        raise InputError(f"the image would be {shape[0]} x {shape[1]} pixels; choose fov_nm and pixel_size_nm "
                         f"for 8..{_MAX_SIDE_PX} pixels a side")

    jitter_rng, shot_rng, detector_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    shifts = scan_shifts(shape[0], line_jitter_px=line_jitter_px, drift_px_per_line=drift_px_per_line, rng=jitter_rng)
    check.non_negative("detector_noise_counts", detector_noise_counts)

    dose_per_nm2 = dose / _NM2_PER_A2
    incident = dose_per_nm2 * px * px
    amplitude = dose_per_nm2 * model.cross_section_nm2 * structure.weights(model.exponent)
    x_ideal, y_ideal = structure.x_nm / px, structure.y_nm / px
    columns = render_columns(amplitude, x_ideal, y_ideal, shape, probe, px, shifts.x_px, shifts.y_px)
    expected = incident * background + (columns if model.dark_field else -columns)
    _check_fraction(expected / incident)
    counts = detect(expected, shot_noise=bool(shot_noise), detector_noise_counts=detector_noise_counts,
                    shot_rng=shot_rng, detector_rng=detector_rng)

    x_app, y_app = apparent_positions(x_ideal, y_ideal, shape, probe, px, shifts.x_px, shifts.y_px)
    atoms, sublattices = _atoms_table(structure, amplitude, x_app, y_app)
    maps = _truth_maps(structure, expected, shape, px, shifts)
    parameters = {
        "simulator": "atomine.simulate.stem.simulate_stem",
        "detector": asdict(model), "probe": probe.describe(), "dose_e_per_A2": dose,
        "incident_e_per_px": incident, "background_fraction": background, "pixel_size_nm": px,
        "fov_nm": [height, width], "shape_px": list(shape),
        **describe_scan(line_jitter_px, drift_px_per_line, shot_noise, detector_noise_counts),
        "beam_energy_kv": float(beam_energy_kv), "convergence_angle_mrad": float(convergence_angle_mrad),
        "probe_current_pa": float(probe_current_pa), "seed": seed, "structure": structure.describe(),
    }
    parameters = jsonable(parameters)
    materials = sorted({c.material for c in structure.cells})
    metadata = {
        "title": title or f"simulated {model.name} image of {', '.join(materials)}",
        "instrument": "atomine.simulate (STEM model)",
        "beam_energy_kv": float(beam_energy_kv), "convergence_angle_mrad": float(convergence_angle_mrad),
        "collection_angle_mrad": list(model.collection_angle_mrad), "probe_current_pa": float(probe_current_pa),
        "dwell_time_s": incident * _ELECTRON_CHARGE_C / (probe_current_pa * 1e-12),
        "detector": model.name, "material": ", ".join(materials), "elements": [e for e in structure.elements],
        "tags": ["simulated", "stem", model.name.lower()],
    }
    data = image(counts, px, units="nm", signal=model.name, value_units="counts", metadata=metadata,
                 provenance=[step("simulate.stem", parameters)])
    maps = maps.assign_coords(y=data.coords["y"], x=data.coords["x"])
    scan = pd.DataFrame({"row": np.arange(shape[0]), "y": data.coords["y"].values,
                         "jitter_x_px": shifts.jitter_x_px, "drift_x_px": shifts.drift_x_px,
                         "shift_x_px": shifts.x_px, "shift_y_px": shifts.y_px})
    tables = {"atoms": atoms, "sublattices": sublattices, "scan": scan,
              "grains": pd.DataFrame({"grain": np.arange(len(structure.grain_phase)), "phase": list(structure.grain_phase),
                                      "rotation_deg": list(structure.grain_rotation_deg),
                                      "origin_x": [o[0] for o in structure.grain_origin_nm],
                                      "origin_y": [o[1] for o in structure.grain_origin_nm]})}
    if structure.dislocations:
        tables["dislocations"] = pd.DataFrame([{**d.describe(), "bx_nm": d.burgers_nm[0], "by_nm": d.burgers_nm[1]}
                                               for d in structure.dislocations]).drop(columns=["burgers_nm"])
    return Simulation(data=data, truth=GroundTruth(kind="stem", parameters=parameters, tables=tables, maps=maps))


def _check_fraction(fraction: np.ndarray) -> None:
    lo, hi = float(fraction.min()), float(fraction.max())
    if hi > 1.0 or lo < 0.0:
        raise InputError(f"the detected fraction of the beam reaches {lo:.2f}..{hi:.2f}, outside [0, 1]: the specimen is too "
                         "thick or heavy for this linear image model; reduce thickness_cells or the background_fraction")


def _atoms_table(structure: Structure, amplitude: np.ndarray, x_app: np.ndarray, y_app: np.ndarray):
    """The truth atom table and the sublattice summary (ranked by mean column signal)."""
    table = structure.table()
    table.insert(2, "x_px", x_app)
    table.insert(3, "y_px", y_app)
    table["intensity"] = amplitude
    names = [f"{structure.cells[p].material}:{s}" for p, s in zip(structure.phase, structure.site)]
    table["sublattice_name"] = names
    occupied = table["cls"] != "vacancy"
    keys = []
    for p, cell in enumerate(structure.cells):  # a loop over the few sublattices
        for k, site in enumerate(cell.sites):
            sel = (table["phase"] == p) & (table["site"] == site)
            if sel.any():
                mean = float(table.loc[sel & occupied, "intensity"].mean()) if (sel & occupied).any() else 0.0
                keys.append((-mean, p, k, f"{cell.material}:{site}", p, site, int(sel.sum())))
    keys.sort()
    rank = {key[3]: r for r, key in enumerate(keys)}
    table.insert(table.columns.get_loc("site_i"), "sublattice", table["sublattice_name"].map(rank).astype(np.int64))
    sublattices = pd.DataFrame({"sublattice": [rank[k[3]] for k in keys], "name": [k[3] for k in keys],
                                "phase": [k[4] for k in keys], "site": [k[5] for k in keys],
                                "mean_intensity": [-k[0] for k in keys], "n_columns": [k[6] for k in keys]})
    return table, sublattices


def _truth_maps(structure: Structure, expected: np.ndarray, shape, px: float, shifts) -> xr.Dataset:
    """Per-pixel truth at the specimen position each pixel sampled."""
    ny, nx = shape
    xs = (np.arange(nx)[None, :] - shifts.x_px[:, None]) * px
    ys = np.broadcast_to(((np.arange(ny) - shifts.y_px) * px)[:, None], (ny, nx))
    grain = structure.grain_at(xs, ys)
    phase = np.asarray(structure.grain_phase, dtype=np.int16)[grain]
    boundary = np.zeros(shape, dtype=bool)
    boundary[:, 1:] |= grain[:, 1:] != grain[:, :-1]
    boundary[:, :-1] |= grain[:, 1:] != grain[:, :-1]
    boundary[1:, :] |= grain[1:, :] != grain[:-1, :]
    boundary[:-1, :] |= grain[1:, :] != grain[:-1, :]
    dims = ("y", "x")
    maps = {"expected": (dims, expected.astype(np.float32), {"units": "counts", "long_name": "noiseless expected counts"}),
            "grain": (dims, grain.astype(np.int16), {"long_name": "grain label"}),
            "phase": (dims, phase, {"long_name": "phase index"}),
            "boundary": (dims, boundary, {"long_name": "grain/phase boundary pixel"}),
            "scan_shift_x_px": (("y",), shifts.x_px, {"units": "px"}),
            "scan_shift_y_px": (("y",), shifts.y_px, {"units": "px"})}
    if structure.dislocations:
        ux, uy = structure.displacement_at(xs, ys)
        maps["ux"] = (dims, ux.astype(np.float32), {"units": "nm", "long_name": "elastic displacement x"})
        maps["uy"] = (dims, uy.astype(np.float32), {"units": "nm", "long_name": "elastic displacement y"})
    if structure.polar:
        dx, dy = structure.polarisation_at(xs, ys)
        sites = ", ".join(sorted({p.site for p in structure.polar}))
        maps["dx_pm"] = (dims, dx.astype(np.float32), {"units": "pm", "long_name": f"polar displacement x of site {sites}"})
        maps["dy_pm"] = (dims, dy.astype(np.float32), {"units": "pm", "long_name": f"polar displacement y of site {sites}"})
    return xr.Dataset(maps)


from .stem_presets import PRESETS  # noqa: E402  (the presets call simulate_stem)

__all__ = ["DETECTORS", "DetectorModel", "PRESETS", "simulate_stem"]
