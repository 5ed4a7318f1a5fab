"""Atom columns: finding, fitting, sublattices, classes, segregation and order parameters.

- Finding and fitting: :func:`find_seeds`, :func:`refine_centroid`, :func:`fit_gaussians`
  (batched Levenberg-Marquardt, Cramer-Rao uncertainties), :func:`locate_atoms` (all three,
  tiled for large or dask-backed images).
- Sublattices without a CIF: :func:`vector_pdf`, :func:`neighbour_vectors`,
  :func:`identify_sublattices`, :func:`find_vacancies`, :func:`confirm_vacancies`; sub-surface
  (hollow) sites under an STM lattice in :mod:`atomine.atoms.hollow`.
- Classes: :func:`column_intensity`, :func:`normalise_by_neighbours`, :func:`classify_atoms`,
  :func:`classify_host_referenced`, :func:`expected_ratios` (Z^n prior).
- Segregation: :func:`warren_cowley`, :func:`pair_correlation`, :func:`cluster_sizes`,
  :func:`composition_profile`.
- Order parameters: :func:`polarisation`, :func:`lattice_strain` and their maps.

Every function takes and returns atom tables (pandas DataFrames) with the columns of
DESIGN.md's atom-table convention.
"""

from .centroid import refine_centroid
from .classify import classify_atoms, classify_host_referenced, expected_ratios
from .fit import locate_atoms
from .gaussian import fit_gaussians
from .intensity import column_intensity, normalise_by_neighbours
from .lattice_strain import atom_map, lattice_strain, strain_map
from .polarisation import polarisation, polarisation_map
from .seeds import find_seeds
from .segregation import cluster_sizes, composition_profile, pair_correlation, warren_cowley
from .sublattice import LatticeInfo, confirm_vacancies, find_vacancies, identify_sublattices
from .vector_pdf import neighbour_vectors, vector_pdf

__all__ = [
    "LatticeInfo", "atom_map", "classify_atoms", "classify_host_referenced", "confirm_vacancies", "cluster_sizes", "column_intensity", "composition_profile",
    "expected_ratios", "find_seeds", "find_vacancies", "fit_gaussians", "identify_sublattices", "lattice_strain",
    "locate_atoms", "neighbour_vectors", "normalise_by_neighbours", "pair_correlation", "polarisation",
    "polarisation_map", "refine_centroid", "strain_map", "vector_pdf", "warren_cowley",
]
