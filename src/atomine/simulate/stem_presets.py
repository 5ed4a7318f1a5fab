"""Named STEM example datasets: name -> (one-line description, make(seed) -> Simulation).

The seed draws the random parts of a preset (dopant and vacancy sites, scan jitter,
noise); the designed structure (grains, dislocations, domains) is fixed, so every
seed shows the same physics under a different realisation.
"""

from __future__ import annotations

from typing import Callable

from ..data import Simulation
from . import crystal, defects, regions
from .structure import Structure

# Mild scan noise typical of a well-tuned aberration-corrected instrument.
_SCAN = {"line_jitter_px": 0.15, "drift_px_per_line": (0.002, 0.001), "detector_noise_counts": 0.5}
_PROBE = {"probe_fwhm_nm": 0.09, "probe_tail_fraction": 0.05, "probe_tail_fwhm_nm": 0.3}


def _simulate(structure, seed: int, **kwargs) -> Simulation:
    from .stem import simulate_stem  # deferred: stem imports this module for PRESETS

    options = {**_PROBE, **_SCAN, **kwargs}
    return simulate_stem(structure, seed=seed, **options)


def _sto(thickness_cells: int = 10) -> crystal.UnitCell:
    return crystal.perovskite_cell(0.3905, A="Sr", B="Ti", X="O", thickness_cells=thickness_cells)


def _doped_perovskite(seed: int, fov_nm: float) -> Structure:
    s = crystal.lattice(_sto(), fov_nm=fov_nm)
    grid = defects.occupancy_grid(s, "A")
    occupancy = defects.random_occupancy(grid.shape, dopant_fraction=0.05, vacancy_fraction=0.02, seed=seed)
    # a realistic few dopant atoms per column: 3 La of 10 A-site atoms
    return defects.substitute(s, occupancy, site="A", dopant="La", atoms_per_column=3)


def haadf_perovskite(seed: int = 0) -> Simulation:
    """SrTiO3 [001], 10 cells thick, La dopants and column vacancies on the A sublattice."""
    return _simulate(_doped_perovskite(seed, 10.24), seed, pixel_size_nm=0.02, detector="HAADF",
                     dose_e_per_A2=2.0e4, title="HAADF SrTiO3 [001] with La dopants and A-site vacancies")


def abf_perovskite(seed: int = 0) -> Simulation:
    """ABF image of the same doped SrTiO3 [001]: dark columns, oxygen visible."""
    return _simulate(_doped_perovskite(seed, 7.68), seed, pixel_size_nm=0.02, detector="ABF",
                     dose_e_per_A2=2.0e4, title="ABF SrTiO3 [001] with La dopants and A-site vacancies")


def haadf_mos2(seed: int = 0) -> Simulation:
    """Monolayer MoS2: S2 column vacancies and W dopants on the metal sublattice."""
    s = crystal.lattice(crystal.mos2_cell(0.316), fov_nm=10.24)
    vac = defects.random_occupancy(defects.occupancy_grid(s, "X2").shape, vacancy_fraction=0.05, seed=seed)
    s = defects.substitute(s, vac, site="X2")
    dop = defects.random_occupancy(defects.occupancy_grid(s, "M").shape, dopant_fraction=0.03, seed=seed + 1)
    s = defects.substitute(s, dop, site="M", dopant="W")
    return _simulate(s, seed, pixel_size_nm=0.02, detector="HAADF", dose_e_per_A2=1.0e5, background_fraction=0.002,
                     title="HAADF monolayer MoS2 with S2 vacancies and W dopants")


GRAIN_SEEDS_NM = ((3.0, 3.5), (10.0, 4.0), (6.4, 10.5))
GRAIN_ROTATIONS_DEG = (0.0, 27.0, -18.0)


