"""End-to-end workflows composed from the algorithm packages; each result has ``.save(dir)`` and records provenance.

- :func:`run_demo` -- every built-in simulated dataset, every analysis, saved with the ground truth.
- :func:`write_simulation` -- a simulated dataset and its ground truth side by side.
- :func:`signals_dataset` -- several signals of one file as one Dataset (one store).
- :func:`analyze_atoms` -- atom columns: positions, sublattices, classes, short-range order, order parameters.
- :func:`segment_phases` -- phase, defect and order-parameter maps from the sliding FFT;
  :func:`segmentation_scores` grades one against a simulation's ground truth.
- :func:`unmix_spectra` -- pure spectra and abundance maps of an EELS/EDS spectrum image or CITS grid;
  :func:`unmix_scores` grades one against a simulation's ground truth.
- :func:`learn_thermodynamics` -- lattice-model interactions of the dopants in an atom table, the model
  chosen among nested ones, and what it predicts (SRO and heat capacity vs temperature, transitions,
  phase diagram, most probable configurations).
- :func:`correlate` -- structure-property mining: the spectrum image registered onto the high-resolution
  image, structural and spectral descriptors on the spectral grid, ranked links with spatial permutation
  tests, q-values and cross-validated R^2.
"""

from .atoms import AtomsResult, analyze_atoms
from .bundle import signals_dataset, unique_names
from .correlate import CorrelateResult, correlate
from .demo import DatasetRun, DemoResult, run_demo
from .demo_analyses import DATASET_ANALYSES, AnalysisOutput, DatasetContext
from .segment import SegmentResult, segment_phases
from .segment_truth import segmentation_scores, truth_regions
from .simulated import WrittenSimulation, check_outputs, truth_folder, write_simulation
from .thermo import ThermoResult, learn_thermodynamics
from .unmix import UnmixResult, unmix_spectra
from .unmix_truth import unmix_scores

__all__ = [
    "AnalysisOutput", "AtomsResult", "CorrelateResult", "correlate", "DATASET_ANALYSES", "analyze_atoms", "DatasetContext", "DatasetRun", "DemoResult", "SegmentResult",
    "WrittenSimulation", "check_outputs", "run_demo", "segment_phases", "segmentation_scores", "signals_dataset",
    "ThermoResult", "learn_thermodynamics", "truth_folder", "truth_regions", "UnmixResult", "unique_names", "unmix_scores", "unmix_spectra",
    "write_simulation",
]
