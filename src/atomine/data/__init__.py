"""Data conventions: calibrated DataArrays, metadata, provenance, pixel <-> physical mapping."""

from .axes import (
    axis_offset,
    axis_scale,
    axis_units,
    explicit_coord,
    is_calibrated,
    linear_coord,
    phys_to_px,
    px_to_phys,
    require_dims,
    uniform_axis,
)
from .constructors import (
    UncalibratedWarning,
    check_values,
    cits_grid,
    generic,
    image,
    signal_kind,
    spectrum,
    spectrum_image,
)
from .hyperspy import from_hyperspy, signal_dict, to_hyperspy  # imports hyperspy only when called
from .metadata import METADATA_KEYS, from_json, jsonable, normalise_metadata, to_json
from .truth import GroundTruth, Simulation
from .provenance import array_hash, file_hash, step, with_step
from .stats import value_statistics
from .units import (
    bias_factor_to_v,
    energy_factor_to_ev,
    is_length_unit,
    length_factor_to_nm,
    reciprocal_factor_to_per_nm,
)

__all__ = [
    "GroundTruth", "Simulation",
    "UncalibratedWarning", "check_values", "cits_grid", "generic", "image", "signal_kind", "spectrum",
    "spectrum_image", "axis_offset", "axis_scale", "axis_units", "explicit_coord", "is_calibrated",
    "linear_coord", "phys_to_px", "px_to_phys", "require_dims", "METADATA_KEYS", "from_json", "jsonable",
    "normalise_metadata", "to_json", "array_hash", "file_hash", "step", "with_step", "bias_factor_to_v",
    "energy_factor_to_ev", "is_length_unit", "length_factor_to_nm", "reciprocal_factor_to_per_nm",
    "value_statistics", "from_hyperspy", "to_hyperspy", "signal_dict", "uniform_axis",
]
