"""Site fields from an interface trace, and the field model learned end to end from an atom table."""

import numpy as np
import pandas as pd
import pytest

from atomine.errors import InputError
from atomine.thermo.fields import interface_field
from atomine.thermo.occupancy import occupancy_lattice
from test_thermo_fit import snapshot

A_NM = 0.4


def table_of(spins, angle_deg=0.0):
    """An atom table of a square occupancy (x, y in nm; optionally rotated)."""
    i, j = np.indices(spins.shape)
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    x, y = j * A_NM, i * A_NM
    names = np.array(["vacancy", "host", "dopant"])
    return pd.DataFrame({"x": (c * x - s * y).ravel(), "y": (s * x + c * y).ravel(), "site_i": i.ravel(),
                         "site_j": j.ravel(), "sublattice": 0, "cls": names[np.asarray(spins).ravel() + 1]})


def test_field_is_the_distance_profile_from_the_line():
    occ = np.zeros((10, 12), np.int8)
    occ[::3, ::4] = 1
    occ[5, 5] = -1  # a vacancy: masked, field 0
    for angle in (0.0, 17.0):
        lat = occupancy_lattice(table_of(occ, angle))
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        # the line through the first row of sites, in the rotated frame
        line = ((0.0, 0.0), (100 * c, 100 * s))
        f = interface_field(lat, line, decay_nm=0.8)
        i = np.indices(occ.shape)[0]
        expect = np.exp(-i * A_NM / 0.8)
        np.testing.assert_allclose(f[lat.valid], expect[lat.valid], rtol=1e-9, atol=1e-12)
        assert f[5, 5] == 0.0


def test_field_errors():
    occ = np.zeros((8, 8), np.int8)
    occ[::2, ::3] = 1
    lat = occupancy_lattice(table_of(occ))
    with pytest.raises(InputError, match="distinct"):
        interface_field(lat, ((1, 1), (1, 1)), 1.0)
    with pytest.raises(InputError, match="decay_nm"):
        interface_field(lat, ((0, 0), (1, 0)), 0.0)
    with pytest.raises(InputError, match="two points"):
        interface_field(lat, (0, 0, 1), 1.0)
    with pytest.raises(InputError, match="positions"):
        interface_field(occupancy_lattice(occ), ((0, 0), (1, 0)), 1.0)


@pytest.mark.slow
def test_interface_field_learned_from_an_atom_table():
    from atomine.workflows.thermo import learn_thermodynamics

    shape = (48, 48)
    decay_sites = 4.0
    truth = np.array([-0.1, 0.8])
    prof = np.repeat(np.exp(-np.arange(shape[0]) / decay_sites)[:, None], shape[1], axis=1)
    img = snapshot(truth[:1], shape=shape, seed=61, field=truth[1], site_field=prof)
    occ = np.where(img.spins > 0, 1, 0).astype(np.int8)
    res = learn_thermodynamics(table_of(occ), model="j1+field", interface=((0, 0), (30, 0)),
                               field_decay_nm=decay_sites * A_NM, bootstrap=0, phase=False, seed=1)
    p = res.summary["parameters"]
    for k, (name, v) in enumerate(zip(("J1", "h"), truth)):
        assert abs(p[name]["value"] - v) < 3 * p[name]["stderr"], (name, p[name])
    assert res.parameters["interface_nm"] == [0.0, 0.0, 30.0, 0.0]
