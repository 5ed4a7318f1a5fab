"""Scan distortions and detection noise of a STEM acquisition.

Distortions are apparent image shifts per scan row (the specimen seen by row r
appears moved by the row's shift): random per-line jitter along the fast scan
direction x (flyback and line-sync errors) plus a slow drift that grows linearly
with scan time, i.e. with the row index. Detection is Poisson shot noise on the
expected electron counts followed by optional Gaussian detector (read-out) noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from . import _stem_checks as check

# Beyond a tenth of a pixel per line the image shears by tens of pixels over a frame:
# that is no longer "slow" drift and the per-row model would mislead.
MAX_DRIFT_PX_PER_LINE = 0.1


@dataclass(frozen=True)
class ScanShifts:
    """Apparent shift of each scan row, pixels.

    Attributes
    ----------
    jitter_x_px : ndarray, shape (ny,)
        Random per-line shift along x.
    drift_x_px, drift_y_px : ndarray, shape (ny,)
        Linear drift: row index x drift rate.
    """

    jitter_x_px: np.ndarray
    drift_x_px: np.ndarray
    drift_y_px: np.ndarray

    @property
    def x_px(self) -> np.ndarray:
        """Total shift along x of each row."""
        return self.jitter_x_px + self.drift_x_px

    @property
    def y_px(self) -> np.ndarray:
        """Total shift along y of each row."""
        return self.drift_y_px


def scan_shifts(n_rows: int, *, line_jitter_px: float = 0.0, drift_px_per_line=(0.0, 0.0), rng=None) -> ScanShifts:
    """Per-row shifts for a frame of ``n_rows`` lines.

    Parameters
    ----------
    n_rows : int
    line_jitter_px : float
        RMS of the independent Gaussian x shift of each line, pixels.
    drift_px_per_line : (float, float)
        Drift (vx, vy) in pixels per scan line; row r is shifted by r * (vx, vy).
        Each component must not exceed 0.1 px/line in magnitude.
    rng : numpy.random.Generator, optional
        Source of the jitter; the same number of draws is made whatever the jitter
        amplitude, so other random streams do not depend on it.
    """
    n = check.integer("n_rows", n_rows, minimum=1)
    jitter = check.non_negative("line_jitter_px", line_jitter_px)
    drift = check.vector("drift_px_per_line", drift_px_per_line)
    if np.any(np.abs(drift) > MAX_DRIFT_PX_PER_LINE):
        raise InputError(f"drift_px_per_line {drift.tolist()} exceeds {MAX_DRIFT_PX_PER_LINE} px per line; "
                         "give the slow drift rate in pixels per scan line")
    rng = np.random.default_rng() if rng is None else rng
    rows = np.arange(n, dtype=np.float64)
    return ScanShifts(jitter_x_px=jitter * rng.standard_normal(n), drift_x_px=drift[0] * rows, drift_y_px=drift[1] * rows)


def detect(expected_counts, *, shot_noise: bool = True, detector_noise_counts: float = 0.0,
           shot_rng=None, detector_rng=None) -> np.ndarray:
    """Detected counts: Poisson(expected) then + Normal(0, detector_noise_counts); float32.

    Parameters
    ----------
    expected_counts : ndarray
        Mean detected electrons per pixel (>= 0).
    shot_noise : bool
        Draw Poisson counts (True) or keep the expectation (False).
    detector_noise_counts : float
        Standard deviation of additive Gaussian detector noise, counts.
    shot_rng, detector_rng : numpy.random.Generator
        Independent random streams for the two noise sources.
    """
    expected = np.asarray(expected_counts, dtype=np.float64)
    if np.any(expected < 0) or not np.all(np.isfinite(expected)):
        raise InputError("expected counts must be finite and non-negative")
    sigma = check.non_negative("detector_noise_counts", detector_noise_counts)
    shot_rng = np.random.default_rng() if shot_rng is None else shot_rng
    detector_rng = np.random.default_rng() if detector_rng is None else detector_rng
    counts = shot_rng.poisson(expected).astype(np.float64) if shot_noise else expected.copy()
    noise = detector_rng.standard_normal(expected.shape)
    if sigma > 0:
        counts += sigma * noise
    return counts.astype(np.float32)


def describe(line_jitter_px: float, drift_px_per_line, shot_noise: bool, detector_noise_counts: float) -> dict[str, Any]:
    """JSON-safe record of the distortion and noise settings."""
    return {"line_jitter_px": float(line_jitter_px), "drift_px_per_line": [float(v) for v in drift_px_per_line],
            "shot_noise": bool(shot_noise), "detector_noise_counts": float(detector_noise_counts)}


__all__ = ["MAX_DRIFT_PX_PER_LINE", "ScanShifts", "detect", "describe", "scan_shifts"]
