"""PCA denoising on 'eels-si-mixed': closer to the noiseless truth, K = 3, and a removed part that is only noise."""

import dask.array as dsa
import numpy as np
import pytest

from atomine.errors import InputError
from atomine.simulate import make
from atomine.spectra import pca_denoise


@pytest.fixture(scope="module")
def sim():
    return make("eels-si-mixed", seed=0)


@pytest.fixture(scope="module")
def result(sim):
    return pca_denoise(sim.data)


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)))


def test_chooses_three_components_above_the_noise_floor(result):
    _, rep = result
    assert rep.n_components == 3 and rep.criterion == "noise-floor"
    # Poisson-weighted data have unit noise variance; the scree measures it from its own bulk
    assert rep.noise_variance == pytest.approx(1.0, abs=0.03)
    assert rep.eigenvalues[2] > 10 * rep.noise_floor > rep.noise_floor > rep.eigenvalues[3]


def test_denoised_is_much_closer_to_the_noiseless_truth(sim, result):
    den, rep = result
    truth = sim.truth.maps["noiseless"].values
    ratio = _rmse(den.values, truth) / _rmse(sim.data.values, truth)
    assert ratio < 0.15  # measured 0.10 (RMSE 20 -> 2 counts per channel)
    assert den.dims == sim.data.dims and den.dtype == np.float32
    np.testing.assert_array_equal(den.energy.values, sim.data.energy.values)
    assert den.attrs["provenance"][-1]["name"] == "spectra.pca_denoise"
    assert len(sim.data.attrs["provenance"]) == len(den.attrs["provenance"]) - 1  # input untouched


def test_removed_part_is_poisson_noise_without_structure(sim, result):
    _, rep = result
    chi2 = rep.chi2_map.values
    assert rep.chi2_map.dims == ("y", "x") and rep.dof == 500 - 3
    assert rep.chi2_mean == pytest.approx(1.0, abs=0.02)
    # a chi-square with dof degrees of freedom scatters by sqrt(2 / dof): nothing wider, no outlier region
    assert chi2.std() == pytest.approx(np.sqrt(2.0 / rep.dof), rel=0.15)
    assert chi2.max() < 1.0 + 5.0 * np.sqrt(2.0 / rep.dof)
    for k in range(3):  # not correlated with where any phase is
        r = np.corrcoef(chi2.ravel(), sim.truth.maps["abundances"].values[..., k].ravel())[0, 1]
        assert abs(r) < 0.1
    # the removed norm is the Poisson noise norm: sqrt(sum of expected counts) times sqrt((m - K) / m)
    expected = np.sqrt(sim.truth.maps["noiseless"].values.astype(np.float64).sum() * rep.dof / 500)
    assert rep.removed_norm == pytest.approx(expected, rel=0.02)
    assert 0 < rep.variance_removed < 0.3


def test_too_few_components_shows_up_in_the_chi2_map(sim):
    """Keeping 1 component throws signal away, and the map says where: chi2 >> 1 with structure."""
    _, rep = pca_denoise(sim.data, 1)
    assert rep.criterion == "given"
    assert rep.chi2_map.values.max() > 2.0
    assert rep.chi2_map.values.std() > 5 * np.sqrt(2.0 / rep.dof)


def test_dask_input_stays_lazy_and_agrees(sim, result):
    lazy = sim.data.copy(data=dsa.from_array(sim.data.values, chunks=(16, 48, 500)))
    den, rep = pca_denoise(lazy)
    assert isinstance(den.data, dsa.Array)
    assert rep.n_components == 3
    truth = sim.truth.maps["noiseless"].values
    assert _rmse(den.values, truth) < 1.1 * _rmse(result[0].values, truth)  # incremental PCA, same quality
    assert rep.chi2_mean == pytest.approx(result[1].chi2_mean, abs=0.01)


def test_bad_inputs(sim):
    with pytest.raises(InputError, match="DataArray"):
        pca_denoise(sim.data.values)
    with pytest.raises(InputError, match="n_components"):
        pca_denoise(sim.data, 0)
    with pytest.raises(InputError, match="criterion"):
        pca_denoise(sim.data, criterion="elbow")
    with pytest.raises(InputError, match="not Poisson counts"):
        pca_denoise(sim.data - 1000.0)
