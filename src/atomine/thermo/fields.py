"""Site-field profiles f_i for the field term - h sum_i f_i s_i of a lattice model.

A field is what lets a model say "dopants are drawn to this interface": at fixed composition
a uniform field does nothing, a profile that decays away from a line does.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .lattice import Lattice


def interface_field(lattice: Lattice, line, decay_nm: float) -> np.ndarray:
    """f_i = exp(-d_i / decay) with d_i the distance (nm) of site i from a line segment.

    Parameters
    ----------
    lattice : Lattice
        A lattice built from an atom table (it knows where its sites are, ``positions_nm``).
    line : ((x0, y0), (x1, y1)) or (x0, y0, x1, y1)
        End points of the interface or surface trace in nm (image coordinates); d is measured
        to the segment, so a segment longer than the field of view acts as an infinite line.
    decay_nm : float
        Decay length (nm) of the profile.

    Returns
    -------
    ndarray (n_i, n_j) of float64
        The profile on the lattice grid (0 at masked sites).
    """
    if not isinstance(lattice, Lattice) or lattice.positions_nm is None:
        raise InputError("an interface field needs site positions: build the lattice from an atom table with x, y")
    try:
        pts = np.asarray(line, dtype=np.float64).reshape(2, 2)
    except (TypeError, ValueError):
        raise InputError(f"line must be two points (x0, y0), (x1, y1) in nm, got {line!r}") from None
    if not np.all(np.isfinite(pts)) or np.allclose(pts[0], pts[1]):
        raise InputError("the interface line needs two distinct, finite end points (nm)")
    try:
        decay = float(decay_nm)
    except (TypeError, ValueError):
        raise InputError(f"decay_nm must be a length in nm, got {decay_nm!r}") from None
    if not np.isfinite(decay) or decay <= 0:
        raise InputError(f"decay_nm must be a positive length in nm, got {decay_nm!r}")
    r = lattice.positions_nm - pts[0]
    u = pts[1] - pts[0]
    t = np.clip((r @ u) / (u @ u), 0.0, 1.0)
    d = np.hypot(*np.moveaxis(r - t[..., None] * u, -1, 0))
    return np.where(lattice.valid, np.exp(-d / decay), 0.0)


__all__ = ["interface_field"]
