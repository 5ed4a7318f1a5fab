"""Edge detection and naming: simulated truth and a real eXSpy core-loss spectrum."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.io import load
from atomine.simulate import make
from atomine.spectra.edges import detect_onsets, find_edges, match_edges


@pytest.fixture(scope="module")
def sim():
    return make("eels-si", seed=0)


def test_simulated_edges_are_found_and_named(sim):
    found = find_edges(sim.data)
    truth = sim.truth.tables["edges"]
    expected = set(truth["element"] + " " + truth["edge"])  # Ti L3/L2, O K, Mn L3/L2, La M5/M4
    assert set(found["label"]) == expected  # every edge, and no unnamed or spurious one
    for rec in found.itertuples():
        true_onsets = truth[(truth["element"] == rec.element) & (truth["edge"] == rec.edge)]["onset_ev"]
        # the summed spectrum mixes phases (Mn in the interface sits 1 eV lower)
        assert true_onsets.min() - 1.5 < rec.measured_onset_ev < true_onsets.max() + 1.0
    # the O K rise ratio: ln(S after / S before) of the summed spectrum, positive and strong
    assert found.set_index("label").loc["O K", "rise"] > 0.5


def test_real_coreloss_names_o_k_and_mn_l23(exspy_components):
    path = exspy_components / "coreloss_spectrum.msa"
    if not path.exists():
        pytest.skip(f"{path.name} is not in the cached exspy wheel")
    found = find_edges(load(path, kind="any"))
    labels = set(found["label"].dropna())
    assert {"O K", "Mn L3", "Mn L2"} <= labels
    assert labels <= {"O K", "Mn L3", "Mn L2"}  # near-edge wiggles are not named as other elements
    named = found.dropna(subset=["element"]).set_index("label")
    # O K and Mn L2,3 of the same spectrum agree on the calibration offset to a couple of eV
    assert np.ptp(named["shift_ev"]) < 3.0


def test_matching_is_one_to_one():
    """An onset between Mn L3 (640) and L2 (651) cannot take L2 from the L2 onset itself."""
    import pandas as pd

    onsets = pd.DataFrame({"measured_onset_ev": [646.0, 657.0], "rise": [0.5, 0.2], "significance": [50.0, 20.0]})
    named = match_edges(onsets, elements=["Mn"])
    assert list(named["label"]) == ["Mn L3", "Mn L2"]


def test_flat_spectrum_has_no_edges():
    e = np.arange(300.0, 500.0)
    counts = np.random.default_rng(0).poisson(1e4 * (e / 300.0) ** -3.0).astype(float)
    assert len(detect_onsets(counts, e)) == 0


def test_bad_inputs():
    e = np.arange(300.0, 500.0)
    with pytest.raises(InputError, match="energy axis"):
        find_edges(np.ones(200))
    with pytest.raises(InputError, match="unknown element"):
        find_edges(np.ones(200), energy=e, elements=["Xx"])
    with pytest.raises(InputError, match="NaN"):
        find_edges(np.full(200, np.nan), energy=e)
    with pytest.raises(InputError, match="channels"):
        find_edges(np.ones(100), energy=e)
