"""Structure-property mining: exact shift correlations, calibrated spatial null, power, block CV."""

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from atomine.correlate import _permutation as perm
from atomine.correlate.mining import mine
from atomine.correlate.models import block_folds
from atomine.errors import InputError

N = 48


def smooth(rng, n=N, sigma=2.0):
    """Gaussian-filtered white noise (1/e correlation length 2 sigma = 4 px), standardised, not periodic."""
    f = ndimage.gaussian_filter(rng.standard_normal((n, n)), sigma, mode="reflect")
    return (f - f.mean()) / f.std()


def ds(n=N, **maps):
    return xr.Dataset({k: (("y", "x"), v) for k, v in maps.items()},
                      coords={"y": 0.4 * np.arange(n), "x": 0.4 * np.arange(n)})


def driven(seed, a=0.5):
    rng = np.random.default_rng(seed)
    s1, s2 = smooth(rng), smooth(rng)
    prop = a * s1 + smooth(rng) + 0.3 * rng.standard_normal((N, N))
    return ds(strain_exx=s1, dopant_fraction=s2), ds(abundance_0=prop), s1, prop


def test_shift_correlations_equal_brute_force_with_nan():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 12, 10))
    b = rng.standard_normal((1, 12, 10)) + 0.5 * a[:1]
    a[0, 3, 4] = a[1, 0, 0] = b[0, 7, 2] = np.nan
    r, n = perm.shift_correlations(a, b)
    for s in range(2):
        for dy, dx in [(0, 0), (1, 0), (5, 3), (11, 9)]:
            bb = np.roll(b[0], (dy, dx), axis=(0, 1))
            ok = np.isfinite(a[s]) & np.isfinite(bb)
            assert n[s, 0, dy, dx] == ok.sum()
            assert r[s, 0, dy, dx] == pytest.approx(np.corrcoef(a[s][ok], bb[ok])[0, 1], abs=1e-12)


def test_benjamini_hochberg_known_values():
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    # sorted 0.01, 0.03, 0.04, 0.2 (m = 4): 0.04, 0.06, 0.0533, 0.2 -> step-up minimum 0.04, 0.0533, 0.0533, 0.2
    np.testing.assert_allclose(perm.benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, 0.2, np.nan], equal_nan=True)


def test_true_driver_ranked_first_with_q_below_001_and_predictive():
    structure, spectra, s1, prop = driven(1)
    res = mine(structure, spectra)
    top = res.links.iloc[0]
    assert (top.structure, top.property) == ("strain_exx", "abundance_0")
    assert top.q < 0.01 and res.q_reachable and res.n_permutations > 5000
    assert top.r == pytest.approx(np.corrcoef(s1.ravel(), prop.ravel())[0, 1], abs=1e-12)
    assert top.effect == pytest.approx(0.5, abs=0.1)  # the true slope of abundance_0 on strain_exx
    other = res.links.iloc[1]
    assert other.structure == "dopant_fraction" and other.q > 0.05
    # block-CV R^2: the driver predicts (a^2 / (a^2 + 1 + 0.09) ~ 0.19 is the ceiling), the independent map does not
    assert top.cv_r2 > 0.1
    assert other.cv_r2 < 0.02
    assert res.multivariate_cv_r2["abundance_0"] > 0.1
    assert res.cca["r"] > 0.35 and res.cca["cv_r"] > 0.3
    assert abs(res.cca["x_loadings"]["strain_exx"]) > abs(res.cca["x_loadings"]["dopant_fraction"])
    assert res.pls["cv_r2"]["abundance_0"] > 0.1
    assert list(res.links.columns[:6]) == ["structure", "property", "r", "p", "q", "cv_r2"]


def _null(seed):
    rng = np.random.default_rng(10_000 + seed)
    return ds(s1=smooth(rng), s2=smooth(rng)), ds(p1=smooth(rng))


def test_spatial_null_false_positive_rate_over_200_seeds():
    any_link, pvals = 0, []
    for seed in range(200):
        res = mine(*_null(seed), models=False)
        any_link += bool((res.links.q <= 0.05).any())
        pvals += list(res.links.p)
    pvals = np.array(pvals)
    assert any_link / 200 <= 0.08
    # p roughly uniform: 400 p-values, 5 % +- 3 sigma below 0.05, and half below 0.5
    assert 0.02 <= np.mean(pvals < 0.05) <= 0.08
    assert 0.42 <= np.mean(pvals < 0.5) <= 0.58


def test_iid_permutations_are_fooled_by_autocorrelation():
    # the same null data: shuffling pixels ignores that neighbouring pixels are alike
    any_link = sum(bool((mine(*_null(seed), models=False, permutation="iid", n_permutations=199).links.q
                         <= 0.05).any()) for seed in range(30))
    assert any_link / 30 > 0.5


def test_spearman_sees_a_monotone_nonlinear_link_exactly():
    rng = np.random.default_rng(5)
    s1, s2 = smooth(rng), smooth(rng)
    res = mine(ds(s1=s1, s2=s2), ds(p=np.exp(3 * s1)), method="spearman", models=False)
    assert res.links.iloc[0].structure == "s1" and res.links.iloc[0].r == pytest.approx(1.0, abs=1e-12)
    assert res.links.iloc[0].q < 0.01


def test_block_folds_keep_a_buffer_between_train_and_test():
    folds = block_folds((20, 20), 5, 2)
    assert len(folds) == 16
    for train, test in folds:
        tr, te = train.reshape(20, 20), test.reshape(20, 20)
        dist = ndimage.distance_transform_cdt(~te, metric="chessboard")
        assert not np.any(tr & (dist <= 2)) and np.all(tr == (dist > 2))


def test_q_floor_reported_when_too_few_shifts():
    rng = np.random.default_rng(2)
    n = 8
    structure = ds(n, **{f"s{k}": rng.standard_normal((n, n)) for k in range(6)})
    spectra = ds(n, **{f"p{k}": rng.standard_normal((n, n)) for k in range(4)})
    res = mine(structure, spectra, exclusion_radius=3, models=False)
    assert not res.q_reachable and res.q_floor >= 0.01
    assert any("unreachable" in note for note in res.notes)


def test_mining_bad_input():
    structure, spectra, _, _ = driven(3)
    with pytest.raises(InputError, match="different grids"):
        mine(structure, spectra.isel(x=slice(0, 40)))
    with pytest.raises(InputError, match="different 'x'"):
        mine(structure, spectra.assign_coords(x=spectra.x + 0.2))
    with pytest.raises(InputError, match="all NaN"):
        mine(structure.assign(bad=(("y", "x"), np.full((N, N), np.nan))), spectra)
    few = np.full((N, N), np.nan)
    few[:3, :5] = 1.0 + np.arange(15).reshape(3, 5)
    with pytest.raises(InputError, match="valid pixels"):
        mine(structure, spectra.assign(gap=(("y", "x"), few)))
    with pytest.raises(InputError, match="method"):
        mine(structure, spectra, method="kendall")
    res = mine(structure.assign(flat=(("y", "x"), np.ones((N, N)))), spectra, models=False)
    assert "flat" not in set(res.links.structure) and any("constant" in n for n in res.notes)
    before = structure.copy(deep=True)
    mine(structure, spectra, models=False)
    xr.testing.assert_identical(structure, before)  # inputs are never modified
