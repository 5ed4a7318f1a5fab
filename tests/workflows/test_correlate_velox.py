"""``correlate`` on a real Velox EDS spectrum image with its simultaneous HAADF (fetched test data)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from atomine.correlate import AffineTransform

VELOX_SI = "fei_SI_SuperX-HAADF_10frames_10x50.emd"


def _velox_file() -> Path:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import realdata

    try:
        return realdata.velox_dir() / VELOX_SI
    except realdata.RealDataUnavailable as exc:
        pytest.skip(str(exc))


def _max_error_px(t: AffineTransform, truth: AffineTransform, grid) -> float:
    """Largest distance between ``t`` and ``truth`` over the grid's pixel centres, in the grid's pixels."""
    x, y = np.meshgrid(grid.x.values, grid.y.values)
    ax, ay = t(x.ravel(), y.ravel())
    bx, by = truth(x.ravel(), y.ravel())
    return float(np.hypot(ax - bx, ay - by).max()) / float(abs(grid.x[1] - grid.x[0]))


@pytest.mark.network
def test_velox_eds_si_correlates_with_its_own_haadf():
    # structure = the file's HAADF; spectra = its EDS SI, whose simultaneous channel is that same HAADF:
    # the same scan, so the registration must be the identity
    path = _velox_file()
    from atomine.workflows.correlate import correlate

    result = correlate(path, path)
    reg = result.registration
    err = _max_error_px(result.transform, AffineTransform.identity(), result.adf)
    eds = sorted(v for v in result.spectra.data_vars if v.startswith("eds_"))
    top = result.links.iloc[0]
    print(f"velox: max error {err:.3f} px (residual {reg.residual:.4f}, error_px {reg.error_px:.3f}, {reg.method}); "
          f"{len(eds)} EDS maps {eds}; {len(result.links)} links, top {top['structure']} ~ {top['property']} "
          f"r {top['r']:.3f} q {top['q']:.3g}")
    assert err <= 0.1
    assert reg.overlap == pytest.approx(1.0)
    from atomine.io import load_all

    meta = next(s for s in load_all(path) if s.ndim == 3).attrs.get("metadata", {})
    assert meta.get("elements"), "the file's metadata names its elements"
    for el in meta["elements"]:
        assert any(v.startswith(f"eds_{el}_") for v in eds), (el, eds)
    assert eds and len(result.links) > 0
    assert np.isfinite(result.links["r"]).all()
