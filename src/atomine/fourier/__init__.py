"""Fourier analysis of atomically resolved images: sliding-window spectra and lattice order parameters."""

from .sliding import sliding_fft, window_centres_px
from .taper import taper_2d
from .window_size import estimate_window
from .lattice import local_lattice
from .peaks import find_lattice_peaks, power_spectrum
from .gpa import gpa
from .dislocations import defect_table, find_dislocations, find_grain_boundaries

__all__ = ["sliding_fft", "window_centres_px", "taper_2d", "estimate_window"]
__all__ += ["find_lattice_peaks", "local_lattice", "power_spectrum", "gpa", "defect_table", "find_dislocations",
            "find_grain_boundaries"]
