"""Pure-phase EELS spectra: edge onsets, white lines, branching ratios, background exponent."""

import numpy as np
import pytest
from scipy.special import ndtr

from atomine.errors import InputError
from atomine.simulate import eels
from atomine.simulate.eels_presets import LAMNO3, PHASES, SRTIO3
from atomine.simulate.eels_spectra import POST_EDGE_EXPONENT, Phase, PhaseModel, edge_sigma_ev


@pytest.fixture(scope="module")
def sim():
    return eels.PRESETS["eels-si"][1](0)


def _powerlaw_fit(e, s):
    slope, intercept = np.polyfit(np.log(e), np.log(s), 1)
    return -slope, np.exp(intercept)


def _detected_onset(e, spectrum, e0, first_onset):
    """Steepest rise of the background-subtracted spectrum near e0 (parabolic sub-channel peak)."""
    pre = (e > e[0] + 2) & (e < first_onset - 5)
    r, amp = _powerlaw_fit(e[pre], spectrum[pre])
    d = np.gradient(spectrum - amp * e ** -r, e)
    win = np.flatnonzero((e > e0 - 4) & (e < e0 + 3))
    i = win[np.argmax(d[win])]
    y0, y1, y2 = d[i - 1:i + 2]
    return e[i] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) * (e[1] - e[0])


def test_every_edge_onset_is_detected_within_a_channel(sim):
    e = sim.truth.maps.energy.values
    table = sim.truth.tables["edges"]
    assert len(table) == 15
    errors = []
    for comp, rows in table.groupby("component"):
        spectrum = sim.truth.maps.endmembers.sel(component=comp).values
        for e0 in rows["onset_ev"]:
            errors.append(_detected_onset(e, spectrum, e0, rows["onset_ev"].min()) - e0)
    errors = np.abs(errors)
    assert errors.max() < 1.0  # one 1 eV channel
    assert np.median(errors) < 0.35


def test_onsets_are_tabulated_or_shifted_by_the_chemical_shift(sim):
    t = sim.truth.tables["edges"].set_index(["component", "element", "edge"])
    assert t.loc[("SrTiO3", "Ti", "L3"), "onset_ev"] == 456 and t.loc[("LaMnO3", "Mn", "L2"), "onset_ev"] == 651
    assert t.loc[("interface", "Mn", "L3"), "onset_ev"] == 639  # Mn2+-like, 1 eV lower
    assert (t["onset_ev"] - t["tabulated_onset_ev"]).abs().max() == 1.0


def test_power_law_exponent_is_recovered_from_the_pre_edge(sim):
    e = sim.truth.maps.energy.values
    comp = sim.truth.tables["components"].set_index("component")
    for phase in PHASES:
        first = sim.truth.tables["edges"].query("component == @phase.name")["onset_ev"].min()
        pre = e < first - 5
        r, _ = _powerlaw_fit(e[pre], sim.truth.maps.endmembers.sel(component=phase.name).values[pre])
        assert r == pytest.approx(phase.background_exponent, abs=1e-9)
        assert comp.loc[phase.name, "background_exponent"] == phase.background_exponent
    # and from the noisy data, summed over the pure SrTiO3 pixels
    pure = sim.truth.maps.abundances.sel(component="SrTiO3").values > 0.999
    assert pure.sum() > 200
    summed = sim.data.values[pure].sum(0)
    pre = e < 450
    r, _ = _powerlaw_fit(e[pre], summed[pre])
    assert r == pytest.approx(SRTIO3.background_exponent, abs=0.03)


def _fine_model(phase, lo, hi, step=0.02):
    e = np.arange(lo, hi, step)
    sigma = edge_sigma_ev(1.0)
    return e, PhaseModel(phase, e, sigma, 1000.0), sigma


