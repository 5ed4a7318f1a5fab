"""Atom columns: finding, fitting, sublattices, classes, segregation and order parameters."""

from .lattice_strain import atom_map, lattice_strain, strain_map  # noqa: F401
from .polarisation import polarisation, polarisation_map  # noqa: F401
