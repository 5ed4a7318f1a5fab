"""Per-pixel EELS edge maps: onset shifts and edge strengths against simulated ground truth."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.ndimage import uniform_filter

from atomine.errors import InputError
from atomine.simulate import make
from atomine.simulate.eels import simulate_eels
from atomine.simulate.eels_spectra import Phase
from atomine.simulate.fields import abundance_array
from atomine.spectra import edge_maps
from atomine.spectra.edge_maps import slug

SHIFT_EV = -1.2  # Ti3+-like downward shift of the whole Ti L2,3 edge
ENERGY = 400.0 + np.arange(250) * 1.0  # Ti L2,3 and O K


@pytest.fixture(scope="module")
def shifted():
    """Left half pure 'Ti4+' phase, right half the same phase with Ti L2,3 shifted by SHIFT_EV."""
    comp = {"Sr": 1, "Ti": 1, "O": 3}
    a = Phase("Ti4+", comp, background_exponent=3.2, crystal_field_ev={"Ti": 2.0})
    b = Phase("Ti3+", comp, background_exponent=3.2, crystal_field_ev={"Ti": 2.0}, chemical_shift_ev={"Ti": SHIFT_EV})
    ny, nx = 24, 32
    ab = np.zeros((ny, nx, 2))
    ab[:, : nx // 2, 0] = 1.0
    ab[:, nx // 2:, 1] = 1.0
    sim = simulate_eels((a, b), abundance_array(ab, 0.5, [a.name, b.name]), ENERGY, counts_per_channel=400.0, seed=3)
    return sim.data, nx // 2


@pytest.fixture(scope="module")
def pair():
    return make("pair-haadf-eels")


def test_slugs():
    assert slug("Ti", "L2,3") == "ti_l23" and slug("O", "K") == "o_k" and slug("La", "M4,5") == "la_m45"


def test_known_shift_recovered_with_honest_errors(shifted):
    si, half = shifted
    ds = edge_maps(si, ["Ti L2,3", "O K"])
    onset, err = ds["edge_onset_ti_l23"].values, ds["edge_onset_ti_l23_err"].values
    assert np.isfinite(onset).all() and np.isfinite(err).all()
    left, right = onset[:, :half], onset[:, half:]
    bias = (right.mean() - left.mean()) - SHIFT_EV
    assert abs(bias) < 0.2, bias
    # per-pixel scatter in each pure region against the reported Poisson error
    for region, e in ((left, err[:, :half]), (right, err[:, half:])):
        ratio = region.std(ddof=1) / np.sqrt(np.mean(e ** 2))
        assert 1 / 1.5 < ratio < 1.5, ratio
    # O K is the same in both halves: no shift there
    o = ds["edge_onset_o_k"].values
    assert abs(o[:, half:].mean() - o[:, :half].mean()) < 3 * o.std() / np.sqrt(o.size / 2)
    assert ds["edge_onset_ti_l23"].attrs["units"] == "eV" and ds["edge_intensity_o_k"].attrs["units"] == "counts"
    assert "long_name" in ds["edge_onset_ti_l23_err"].attrs


def test_intensity_error_matches_noise(shifted):
    si, half = shifted
    ds = edge_maps(si, ["O K"])
    x, e = ds["edge_intensity_o_k"].values, ds["edge_intensity_o_k_err"].values
    ratio = x.std(ddof=1) / np.sqrt(np.mean(e ** 2))  # O K is uniform: all scatter is noise
    assert 1 / 1.5 < ratio < 1.5, ratio


def test_smoothing_lowers_onset_noise(shifted):
    si, half = shifted
    e0 = edge_maps(si, ["Ti L2,3"])["edge_onset_ti_l23_err"].values.mean()
    e1 = edge_maps(si, ["Ti L2,3"], smooth_px=1)["edge_onset_ti_l23_err"].values.mean()
    assert e1 < 0.5 * e0  # nine spectra averaged: about a third of the noise


def test_pair_preset(pair):
    si, a = pair.data, pair.truth.maps["abundance"].values
    ds = edge_maps(si)  # edges detected and named on the summed spectrum
    assert {"edge_onset_ti_l23", "edge_onset_o_k", "edge_intensity_la_m45"} <= set(ds.data_vars)
    assert ds["edge_onset_ti_l23"].dims == ("y", "x")
    # the reduced phase moves Ti L2,3 down by 0.8 eV: the onset follows its abundance
    ti = ds["edge_onset_ti_l23"].values.ravel()
    assert np.corrcoef(ti, a.ravel())[0, 1] < -0.75
    slope = np.polyfit(a.ravel(), ti, 1)[0]
    assert -1.1 < slope < -0.5, slope
    # La M4,5 exists only in the reduced phase: its strength is proportional to the abundance
    sm = edge_maps(si, ["La M4,5"], smooth_px=2)
    la = sm["edge_intensity_la_m45"].values.ravel()
    ab = uniform_filter(a, 5, mode="reflect").ravel()  # the same 5x5 average on the truth
    assert np.corrcoef(la, ab)[0, 1] > 0.95
    # pixels with no La have no La onset, rather than a noise crossing
    no_la = edge_maps(si, ["La M4,5"])["edge_onset_la_m45"].values[a < 0.05]
    assert np.isnan(no_la).mean() > 0.8


def test_edge_table_input(shifted):
    si, half = shifted
    table = pd.DataFrame({"element": ["Ti", "Ti", None], "edge": ["L3", "L2", None],
                          "measured_onset_ev": [456.0, 462.0, 500.0]})
    ds = edge_maps(si, table)
    assert sorted(ds.data_vars) == ["edge_intensity_ti_l23", "edge_intensity_ti_l23_err", "edge_onset_ti_l23",
                                    "edge_onset_ti_l23_err"]
    assert ds.attrs["edges"]["ti_l23"]["reference_onset_ev"] == 456.0


def test_bad_input(shifted):
    si, _ = shifted
    with pytest.raises(InputError, match="energy"):
        edge_maps(si.rename(energy="channel"))
    with pytest.raises(InputError, match="not increasing"):
        edge_maps(si.isel(energy=slice(None, None, -1)))
    bad = si.copy()
    bad[0, 0, 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        edge_maps(bad, ["Ti L2,3"])
    with pytest.raises(InputError, match="outside the energy axis"):
        edge_maps(si, ["La M4,5"])
    with pytest.raises(InputError, match="Element Edge"):
        edge_maps(si, ["TiL23"])
    with pytest.raises(InputError, match="smooth_px"):
        edge_maps(si, ["Ti L2,3"], smooth_px=-1)
    assert not np.isnan(si.values).any()  # the input was not modified
