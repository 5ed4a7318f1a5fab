"""Named CITS example datasets: name -> (one-line description, make(seed) -> Simulation).

A 40 x 40 grid of 0.5 nm spacing, 201 biases from -1 to +1 V, set point 100 pA at
+1 V, 78 K, WKB barrier of 4 eV: a metallic, a gapped (semiconducting, half-gap
0.3 eV) and a resonance region (Lorentzian states at -0.45 and +0.55 eV). The designed
geometry is fixed; the seed draws the noise (and the random fields where used).
"""

from __future__ import annotations

import numpy as np

from ..data import Simulation
from . import fields
from .fields import MIXED_CONTRAST, MIXED_FLOOR
from .cits_dos import GappedDOS, MetallicDOS, ResonanceDOS

SHAPE = (40, 40)
PIXEL_NM = 0.5
BIAS_V = np.linspace(-1.0, 1.0, 201)
SEEDS_NM = ((4.0, 5.0), (15.0, 6.0), (10.0, 15.0))
WALL_WIDTH_NM = 1.5
DOS = (MetallicDOS("metal", curvature_per_ev2=0.2),
       GappedDOS("semiconductor", delta_ev=0.3, broadening_ev=0.03, model="semiconductor"),
       ResonanceDOS("molecular", energies_ev=(-0.45, 0.55), widths_ev=(0.05, 0.06), amplitudes=(3.0, 2.5),
                    background=0.3))
_ACQUISITION = {"setpoint_a": 1.0e-10, "setpoint_v": 1.0, "temperature_k": 78.0, "barrier_ev": 4.0,
                "tip_height_nm": 0.6, "noise_a": 5.0e-13, "flicker_noise_a": 3.0e-13, "topography_noise_nm": 0.003}


def cits_grid(seed: int = 0) -> Simulation:
    """Metallic, gapped and resonance domains with 1.5 nm walls."""
    from .cits import simulate_cits

    ab = fields.domain_phases(SHAPE, PIXEL_NM, SEEDS_NM, WALL_WIDTH_NM, names=[d.name for d in DOS])
    return simulate_cits(DOS, ab, BIAS_V, seed=seed, title="CITS: metal / semiconductor / molecular-resonance domains",
                         **_ACQUISITION)


def cits_grid_mixed(seed: int = 0) -> Simulation:
    """The same three DOS types mixed by smooth random fields strictly inside the simplex."""
    from .cits import simulate_cits

    ab = fields.random_fields(SHAPE, PIXEL_NM, 3, correlation_length_nm=2.5, contrast=MIXED_CONTRAST,
                              min_abundance=MIXED_FLOOR, names=[d.name for d in DOS], seed=seed)
    return simulate_cits(DOS, ab, BIAS_V, seed=seed, title="CITS: three DOS types mixed by smooth random fields",
                         **_ACQUISITION)


PRESETS = {
    "cits-grid": ("CITS 40x40x201: metallic, gapped (0.3 eV half-gap) and resonance domains, -1..1 V", cits_grid),
    "cits-grid-mixed": ("CITS 40x40x201: the three DOS types as random abundances inside the simplex",
                        cits_grid_mixed),
}
