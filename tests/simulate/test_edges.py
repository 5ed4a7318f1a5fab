"""The core-loss edge table: tabulated onsets, spin-orbit pairs, Moseley scaling, bad names."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.simulate import edges

# Onsets (eV) of the EELS Atlas, as listed in the task brief.
ATLAS = {("Ti", "L3"): 456, ("Ti", "L2"): 462, ("O", "K"): 532, ("Mn", "L3"): 640, ("Mn", "L2"): 651,
         ("Fe", "L3"): 708, ("Fe", "L2"): 721, ("La", "M5"): 832, ("La", "M4"): 849, ("Ca", "L3"): 346,
         ("Ca", "L2"): 350, ("C", "K"): 284, ("N", "K"): 401, ("Sr", "L3"): 1940, ("Ni", "L3"): 855,
         ("Co", "L3"): 779, ("Cr", "L3"): 575, ("V", "L3"): 513, ("Ba", "M5"): 781, ("Ce", "M5"): 883}


@pytest.mark.parametrize("key", sorted(ATLAS))
def test_onsets_are_the_tabulated_values(key):
    assert edges.onset(*key) == ATLAS[key]


def test_spin_orbit_partners_lie_above_and_pair_up():
    t = edges.EDGES.set_index(["element", "edge"])["onset_ev"]
    for (el, edge), e0 in t.items():
        other = edges.partner(edge)
        if other is None:
            continue
        assert edges.partner(other) == edge
        if edge in ("L3", "M5"):  # the j = l + 1/2 level is less bound: its edge comes first
            assert t[(el, other)] > e0, (el, edge)


@pytest.mark.parametrize("edge, rydberg_range", [("K", (3.0, 3.8)), ("L3", (1.2, 1.9))])
def test_onsets_follow_moseleys_law(edge, rydberg_range):
    """sqrt(E) is linear in Z (screened hydrogenic binding, E = Ry (Z - s)^2 / n^2): the slope is near
    sqrt(Ry) = 3.69 eV^1/2 for K and sqrt(Ry) / 2 = 1.84 for L, a little lower as screening grows with Z."""
    t = edges.EDGES[edges.EDGES["edge"] == edge]
    slope, _ = np.polyfit(t["Z"], np.sqrt(t["onset_ev"]), 1)
    assert np.corrcoef(t["Z"], np.sqrt(t["onset_ev"]))[0, 1] > 0.999
    assert rydberg_range[0] < slope < rydberg_range[1]


def test_families_white_lines_and_branching_defaults():
    t = edges.EDGES.set_index(["element", "edge"])
    assert t.loc[("O", "K"), "family"] == "K" and t.loc[("O", "K"), "white_line_strength"] == 0
    assert t.loc[("Ti", "L3"), "family"] == "L23" and t.loc[("Ti", "L3"), "white_line_strength"] > 0
    assert t.loc[("La", "M4"), "family"] == "M45" and t.loc[("La", "M4"), "white_line_strength"] > 0
    assert t.loc[("Zn", "L3"), "white_line_strength"] == 0  # full 3d band: no white lines
    assert t.loc[("Si", "L2,3"), "family"] == "single"
    assert edges.branching_ratio("Mn") == pytest.approx(0.72)
    assert edges.branching_ratio("La") < 0.5  # lanthanide M5 weaker than M4 (f0 / f1)
    assert edges.branching_ratio("Ga") == pytest.approx(2 / 3)  # statistical
    assert edges.atomic_number("La") == 57


def test_edges_of_selects_the_window_in_onset_order():
    t = edges.edges_of(["Sr", "Ti", "O", "La", "Mn"], 400, 900)
    assert list(zip(t["element"], t["edge"])) == [("Ti", "L3"), ("Ti", "L2"), ("O", "K"), ("Mn", "L3"),
                                                  ("Mn", "L2"), ("La", "M5"), ("La", "M4")]
    assert np.all(np.diff(t["onset_ev"]) > 0)
    assert edges.edges_of("O", 600, 900).empty


def test_unknown_elements_and_edges_are_refused():
    with pytest.raises(InputError, match="unknown element 'Xx'"):
        edges.onset("Xx", "K")
    with pytest.raises(InputError, match="Ti has no tabulated 'K' edge"):
        edges.onset("Ti", "K")
    with pytest.raises(InputError, match="unknown element"):
        edges.edges_of(["O", "Qq"])
