"""Keenan-Kotula Poisson weighting: unit noise variance on 'eels-si-mixed', exact back-mapping of factors."""

import dask.array as dsa
import numpy as np
import pytest

from atomine.errors import InputError
from atomine.simulate import make
from atomine.spectra import poisson_weights


@pytest.fixture(scope="module")
def sim():
    return make("eels-si-mixed", seed=0)


def test_weighted_poisson_noise_has_unit_variance_flat_across_channels(sim):
    w = poisson_weights(sim.data)
    noise = sim.data.values.astype(np.float64) - sim.truth.maps["noiseless"].values  # the Poisson draw only
    z = w.weight(noise.reshape(-1, noise.shape[-1]))
    assert z.var() == pytest.approx(1.0, abs=0.05)
    per_channel = z.var(axis=0)
    # each channel's variance from 2304 pixels scatters by sqrt(2 / 2304) = 3 %: no channel is off by more
    # than ~4.5 sigma, and the low-loss end (many counts) is no noisier than the high-loss end (few counts)
    assert np.abs(per_channel - 1.0).max() < 4.5 * np.sqrt(2.0 / z.shape[0])
    first, last = per_channel[:100].mean(), per_channel[-100:].mean()
    assert abs(first - last) < 0.03
    # raw counts are strongly heteroscedastic across the same channels (the check above is not trivial)
    raw = noise.reshape(-1, noise.shape[-1]).var(axis=0)
    assert raw.max() / raw.min() > 2.0


def test_factors_are_the_mean_image_and_spectrum(sim):
    X = sim.data.values.reshape(-1, sim.data.shape[-1]).astype(np.float64)
    w = poisson_weights(X)
    g, h = X.mean(axis=1), X.mean(axis=0)
    np.testing.assert_allclose(w.pixel, np.sqrt(g / g.mean()))
    np.testing.assert_allclose(w.channel, np.sqrt(h))
    np.testing.assert_allclose(w.weight(X), X / np.sqrt(np.outer(g, h) / g.mean()))
    assert w.shape == (X.shape[0],)


def test_factorisation_maps_back_to_counts(sim):
    """X_w = C_w S_w  ->  X = unweight_scores(C_w) @ unweight_components(S_w), exactly."""
    X = sim.truth.maps["noiseless"].values.reshape(-1, sim.data.shape[-1]).astype(np.float64)
    A = sim.truth.maps["abundances"].values.reshape(-1, 3)
    S = sim.truth.maps["endmembers"].values
    w = poisson_weights(X)
    Xw = w.weight(X)
    Cw = A / w.pixel[:, None]
    Sw = S / w.channel[None, :]
    np.testing.assert_allclose(Cw @ Sw, Xw, rtol=1e-5)
    np.testing.assert_allclose(w.unweight_scores(Cw) @ w.unweight_components(Sw), X, rtol=1e-5)
    np.testing.assert_allclose(w.unweight(Xw), X, rtol=1e-10)


def test_channel_only_keeps_abundances_summing_to_one(sim):
    X = sim.truth.maps["noiseless"].values.reshape(-1, sim.data.shape[-1]).astype(np.float64)
    A = sim.truth.maps["abundances"].values.reshape(-1, 3)
    S = sim.truth.maps["endmembers"].values
    co = poisson_weights(X).channel_only
    assert np.all(co.pixel == 1.0)
    # the channel-weighted data are mixed by the very same (sum-to-one) abundances
    np.testing.assert_allclose(co.weight(X), A @ co.weight(S[None])[0], rtol=1e-5)


def test_dataarray_and_dask_give_the_same_weights(sim):
    eager = poisson_weights(sim.data)
    lazy_da = sim.data.copy(data=dsa.from_array(sim.data.values, chunks=(16, 48, 500)))
    lazy = poisson_weights(lazy_da)
    np.testing.assert_allclose(lazy.channel, eager.channel, rtol=1e-6)
    np.testing.assert_allclose(lazy.pixel, eager.pixel, rtol=1e-6)
    out = lazy.weight(lazy_da)
    assert isinstance(out.data, dsa.Array) and out.dims == sim.data.dims and out.attrs["units"] == ""
    np.testing.assert_allclose(out.values, eager.weight(sim.data).values, rtol=1e-6)
    assert eager.shape == (48, 48)


def test_bad_inputs_and_input_not_modified(sim):
    before = sim.data.values.copy()
    w = poisson_weights(sim.data)
    w.weight(sim.data)
    np.testing.assert_array_equal(sim.data.values, before)
    with pytest.raises(InputError, match="not Poisson counts"):
        poisson_weights(-np.ones((4, 5)))
    with pytest.raises(InputError, match="at least 2 pixels"):
        poisson_weights(np.ones((1, 5)))
    with pytest.raises(InputError, match="NaN"):
        poisson_weights(np.full((3, 5), np.nan))
    with pytest.raises(InputError, match="channels"):
        w.weight(np.ones((48 * 48, 7)))
    with pytest.raises(InputError, match="pixels"):
        w.unweight_scores(np.ones((5, 3)))
