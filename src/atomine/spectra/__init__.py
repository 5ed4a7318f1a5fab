"""Spectral preprocessing of EELS spectrum images and CITS grids, before unmixing.

EELS: find and name core-loss edges (:mod:`.edges`), map their per-pixel onset and strength
(:mod:`.edge_maps`), fit and remove the power-law
background per pixel (:mod:`.background`), locate the zero-loss peak per pixel and align
the low-loss and a simultaneous core-loss on it (:mod:`.zero_loss`), thickness and
single-scattering deconvolution of the low loss (:mod:`.deconvolve`) and Fourier-ratio
deconvolution of the core loss with it (:mod:`.fourier_ratio`). CITS: numerical and normalised
conductance, band-gap edges and gap maps (:mod:`.cits`). EDS: X-ray line table
(:mod:`.xray_lines`), elemental maps (:mod:`.eds`) and line identification (:mod:`.eds_identify`). Before and after unmixing:
Poisson noise weighting (:mod:`.weighting`), PCA denoising that reports what it removed
(:mod:`.denoise`), and naming what each component contains (:mod:`.annotate`,
:mod:`.annotate_eds`).

Arrays (numpy or dask, spectral axis last) in, arrays or DataFrames out, plus thin
xarray wrappers; dask input is processed one block of pixels at a time.
"""

from .annotate import annotate_cits, annotate_eels
from .annotate_eds import annotate_eds
from .background import PARAMS, fit_power_law, power_law, pre_edge_window, remove_background
from .cits import didv, feenstra_normalise, gap_edges, gap_map, normalised_conductance, savgol_didv
from .denoise import DenoiseReport, pca_denoise
from .deconvolve import fourier_log, log_ratio_thickness, single_scattering, t_over_lambda, zero_loss_peak
from .eds import FWHM_MNKA_EV, elemental_maps, energy_axis_ev, fwhm_ev
from .eds_identify import identify_lines
from .edge_maps import edge_maps
from .edges import detect_onsets, find_edges, match_edges, summed_spectrum
from .fourier_ratio import fourier_ratio, fourier_ratio_arrays
from .weighting import PoissonWeights, poisson_weights
from .xray_lines import XrayLine, line_energy, line_table, lines_near, main_line, parse_line, xray_lines
from .zero_loss import (ZeroLossAlignment, align_zero_loss, calibrate_offset, shift_spectra, zero_loss_shifts,
                        zlp_position)

__all__ = [
    "FWHM_MNKA_EV", "XrayLine", "elemental_maps", "energy_axis_ev", "fwhm_ev", "identify_lines", "line_energy",
    "line_table", "lines_near", "main_line", "parse_line", "xray_lines", "annotate_eds",
    "DenoiseReport", "PARAMS", "PoissonWeights", "ZeroLossAlignment", "align_zero_loss", "annotate_cits",
    "annotate_eels", "calibrate_offset", "detect_onsets", "didv", "edge_maps", "feenstra_normalise", "find_edges",
    "fit_power_law", "fourier_log", "gap_edges", "gap_map", "log_ratio_thickness", "match_edges",
    "fourier_ratio", "fourier_ratio_arrays",
    "normalised_conductance", "pca_denoise", "poisson_weights", "power_law", "pre_edge_window",
    "remove_background", "savgol_didv", "shift_spectra", "single_scattering", "summed_spectrum",
    "t_over_lambda", "zero_loss_peak", "zero_loss_shifts", "zlp_position",
]
