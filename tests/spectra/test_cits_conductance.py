"""CITS conductance and gap maps against the 'cits-grid' simulator's truth.

The preset has a metallic, a gapped (half-gap 0.3 eV, Gaussian-broadened band edges
with their half height at +-0.3 eV) and a resonance domain (Lorentzian states at
-0.45 and +0.55 eV); the truth holds the DOS, the noiseless dI/dV and the abundances.
"""

import dask.array as dka
import numpy as np
import pytest

import atomine.simulate as simulate
from atomine.errors import InputError
from atomine.spectra import cits

PURE = 0.99  # a pixel belongs to a domain when that DOS has at least this abundance


@pytest.fixture(scope="module")
def sim():
    return simulate.make("cits-grid", seed=0)


@pytest.fixture(scope="module")
def results(sim):
    g = cits.didv(sim.data)
    return g, cits.normalised_conductance(sim.data, conductance=g), cits.gap_map(g)


def _domain(sim, name):
    ab = sim.truth.maps["abundances"]
    return ab.sel(component=name).values > PURE


def test_didv_matches_noiseless_truth(sim, results):
    g, _, _ = results
    truth = sim.truth.maps["didv_noiseless"].transpose("y", "x", "bias").values
    rel = np.sqrt(((g.values - truth) ** 2).mean() / (truth**2).mean())
    assert rel < 0.10  # measured 0.077 (white + 1/f current noise through an 11-channel window)
    assert g.dims == ("y", "x", "bias") and g.attrs["units"] == "A/V"
    assert g.attrs["provenance"][-1]["name"] == "spectra.didv"


def test_gap_map_against_truth(sim, results):
    _, _, gm = results
    delta = float(sim.truth.tables["dos"].set_index("component").loc["semiconductor", "delta_ev"])
    gapped = _domain(sim, "semiconductor")
    width, centre = gm["gap_v"].values[gapped], gm["gap_centre_v"].values[gapped]
    assert np.all(np.isfinite(width))
    assert abs(np.median(width) - 2 * delta) < 0.015  # measured 0.607 V vs 0.600 V
    assert np.percentile(np.abs(width - 2 * delta), 95) < 0.03  # measured range 0.583..0.633 V
    assert abs(np.median(centre)) < 0.01
    # metallic and resonance domains have a finite DOS at the Fermi level: no gap
    for name in ("metal", "molecular"):
        assert np.all(gm["gap_v"].values[_domain(sim, name)] == 0.0)
        assert np.all(np.isnan(gm["gap_centre_v"].values[_domain(sim, name)]))


def test_normalised_conductance_follows_dos(sim, results):
    _, nc, _ = results
    bias = sim.data["bias"].values
    dos = sim.truth.maps["dos"]
    # metal: (dI/dV)/(I/V) removes the WKB transmission; what is left is the DOS shape
    metal = nc.values[_domain(sim, "metal")].mean(axis=0)
    ref = dos.sel(component="metal").values / dos.sel(component="metal").values[np.argmin(np.abs(bias))]
    inner = np.abs(bias) <= 0.5
    assert np.max(np.abs(metal[inner] / ref[inner] - 1)) < 0.06  # measured 0.036
    # resonances: conductance peaks at the tabulated state energies (+-2 channels)
    res = nc.values[_domain(sim, "molecular")].mean(axis=0)
    table = sim.truth.tables["resonances"]
    for e_true, side in zip(sorted(table["energy_ev"]), (bias < 0, bias > 0)):
        assert abs(bias[side][np.argmax(res[side])] - e_true) <= 0.02
    # gapped: no conductance where the DOS vanishes, the band level outside
    gap = nc.values[_domain(sim, "semiconductor")].mean(axis=0)
    assert np.abs(gap[np.abs(bias) < 0.2]).max() < 0.1 * np.median(gap[np.abs(bias) > 0.5])


def test_dask_input_gives_the_same_maps(sim, results):
    g, nc, gm = results
    lazy = sim.data.copy(data=dka.from_array(sim.data.values, chunks=(10, 20, 50)))
    g2 = cits.didv(lazy)
    assert isinstance(g2.data, dka.Array)  # nothing computed yet
    np.testing.assert_allclose(g2.values, g.values, rtol=1e-10, atol=1e-20)
    np.testing.assert_allclose(cits.normalised_conductance(lazy).values, nc.values, rtol=1e-10)
    gm2 = cits.gap_map(g2)
    np.testing.assert_array_equal(gm2["gap_v"].values, gm["gap_v"].values)


def test_reversed_sweep_gives_the_same_gap(sim, results):
    _, _, gm = results
    rev = sim.data.isel(bias=slice(None, None, -1))
    gm_r = cits.gap_map(cits.didv(rev))
    np.testing.assert_allclose(gm_r["gap_v"].values, gm["gap_v"].values, atol=1e-9)


def test_bad_input_is_refused_and_input_untouched(sim):
    data = sim.data
    before = data.values.copy()
    bad = data.copy(deep=True)
    bad.values[3, 4, 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        cits.didv(bad)
    uneven = data.assign_coords(bias=data["bias"].values ** 3)
    with pytest.raises(InputError, match="evenly spaced"):
        cits.didv(uneven)
    with pytest.raises(InputError, match="window"):
        cits.didv(data, window_v=5.0)
    with pytest.raises(InputError, match="threshold"):
        cits.gap_map(data, threshold=1.5)
    with pytest.raises(InputError, match="through 0 V"):
        cits.gap_map(data.isel(bias=slice(120, None)))
    with pytest.raises(InputError, match="broadening_v"):
        cits.normalised_conductance(data, broadening_v=-1.0)
    with pytest.raises(InputError, match="dims"):
        cits.didv(data.transpose("bias", "y", "x"))
    np.testing.assert_array_equal(data.values, before)


def test_ohmic_junction_has_unit_normalised_conductance():
    # I = G V exactly: dI/dV = I/V = G, so the normalised conductance is 1 everywhere
    bias = np.linspace(-1, 1, 101)
    iv = 2e-9 * bias[None, :] * np.ones((3, 1))
    g = cits.savgol_didv(iv, bias)
    np.testing.assert_allclose(g, 2e-9, rtol=1e-9)
    np.testing.assert_allclose(cits.feenstra_normalise(iv, g, bias), 1.0, rtol=1e-6)