@pytest.mark.parametrize("element, upper, lower, ratio", [("Mn", 640.0, 651.0, 0.72), ("La", 832.0, 849.0, 0.44)])
def test_white_lines_sit_at_their_peaks_with_the_set_branching_ratio(element, upper, lower, ratio):
    """Pearson-style: subtract background and a double-step continuum, integrate each white line."""
    e, model, sigma = _fine_model(LAMNO3, 560.0, 900.0)
    s = model(e) - model.background(e)
    stat = 2 / 3 if element == "Mn" else 3 / 5
    rows = model.edges.set_index("element").loc[element]
    height = rows["jump"].sum()  # continuum jump of the pair (counts)
    steps = height * (stat * ndtr((e - upper) / sigma) * (np.maximum(e, upper) / upper) ** -POST_EDGE_EXPONENT
                      + (1 - stat) * ndtr((e - lower) / sigma) * (np.maximum(e, lower) / lower) ** -POST_EDGE_EXPONENT)
    # other edges' tails are smooth; remove them with a straight line through the window ends
    win = (e > upper - 8) & (e < lower + 10)
    rest = s - steps
    ends = np.r_[np.flatnonzero(win)[:20], np.flatnonzero(win)[-20:]]
    line = np.polyval(np.polyfit(e[ends], rest[ends], 1), e)
    wl = rest - line
    mid = 0.5 * (upper + lower)
    i_up = np.trapezoid(wl[(e > upper - 4) & (e < mid)], e[(e > upper - 4) & (e < mid)])
    i_lo = np.trapezoid(wl[(e >= mid) & (e < lower + 6)], e[(e >= mid) & (e < lower + 6)])
    assert i_up / (i_up + i_lo) == pytest.approx(ratio, abs=0.01)
    assert i_up + i_lo == pytest.approx(rows["white_line_area"].sum(), rel=0.02)
    for centre in (upper, lower):
        near = (e > centre - 1) & (e < centre + 3)
        assert e[near][np.argmax(s[near])] == pytest.approx(centre + sigma, abs=0.1)


def test_crystal_field_splits_the_ti_white_lines():
    e, model, sigma = _fine_model(SRTIO3, 420.0, 520.0)
    s = model(e) - model.background(e)
    l3 = (e > 455) & (e < 461)
    d = np.diff(np.sign(np.diff(s[l3])))
    maxima = e[l3][1:-1][d < 0]
    assert len(maxima) == 2
    assert maxima[1] - maxima[0] == pytest.approx(2.0, abs=0.15)  # t2g - eg splitting as set


def test_k_edges_have_a_delayed_maximum_and_a_hydrogenic_decay():
    e, model, _ = _fine_model(Phase("oxide", {"O": 1}), 450.0, 800.0)
    s = model(e) - model.background(e)
    peak = e[np.argmax(s)]
    assert 532 + 3 < peak < 532 + 15
    far = e > 600  # above the near-edge structure: continuum ~ E^-q
    q, _ = _powerlaw_fit(e[far], s[far])
    assert 1.0 < q < 2.5


def test_a_phase_with_no_edge_in_the_window_is_a_pure_power_law():
    e = np.arange(100.0, 200.0, 0.5)
    model = PhaseModel(Phase("C-free", {"O": 1}, background_exponent=4.0), e, 0.7, 100.0)
    assert model.edges.empty
    r, _ = _powerlaw_fit(e, model(e))
    assert r == pytest.approx(4.0, abs=1e-12)
    assert model(e).mean() == pytest.approx(100.0)


def test_bad_phases_are_refused():
    with pytest.raises(InputError, match="unknown element 'Xx'"):
        Phase("bad", {"Xx": 1})
    with pytest.raises(InputError, match="empty composition"):
        Phase("bad", {})
    with pytest.raises(InputError, match="background_exponent"):
        Phase("bad", {"O": 1}, background_exponent=0.5)
    with pytest.raises(InputError, match="branching_ratio"):
        Phase("bad", {"Mn": 1}, branching_ratio={"Mn": 1.2})
    with pytest.raises(InputError, match="not in its composition"):
        Phase("bad", {"O": 1}, crystal_field_ev={"Ti": 2.0})
    with pytest.raises(InputError, match="amount of O"):
        Phase("bad", {"O": np.nan})
    with pytest.raises(InputError, match="mean_free_path_nm"):
        Phase("bad", {"O": 1}, mean_free_path_nm=-1.0)
