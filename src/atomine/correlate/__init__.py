"""Structure-property mining from registered spectral and structural data.

- :class:`AffineTransform`: spectral-frame nm -> image-frame nm, stored with every result;
- :func:`register`: a spectrum image's simultaneous channel onto the high-resolution image
  (different pixel sizes and fields of view), with residual, confidence and error estimate;
  :func:`to_image` / :func:`to_spectral` resample any map across the two frames;
- :func:`correct_series`: rigid drift and line-wise scan offsets of an image series;
- :func:`atoms_to_grid`, :func:`map_to_grid`, :func:`sro_to_grid`: structural descriptors
  averaged over each spectral pixel's footprint;
- :func:`mine`: every structural descriptor against every spectral one, with permutation
  tests that keep spatial autocorrelation (all shifts of a mirror-tiled map, by FFT),
  Benjamini-Hochberg q-values, spatial block cross-validation, CCA and PLS.
"""

from .drift import correct_series
from .grid import atoms_to_grid, map_to_grid, sro_to_grid
from .mining import MiningResult, mine
from .registration import Registration, register
from .resample import apply_transform, to_image, to_spectral
from .transform import AffineTransform

__all__ = [
    "AffineTransform", "MiningResult", "Registration", "apply_transform", "atoms_to_grid", "correct_series",
    "map_to_grid", "mine",
    "register", "sro_to_grid", "to_image", "to_spectral",
]
