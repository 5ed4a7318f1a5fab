"""The affine transform between a spectrum image's frame and a high-resolution image's frame.

This is the contract shared by registration, descriptor gridding and mining:
an :class:`AffineTransform` maps SPECTRAL-frame physical coordinates
``(x_s, y_s)`` in nm to IMAGE-frame physical coordinates ``(x_i, y_i)`` in nm.

Sign convention (y grows downward, as displayed): a positive ``rotation_deg``
turns the spectral frame counter-clockwise *as seen on screen*, i.e. the point
``(1, 0)`` goes to ``(cos a, -sin a)`` (it moves up on the screen). In matrix
form, with ``a = radians(rotation_deg)``::

    [x_i]   [ cos a   sin a ] [sx  0 ] [1  shear] [x_s]   [shift_x]
    [y_i] = [-sin a   cos a ] [0   sy] [0    1  ] [y_s] + [shift_y]

so ``shear`` adds ``shear * y_s`` to ``x_s`` before scaling and rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


def _as_matrix(matrix) -> np.ndarray:
    m = np.array(matrix, dtype=float)
    if m.shape == (2, 3):
        m = np.vstack([m, [0.0, 0.0, 1.0]])
    if m.shape != (3, 3):
        raise InputError(f"an affine matrix must be 3x3 (or 2x3), got shape {m.shape}; pass a homogeneous matrix")
    if not np.all(np.isfinite(m)):
        raise InputError("the affine matrix holds NaN or inf; pass finite values")
    if not np.allclose(m[2], [0.0, 0.0, 1.0]):
        raise InputError(f"the last row of an affine matrix must be (0, 0, 1), got {m[2].tolist()}")
    if abs(np.linalg.det(m[:2, :2])) < 1e-12:
        raise InputError("the affine matrix is singular (zero area); check the scale parameters")
    return m


@dataclass(frozen=True, eq=False)
class AffineTransform:
    """Affine map from spectral-frame (nm) to image-frame (nm) physical coordinates.

    Parameters
    ----------
    matrix : (3, 3) array_like
        Homogeneous matrix: ``(x_i, y_i, 1) = matrix @ (x_s, y_s, 1)``. A copy is
        stored read-only.
    """

    matrix: np.ndarray

    def __post_init__(self):
        m = _as_matrix(self.matrix)
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)

    def __call__(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Map spectral-frame coordinates ``x, y`` (nm, any broadcastable shape) to the image frame (nm)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        m = self.matrix
        return m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]

    def __matmul__(self, other: "AffineTransform") -> "AffineTransform":
        """Composition: ``(a @ b)(x, y) == a(*b(x, y))``."""
        if not isinstance(other, AffineTransform):
            return NotImplemented
        return AffineTransform(self.matrix @ other.matrix)

    def __eq__(self, other) -> bool:
        return isinstance(other, AffineTransform) and np.array_equal(self.matrix, other.matrix)

    def __hash__(self) -> int:
        return hash(self.matrix.tobytes())

    def __repr__(self) -> str:
        p = self.params()
        return (f"AffineTransform(shift_nm=({p['shift_nm'][0]:.4g}, {p['shift_nm'][1]:.4g}), "
                f"rotation_deg={p['rotation_deg']:.4g}, scale=({p['scale'][0]:.4g}, {p['scale'][1]:.4g}), "
                f"shear={p['shear']:.4g})")

    def inverse(self) -> "AffineTransform":
        """The transform from the image frame back to the spectral frame."""
        return AffineTransform(np.linalg.inv(self.matrix))

    def allclose(self, other: "AffineTransform", *, atol: float = 1e-9) -> bool:
        """Whether both matrices agree within ``atol`` (nm for the shift, unitless otherwise)."""
        return bool(np.allclose(self.matrix, other.matrix, rtol=0.0, atol=atol))

    @classmethod
    def identity(cls) -> "AffineTransform":
        """The identity: both frames coincide."""
        return cls(np.eye(3))

    @classmethod
    def from_params(cls, *, shift_nm=(0.0, 0.0), rotation_deg: float = 0.0, scale=1.0,
                    shear: float = 0.0) -> "AffineTransform":
        """Build from shift (nm, (x, y)), rotation (deg, counter-clockwise as displayed), scale and shear.

        Parameters
        ----------
        shift_nm : (float, float)
            Image-frame position (x, y) in nm of the spectral-frame origin.
        rotation_deg : float
            Counter-clockwise as displayed (y down): ``(1, 0) -> (cos a, -sin a)``.
        scale : float or (float, float)
            Image-frame nm per spectral-frame nm, isotropic or ``(sx, sy)``.
        shear : float
            ``x_s + shear * y_s`` replaces ``x_s`` before scaling and rotation (unitless).
        """
        sx, sy = (float(scale), float(scale)) if np.ndim(scale) == 0 else (float(scale[0]), float(scale[1]))
        a = np.deg2rad(float(rotation_deg))
        c, s = np.cos(a), np.sin(a)
        rot = np.array([[c, s], [-s, c]])
        lin = rot @ np.diag([sx, sy]) @ np.array([[1.0, float(shear)], [0.0, 1.0]])
        m = np.eye(3)
        m[:2, :2] = lin
        m[:2, 2] = [float(shift_nm[0]), float(shift_nm[1])]
        return cls(m)

    def params(self) -> dict:
        """Decompose into the :meth:`from_params` parameters (exact inverse for ``sx > 0``, ``sy > 0``)."""
        lin = self.matrix[:2, :2]
        # lin = R(a) @ diag(sx, sy) @ [[1, h], [0, 1]]: the first column is R(a) @ (sx, 0)
        sx = float(np.hypot(lin[0, 0], lin[1, 0]))
        a = float(np.arctan2(-lin[1, 0], lin[0, 0]))
        c, s = np.cos(a), np.sin(a)
        upper = np.array([[c, -s], [s, c]]) @ lin  # R(a)^-1 @ lin = [[sx, sx*h], [0, sy]]
        sy = float(upper[1, 1])
        h = float(upper[0, 1] / sx)
        return {"shift_nm": (float(self.matrix[0, 2]), float(self.matrix[1, 2])),
                "rotation_deg": float(np.rad2deg(a)), "scale": (sx, sy), "shear": h}

    def to_dict(self) -> dict:
        """JSON-serialisable form: the matrix (row-major lists) plus the decomposed parameters."""
        p = self.params()
        return {"matrix": self.matrix.tolist(), "shift_nm": list(p["shift_nm"]),
                "rotation_deg": p["rotation_deg"], "scale": list(p["scale"]), "shear": p["shear"],
                "frames": "spectral (nm) -> image (nm)"}

    @classmethod
    def from_dict(cls, d: dict) -> "AffineTransform":
        """Inverse of :meth:`to_dict` (only ``d["matrix"]`` is read)."""
        if not isinstance(d, dict) or "matrix" not in d:
            raise InputError("a transform dict needs a 'matrix' entry (3x3 list); pass AffineTransform.to_dict() output")
        return cls(np.asarray(d["matrix"], dtype=float))


__all__ = ["AffineTransform"]
