"""Component annotation against the simulators' truth: EELS edges per phase, CITS gaps and resonances."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.simulate import make
from atomine.spectra import annotate_cits, annotate_eels


@pytest.fixture(scope="module")
def eels():
    return make("eels-si-mixed", seed=0)


@pytest.fixture(scope="module")
def cits():
    return make("cits-grid-mixed", seed=0)


@pytest.fixture(scope="module")
def eels_table(eels):
    return annotate_eels(eels.truth.maps["endmembers"])


def _shells(table, component):
    rows = table[table["component"] == component]
    return set(rows["element"] + " " + rows["edge"])


def test_each_phase_has_exactly_its_edges(eels_table):
    assert eels_table["element"].notna().all()  # no onset that no tabulated edge explains
    assert _shells(eels_table, "SrTiO3") == {"Ti L2,3", "O K"}  # no Mn L, no La M
    assert _shells(eels_table, "LaMnO3") == {"O K", "Mn L2,3", "La M4,5"}  # no Ti
    assert _shells(eels_table, "interface") == {"Ti L2,3", "O K", "Mn L2,3", "La M4,5"}
    lines = eels_table.set_index(["component", "element"])["lines"]
    assert lines[("LaMnO3", "Mn")] == "Mn L3, Mn L2" and lines[("SrTiO3", "Ti")] == "Ti L3, Ti L2"


def test_onsets_within_2_ev_of_truth(eels, eels_table):
    truth = eels.truth.tables["edges"]
    for rec in eels_table.itertuples():
        true = truth[(truth["component"] == rec.component) & (truth["element"] == rec.element)]["onset_ev"].min()
        assert abs(rec.measured_onset_ev - true) < 2.0, (rec.component, rec.element)
    # given the truth table, the interface's Mn (chemically shifted by -1 eV) is reported at its own onset
    own = annotate_eels(eels.truth.maps["endmembers"], edge_table=truth).set_index(["component", "element"])
    assert own.loc[("interface", "Mn"), "onset_ev"] == 639.0 and own.loc[("LaMnO3", "Mn"), "onset_ev"] == 640.0


def test_edge_strength_follows_composition(eels_table):
    """The O K strength per unit of the phase's counts: O3 in every phase; Ti 1 in SrTiO3 vs 0.5 at the interface."""
    t = eels_table.set_index(["component", "element"])
    assert (t["jump_ratio"] > 1.0).all()
    assert (t["strength"] > 0).all()
    ti_ratio = t.loc[("interface", "Ti"), "strength"] / t.loc[("SrTiO3", "Ti"), "strength"]
    assert 0.5 < ti_ratio < 0.9  # half the Ti atoms; each phase is scaled to the same mean counts
    # a power-law background before the first edge of each phase fits essentially exactly
    first = eels_table.groupby("component").head(1)
    assert (first["background_r_squared"] > 0.999).all()
    np.testing.assert_allclose(first.set_index("component").loc[["SrTiO3", "interface"], "background_r"],
                               [3.2, 3.0], atol=0.05)  # the simulator's background exponents


def test_plain_array_and_scale_invariance(eels, eels_table):
    em = eels.truth.maps["endmembers"]
    scaled = annotate_eels(em.values * 1e-3, em.energy.values)  # e.g. unit-norm unmixing components
    np.testing.assert_allclose(scaled["measured_onset_ev"], eels_table["measured_onset_ev"], atol=1e-6)
    np.testing.assert_allclose(scaled["jump_ratio"], eels_table["jump_ratio"], rtol=1e-6)
    np.testing.assert_allclose(scaled["strength"], eels_table["strength"] * 1e-3, rtol=1e-6)
    assert list(scaled["component"].unique()) == [0, 1, 2]


def test_cits_gap_and_resonances_match_truth(cits):
    table = annotate_cits(cits.truth.maps["endmember_didv"])
    gaps = table[table["feature"] == "gap"].set_index("component")
    dos = cits.truth.tables["dos"].set_index("component")
    # semiconductor: band edges at +-delta (half height of the broadened steps), within 10 mV
    delta = dos.loc["semiconductor", "delta_ev"]
    assert gaps.loc["semiconductor", "low_v"] == pytest.approx(-delta, abs=0.01)
    assert gaps.loc["semiconductor", "high_v"] == pytest.approx(delta, abs=0.01)
    assert gaps.loc["semiconductor", "width_v"] == pytest.approx(2 * delta, abs=0.02)
    assert gaps.loc["semiconductor", "position_v"] == pytest.approx(0.0, abs=0.01)
    assert gaps.loc["metal", "width_v"] == 0.0  # no gap: conductance at 0 V above half the band level
    res = table[table["feature"] == "resonance"]
    assert set(res["component"]) == {"molecular"}  # neither the metal nor the band edges give peaks
    truth = cits.truth.tables["resonances"].sort_values("energy_ev")
    # positions within 10 mV; FWHM within 15 % of 2 x HWHM (78 K Fermi smearing and the WKB factor broaden)
    np.testing.assert_allclose(res["position_v"], truth["energy_ev"], atol=0.01)
    np.testing.assert_allclose(res["width_v"], 2 * truth["hwhm_ev"], rtol=0.15)


def test_cits_noise_wiggles_are_not_resonances(cits):
    """White noise of 2 % of the curve's range on every channel: the metal gets no peaks, the molecule keeps its two."""
    d = cits.truth.maps["endmember_didv"]
    rng = np.random.default_rng(1)
    span = np.ptp(d.values, axis=1, keepdims=True)
    noisy = d.copy(data=d.values + rng.normal(0.0, 0.02, d.shape) * span)
    res = annotate_cits(noisy)
    res = res[res["feature"] == "resonance"]
    assert list(res["component"]) == ["molecular", "molecular"]
    np.testing.assert_allclose(res["position_v"], cits.truth.tables["resonances"]["energy_ev"], atol=0.02)


def test_cits_reversed_sweep_and_plain_array(cits):
    d = cits.truth.maps["endmember_didv"]
    fwd = annotate_cits(d.values, d.bias.values)
    rev = annotate_cits(d.values[:, ::-1], d.bias.values[::-1])
    np.testing.assert_allclose(rev["position_v"], fwd["position_v"], atol=1e-9)


def test_bad_inputs(eels):
    em = eels.truth.maps["endmembers"]
    with pytest.raises(InputError, match="energy axis"):
        annotate_eels(em.values)
    with pytest.raises(InputError, match="channels"):
        annotate_eels(em.values, em.energy.values[:-1])
    with pytest.raises(InputError, match="edge_table"):
        annotate_eels(em, edge_table=[("Ti", "L3")])
    with pytest.raises(InputError, match="NaN"):
        annotate_cits(np.full((2, 11), np.nan), np.linspace(-1, 1, 11))
    with pytest.raises(InputError, match="through 0 V"):
        annotate_cits(np.ones((2, 11)), np.linspace(0.1, 1, 11))