def haadf_grains(seed: int = 0) -> Simulation:
    """Three SrTiO3 grains rotated 0, 27 and -18 degrees, with straight grain boundaries."""
    s = crystal.grains(_sto(8), seeds_nm=GRAIN_SEEDS_NM, rotations_deg=GRAIN_ROTATIONS_DEG, fov_nm=12.8)
    return _simulate(s, seed, pixel_size_nm=0.025, detector="HAADF", dose_e_per_A2=2.0e4,
                     title="HAADF SrTiO3 tricrystal")


def dislocation_structure(fov_nm: float = 10.24, cores_nm=((3.6, 5.0), (7.1, 5.3))) -> Structure:
    """SrTiO3 [001] with two edge dislocations, b = [100] and b = [010] (a = 0.3905 nm)."""
    a = 0.3905
    s = crystal.lattice(_sto(), fov_nm=fov_nm)
    (x1, y1), (x2, y2) = cores_nm
    return defects.add_dislocations(s, [defects.EdgeDislocation(x1, y1, (a, 0.0), 0.3),
                                        defects.EdgeDislocation(x2, y2, (0.0, a), 0.3)])


def haadf_dislocation(seed: int = 0) -> Simulation:
    """SrTiO3 [001] with two edge dislocations (b = a[100], a[010]) and their elastic fields."""
    return _simulate(dislocation_structure(), seed, pixel_size_nm=0.02, detector="HAADF", dose_e_per_A2=2.0e4,
                     title="HAADF SrTiO3 with edge dislocations")


def haadf_phases(seed: int = 0) -> Simulation:
    """SrTiO3 matrix with two rotated rock-salt NiO inclusions (different lattice and structure)."""
    s = crystal.phases(_sto(10), crystal.rocksalt_cell(0.4177, cation="Ni", anion="O", thickness_cells=10),
                       centres_nm=((4.0, 4.2), (9.0, 8.6)), radii_nm=(2.2, 2.8), fov_nm=12.8,
                       inclusion_rotation_deg=12.0)
    return _simulate(s, seed, pixel_size_nm=0.025, detector="HAADF", dose_e_per_A2=2.0e4,
                     title="HAADF SrTiO3 with NiO inclusions")


POLAR_DISPLACEMENT_PM = ((0.0, -15.0), (0.0, 15.0))


def polar_structure(fov_nm: float = 10.24) -> Structure:
    """BaTiO3-like [001], two 180-degree domains (B site up / down 15 pm), vertical wall at the centre."""
    s = crystal.lattice(crystal.perovskite_cell(0.400, A="Ba", B="Ti", X="O", thickness_cells=10), fov_nm=fov_nm)
    walls = regions.Voronoi([(fov_nm / 4, fov_nm / 2), (3 * fov_nm / 4, fov_nm / 2)])
    return defects.polar_displacement(s, site="B", displacement_pm=POLAR_DISPLACEMENT_PM, domains=walls)


def haadf_polar(seed: int = 0) -> Simulation:
    """BaTiO3-like [001] with two polarisation domains of B-site displacement (+-15 pm along y)."""
    return _simulate(polar_structure(), seed, pixel_size_nm=0.02, detector="HAADF", dose_e_per_A2=2.0e4,
                     title="HAADF BaTiO3 with 180-degree polar domains")


PRESETS: dict[str, tuple[str, Callable[[int], Simulation]]] = {
    "haadf-perovskite": (haadf_perovskite.__doc__.strip(), haadf_perovskite),
    "abf-perovskite": (abf_perovskite.__doc__.strip(), abf_perovskite),
    "haadf-mos2": (haadf_mos2.__doc__.strip(), haadf_mos2),
    "haadf-grains": (haadf_grains.__doc__.strip(), haadf_grains),
    "haadf-dislocation": (haadf_dislocation.__doc__.strip(), haadf_dislocation),
    "haadf-phases": (haadf_phases.__doc__.strip(), haadf_phases),
    "haadf-polar": (haadf_polar.__doc__.strip(), haadf_polar),
}

__all__ = ["PRESETS", "abf_perovskite", "dislocation_structure", "haadf_dislocation", "haadf_grains", "haadf_mos2",
           "haadf_perovskite", "haadf_phases", "haadf_polar", "polar_structure"]
