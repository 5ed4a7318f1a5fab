"""Thermodynamics from images: lattice-model interactions learned by statistical matching.

One convention everywhere: H = sum_m J_m sum_<ij in shell m> s_i s_j - h sum_i f_i s_i with
s = +1 dopant, -1 host (0: a site outside the model), energies in units of k_B T_f (the
temperature at which the imaged configuration froze). J > 0 favours unlike neighbours
(ordering), J < 0 like neighbours (clustering, segregation).

- :mod:`.lattice`: square and triangular lattices, neighbour shells, point groups;
- :func:`occupancy_lattice`: an atom table or occupancy array -> :class:`Lattice`;
- :func:`descriptor`: local-configuration classes (reduced by symmetry) and histograms;
- :func:`sample`: Monte Carlo (canonical Kawasaki, semi-grand-canonical), chains in parallel;
- :func:`fit_model`: parameters by minimising the statistical distance, with uncertainties;
- :func:`select_model`: nested models compared by BIC, spatial cross-validation and
  posterior-predictive checks;
- :mod:`.phase`: SRO and heat capacity against temperature, transitions, phase diagrams;
- :func:`write_configurations`: the most probable local configurations as extended XYZ.
"""

from ._order import order_parameter
from .configurations import Descriptor, descriptor, effective_sample_size, pool_classes, statistical_distance
from .export import write_configurations
from .fit import FitResult, fit_model, parse_model
from .lattice import Lattice
from .montecarlo import MCResult, sample
from .occupancy import occupancy_lattice
from .phase import phase_diagram, temperature_scan, transition
from .select import ModelSelection, select_model

__all__ = [
    "Descriptor", "FitResult", "Lattice", "MCResult", "ModelSelection", "descriptor", "effective_sample_size",
    "fit_model", "occupancy_lattice", "order_parameter", "parse_model", "phase_diagram", "pool_classes", "sample",
    "select_model", "statistical_distance", "temperature_scan", "transition", "write_configurations",
]
