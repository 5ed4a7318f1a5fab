"""Named EELS example datasets: name -> (one-line description, make(seed) -> Simulation).

All show a SrTiO3 / LaMnO3 heterostructure over 400-899 eV (Ti L2,3, O K, Mn L2,3,
La M4,5) at 1 eV per channel on a 48 x 48 grid of 0.25 nm pixels. The designed
geometry is fixed; the seed draws the noise (and the random fields where used).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..data import Simulation, image
from . import fields
from .fields import MIXED_CONTRAST, MIXED_FLOOR
from .eels_spectra import Phase

SHAPE = (48, 48)
PIXEL_NM = 0.25
ENERGY = 400.0 + np.arange(500) * 1.0
LOWLOSS_ENERGY = -5.0 + np.arange(551) * 0.1
BOUNDARIES_NM = (5.0, 7.0)
INTERFACE_WIDTH_NM = 1.0

SRTIO3 = Phase("SrTiO3", {"Sr": 1, "Ti": 1, "O": 3}, background_exponent=3.2, crystal_field_ev={"Ti": 2.0},
               branching_ratio={"Ti": 0.66}, plasmon_ev=28.0, plasmon_width_ev=8.0, mean_free_path_nm=120.0)
# intermixed interface: reduced Ti (smaller splitting) and Mn2+-like Mn (onsets 1 eV lower, higher L3 ratio)
INTERFACE = Phase("interface", {"La": 0.5, "Sr": 0.5, "Ti": 0.5, "Mn": 0.5, "O": 3}, background_exponent=3.0,
                  crystal_field_ev={"Ti": 1.6}, branching_ratio={"Ti": 0.68, "Mn": 0.79},
                  chemical_shift_ev={"Mn": -1.0}, plasmon_ev=26.5, plasmon_width_ev=7.0, mean_free_path_nm=115.0)
LAMNO3 = Phase("LaMnO3", {"La": 1, "Mn": 1, "O": 3}, background_exponent=2.8, branching_ratio={"Mn": 0.72, "La": 0.44},
               plasmon_ev=25.0, plasmon_width_ev=6.5, mean_free_path_nm=110.0)
PHASES = (SRTIO3, INTERFACE, LAMNO3)


def _layers() -> xr.DataArray:
    return fields.layered_phases(SHAPE, PIXEL_NM, BOUNDARIES_NM, INTERFACE_WIDTH_NM, names=[p.name for p in PHASES])


def eels_si(seed: int = 0) -> Simulation:
    """SrTiO3 / interface / LaMnO3 layers with 1 nm wide interfaces; core loss 400-899 eV."""
    from .eels import simulate_eels

    return simulate_eels(PHASES, _layers(), ENERGY, counts_per_channel=400.0, seed=seed,
                         title="EELS SI of a SrTiO3 / LaMnO3 interface (Ti L2,3, O K, Mn L2,3, La M4,5)")


def eels_si_mixed(seed: int = 0) -> Simulation:
    """The same three phases as smooth random abundances strictly inside the simplex (min 1e-4, purest > 0.99)."""
    from .eels import simulate_eels

    ab = fields.random_fields(SHAPE, PIXEL_NM, 3, correlation_length_nm=1.5, contrast=MIXED_CONTRAST,
                              min_abundance=MIXED_FLOOR, names=[p.name for p in PHASES], seed=seed)
    return simulate_eels(PHASES, ab, ENERGY, counts_per_channel=400.0, seed=seed,
                         title="EELS SI, three phases mixed by smooth random fields")


def eels_si_lowloss(seed: int = 0) -> Simulation:
    """The layers with a matching low-loss SI (-5..50 eV) on a thickness wedge, plus 0.5 eV energy drift."""
    from .eels import simulate_eels

    thickness = np.broadcast_to(np.linspace(45.0, 90.0, SHAPE[1]), SHAPE)
    return simulate_eels(PHASES, _layers(), ENERGY, counts_per_channel=400.0, lowloss_energy=LOWLOSS_ENERGY,
                         thickness_nm=thickness, energy_drift_ev=0.5, energy_jitter_ev=0.05, seed=seed,
                         title="dual EELS SI (core loss + low loss) of a SrTiO3 / LaMnO3 interface on a wedge")


def _dopant_density(seed: int, pixel_nm: float = 0.025) -> xr.DataArray:
    """A fine-grid La fraction map: a smooth random field clipped to 0..0.3 (segregation patches)."""
    n = int(round(SHAPE[0] * PIXEL_NM / pixel_nm))
    g = fields.random_fields((n, n), pixel_nm, 2, correlation_length_nm=1.2, contrast=3.0, min_abundance=0.001,
                             seed=seed + 1000)
    frac = 0.3 * g.values[..., 1]
    origin = -0.5 * PIXEL_NM + 0.5 * pixel_nm  # the fine field of view coincides with the spectral one
    return image(frac, pixel_nm, origin=(origin, origin), signal="dopant_fraction", value_units="",
                 name="La_fraction")


def eels_si_structure(seed: int = 0) -> Simulation:
    """SrTiO3 with La-rich patches: abundances follow a fine La-fraction map area-averaged to 0.25 nm."""
    from .eels import simulate_eels

    doped = Phase("La:SrTiO3", {"La": 0.3, "Sr": 0.7, "Ti": 1, "O": 3}, background_exponent=3.1,
                  crystal_field_ev={"Ti": 1.8}, branching_ratio={"Ti": 0.67, "La": 0.44}, plasmon_ev=27.5,
                  plasmon_width_ev=7.5, mean_free_path_nm=118.0)
    structural = _dopant_density(seed)
    # abundance of the doped phase = local La fraction / 0.3 (the doped phase's own La fraction)
    ab, resampled = fields.from_structural_map(
        structural, PIXEL_NM, lambda m: np.stack([1.0 - m / 0.3, m / 0.3], axis=-1), names=[SRTIO3.name, doped.name])
    return simulate_eels((SRTIO3, doped), ab, ENERGY, counts_per_channel=400.0, structural_map=resampled, seed=seed,
                         title="EELS SI of SrTiO3 with La-rich patches (abundance = local La fraction / 0.3)")


PRESETS = {
    "eels-si": ("EELS SI: SrTiO3 / interface / LaMnO3 layers, Ti L2,3 + O K + Mn L2,3 + La M4,5, 48x48x500", eels_si),
    "eels-si-mixed": ("EELS SI: three phases as random abundances strictly inside the simplex", eels_si_mixed),
    "eels-si-lowloss": ("dual EELS: core-loss SI + low-loss SI (zero loss, plasmons, t/lambda wedge), drift",
                        eels_si_lowloss),
    "eels-si-structure": ("EELS SI whose abundances follow a fine La-fraction map (structure-property truth)",
                          eels_si_structure),
}
