"""Measurement helpers of benchmarks/validate_stem_abtem.py, checked on images with known answers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

MODULE = Path(__file__).resolve().parents[2] / "benchmarks" / "validate_stem_abtem.py"


@pytest.fixture(scope="module")
def v():
    spec = importlib.util.spec_from_file_location("atomine_validate_stem_abtem", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # abTEM is imported only inside run(), so this needs no abTEM
    return module


def _gaussians(x, y, centres, weights, sigma, period):
    """Periodic sum of normalised Gaussians (integral = weight each)."""
    out = np.zeros_like(x)
    for (cx, cy), w in zip(centres, weights):
        for i in (-1, 0, 1):
            for j in (-1, 0, 1):
                r2 = (x - cx - i * period) ** 2 + (y - cy - j * period) ** 2
                out += w / (2 * np.pi * sigma**2) * np.exp(-r2 / (2 * sigma**2))
    return out


def test_voronoi_integrals_recover_well_separated_column_weights(v):
    period, n = 4.0, 160
    step = period / n
    x, y = np.meshgrid(np.arange(n) * step, np.arange(n) * step, indexing="ij")
    centres = [(0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0)]
    weights = [5.0, 2.0, 0.5, 0.5]
    img = _gaussians(x, y, centres, weights, sigma=0.15, period=period)
    sums = v.voronoi_integrals(img, x, y, centres, period=(period, period)) * step**2
    # a 0.15 sigma Gaussian leaves ~e^-(1/0.15)^2/2 outside its 2 x 2 cell: nothing measurable
    np.testing.assert_allclose(sums, weights, rtol=1e-6)
    # every pixel is owned exactly once, ties shared: the total is conserved
    assert sums.sum() == pytest.approx(img.sum() * step**2, rel=1e-12)


def test_voronoi_ties_are_shared_equally(v):
    # pixels at x = 0, 1, 2: the middle one is equidistant from columns at 0 and 2
    img = np.array([[1.0, 10.0, 1.0]])
    x = np.array([[0.0, 1.0, 2.0]])
    sums = v.voronoi_integrals(img, x, np.zeros_like(x), [(0.0, 0.0), (2.0, 0.0)])
    np.testing.assert_allclose(sums, [6.0, 6.0])


def test_fourier_upsample_is_exact_for_band_limited_periodic_images(v):
    n, f = 20, 4
    k = np.arange(n)
    img = 1 + np.cos(2 * np.pi * 3 * k / n)[:, None] * np.sin(2 * np.pi * 2 * k / n)[None, :]
    fine = v.fourier_upsample(img, f)
    kf = np.arange(n * f) / f
    truth = 1 + np.cos(2 * np.pi * 3 * kf / n)[:, None] * np.sin(2 * np.pi * 2 * kf / n)[None, :]
    np.testing.assert_allclose(fine, truth, atol=1e-12)


def test_symmetrise_4mm_keeps_symmetric_images_and_averages_the_rest(v):
    n = 16
    k = 2 * np.pi * np.arange(n) / n
    sym = np.cos(k)[:, None] + np.cos(k)[None, :] + 0.5 * np.cos(2 * k)[:, None] * np.cos(2 * k)[None, :]
    np.testing.assert_allclose(v.symmetrise_4mm(sym), sym, atol=1e-12)
    # an odd part (sin) averages out; a part without the x <-> y mirror is averaged with its transpose
    odd = np.sin(k)[:, None] * np.ones(n)[None, :] + np.cos(k)[:, None] * np.cos(2 * k)[None, :]
    expected = 0.5 * (np.cos(k)[:, None] * np.cos(2 * k)[None, :] + np.cos(2 * k)[:, None] * np.cos(k)[None, :])
    np.testing.assert_allclose(v.symmetrise_4mm(odd), expected, atol=1e-12)


def test_half_max_width_of_a_gaussian(v):
    sigma, step = 0.17, 0.005
    r = np.arange(200) * step
    fwhm = v.half_max_width(np.exp(-r**2 / (2 * sigma**2)), step)
    assert fwhm == pytest.approx(2 * np.sqrt(2 * np.log(2)) * sigma, rel=1e-3)
    assert np.isnan(v.half_max_width(np.ones(5), step))


def test_z_rule_matches_the_design_value(v):
    assert v.RULE_STO == pytest.approx(38**1.7 / (22**1.7 + 8**1.7))
    assert v.RULE_MOS2 == pytest.approx(42**1.7 / (2 * 16**1.7))


def test_unfold_centred_rebuilds_a_hexagonal_cell_from_its_lower_half(v):
    a, nx, ny = 1.0, 18, 30
    b = a * np.sqrt(3)
    x, y = np.meshgrid(np.arange(nx) * a / nx, np.arange(ny) * b / ny, indexing="ij")
    # a function with the hexagonal lattice's periodicity: the three shortest reciprocal vectors
    g = [(0.0, 2 / b), (1 / a, 1 / b), (1 / a, -1 / b)]
    full = sum(np.cos(2 * np.pi * (gx * x + gy * y) + k) for k, (gx, gy) in enumerate(g))
    np.testing.assert_allclose(v.unfold_centred(full[:, : ny // 2]), full, atol=1e-12)
    with pytest.raises(ValueError, match="even"):
        v.unfold_centred(np.zeros((3, 4)))


def test_jackknife_of_a_linear_quantity_is_the_standard_error_of_the_mean(v):
    samples = np.random.default_rng(3).normal(2.0, 0.5, size=(7, 2))
    out = v.jackknife(samples, lambda m: {"a": m[0], "ratio": m[0] / m[1]})
    assert out["a"][0] == pytest.approx(samples[:, 0].mean())
    assert out["a"][1] == pytest.approx(samples[:, 0].std(ddof=1) / np.sqrt(7))
    # a ratio is taken of the means, not averaged
    assert out["ratio"][0] == pytest.approx(samples[:, 0].mean() / samples[:, 1].mean())
