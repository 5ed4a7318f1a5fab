"""Occupancy lattices from atom tables built from known arrays (square and hexagonal), and errors."""

import numpy as np
import pandas as pd
import pytest

from atomine.errors import InputError
from atomine.thermo.configurations import descriptor
from atomine.thermo.lattice import shell_offsets
from atomine.thermo.occupancy import occupancy_lattice

A = 0.39  # nm


def known_occupancy(shape, seed, c=0.3, vac=0.05):
    """0 host, 1 dopant, -1 vacancy, as the simulators and users write occupancy arrays."""
    r = np.random.default_rng(seed).random(shape)
    return np.where(r < vac, -1, np.where(r < vac + c, 1, 0))


def table_from(occ, a1, a2, *, origin=(1.0, 2.0), noise=0.0, seed=0, i0=-3, j0=5, sublattice=0):
    """One row per site (site_i, site_j) at origin + i a1 + j a2, cls from the array."""
    i, j = np.indices(occ.shape)
    i, j = i.ravel() + i0, j.ravel() + j0
    xy = np.asarray(origin) + np.outer(i, a1) + np.outer(j, a2)
    xy += noise * np.random.default_rng(seed).normal(size=xy.shape)
    names = np.array(["vacancy", "host", "dopant"])
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "site_i": i, "site_j": j,
                         "cls": names[occ.ravel() + 1], "sublattice": sublattice})


def rotated(v, deg):
    t = np.radians(deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ np.asarray(v, float)


def expected_spins(occ):
    return np.select([occ == 1, occ == 0], [1, -1], 0).astype(np.int8)


def test_square_table_reproduces_the_array_with_vacancy_unknown_and_missing_sites_masked():
    occ = known_occupancy((20, 24), 1)
    a1, a2 = rotated([A, 0], 17), rotated([0, A], 17)
    t = table_from(occ, a1, a2, noise=0.01 * A)
    t.loc[7, "cls"] = "unknown"
    t.loc[9, "cls"] = np.nan
    t = t.drop(index=[3, 40])  # sites missing from the table (dropped atoms)
    # a second sublattice (B sites at the cell centre), all host: must not interfere
    other = table_from(np.zeros_like(occ), a1, a2, origin=(1.0 + A / 2, 2.0 + A / 2), sublattice=1)
    t = pd.concat([t, other], ignore_index=True).sample(frac=1.0, random_state=0)
    before = t.copy()
    lat = occupancy_lattice(t)
    pd.testing.assert_frame_equal(t, before)  # not modified
    want = expected_spins(occ)
    want.ravel()[[3, 7, 9, 40]] = 0
    assert lat.kind == "square" and not lat.periodic
    assert lat.origin == (-3, 5)
    np.testing.assert_array_equal(lat.spins, want)
    assert lat.a_nm == pytest.approx(A, rel=1e-3)


def test_element_labels_minority_default_and_named_dopant():
    occ = known_occupancy((12, 12), 2, c=0.25, vac=0.0)
    t = table_from(occ, [A, 0], [0, A])
    t["cls"] = np.where(occ.ravel() == 1, "Ca", "La")
    lat = occupancy_lattice(t)  # Ca is the minority
    np.testing.assert_array_equal(lat.spins, expected_spins(occ))
    flipped = occupancy_lattice(t, dopant="La")
    np.testing.assert_array_equal(flipped.spins, -expected_spins(occ))
    # a third label counts as host when the dopant is named
    t.loc[0, "cls"] = "Sr"
    lat3 = occupancy_lattice(t, dopant="Ca")
    assert lat3.spins[0, 0] == -1


def test_default_sublattice_is_the_one_holding_the_dopants():
    occ = known_occupancy((10, 10), 3, vac=0.0)
    host = table_from(np.zeros_like(occ), [A, 0], [0, A], sublattice=0)
    dop = table_from(occ, [A, 0], [0, A], origin=(1 + A / 2, 2 + A / 2), sublattice=1)
    t = pd.concat([host, dop], ignore_index=True)
    np.testing.assert_array_equal(occupancy_lattice(t).spins, expected_spins(occ))
    with pytest.raises(InputError, match="single species"):
        occupancy_lattice(t, sublattice=0)


@pytest.mark.parametrize("rotation", [0.0, 33.0])
def test_hexagonal_table_on_a_120_degree_basis_is_reindexed(rotation):
    occ = known_occupancy((14, 14), 4)
    a1, a2 = rotated([A, 0], rotation), rotated([-A / 2, A * np.sqrt(3) / 2], rotation)  # 120 degrees
    t = table_from(occ, a1, a2, noise=0.005)
    lat = occupancy_lattice(t)
    assert lat.kind == "triangular"
    assert lat.a_nm == pytest.approx(A, rel=1e-3)
    i, j = t.site_i.to_numpy(), t.site_j.to_numpy()
    i0, j0 = lat.origin
    gi, gj = i - j - (i0 - j0), j - j0  # the documented mapping
    np.testing.assert_array_equal(lat.spins[gi, gj], expected_spins(occ).ravel())
    assert np.count_nonzero(lat.spins) == np.count_nonzero(occ >= 0)  # other grid cells are masked
    # first-shell offsets of the grid are real nearest neighbours (distance a)
    pos = {(a, b): (x, y) for a, b, x, y in zip(gi, gj, t.x, t.y)}
    for di, dj in shell_offsets("triangular", 1):
        d = [np.hypot(pos[k][0] - pos[(k[0] + di, k[1] + dj)][0], pos[k][1] - pos[(k[0] + di, k[1] + dj)][1])
             for k in list(pos)[:60] if (k[0] + di, k[1] + dj) in pos]
        assert len(d) > 10 and np.allclose(d, A, atol=0.05)


def test_sixty_degree_table_is_kept_and_explicit_kind_accepted():
    occ = known_occupancy((10, 10), 5)
    t = table_from(occ, [A, 0], [A / 2, A * np.sqrt(3) / 2], i0=0, j0=0)
    for kind in ("auto", "triangular"):
        lat = occupancy_lattice(t, lattice=kind)
        assert lat.kind == "triangular"
        np.testing.assert_array_equal(lat.spins, expected_spins(occ))


def test_occupancy_feeds_the_descriptors():
    occ = known_occupancy((16, 16), 6)
    lat = occupancy_lattice(table_from(occ, [A, 0], [0, A]))
    d = descriptor(lat.kind, "nn")
    np.testing.assert_array_equal(d.histogram(lat), d.histogram(expected_spins(occ)))


def test_simulated_stm_sites_give_the_true_lattice():
    from atomine.simulate import make

    sim = make("stm-lcmo", seed=0)
    sites = sim.truth.tables["sites"]
    sites = sites[sites.in_image].reset_index(drop=True)
    lat = occupancy_lattice(sites)
    assert lat.kind == "square"
    assert lat.a_nm == pytest.approx(sim.truth.parameters["lattice_nm"], rel=1e-6)
    gi, gj = sites.site_i - lat.origin[0], sites.site_j - lat.origin[1]
    want = sites.cls.map({"dopant": 1, "host": -1, "vacancy": 0}).to_numpy()
    np.testing.assert_array_equal(lat.spins[gi, gj], want)
    n_dop = int((sites.cls == "dopant").sum())
    assert lat.composition == pytest.approx(n_dop / int(sites.cls.isin(["dopant", "host"]).sum()))


def test_arrays():
    occ = known_occupancy((8, 9), 7)
    lat = occupancy_lattice(occ)
    assert lat.kind == "square" and lat.a_nm is None and lat.origin == (0, 0)
    np.testing.assert_array_equal(lat.spins, expected_spins(occ))
    assert occupancy_lattice(occ, lattice="triangular").kind == "triangular"
    b = occ == 1
    np.testing.assert_array_equal(occupancy_lattice(b).spins, np.where(b, 1, -1))


# --- errors -------------------------------------------------------------------------------


@pytest.fixture
def square_table():
    return table_from(known_occupancy((10, 10), 8), [A, 0], [0, A])


def test_table_errors(square_table):
    t = square_table
    with pytest.raises(InputError, match="lacks column"):
        occupancy_lattice(t.drop(columns="cls"))
    dup = t.copy()
    dup.loc[1, ["site_i", "site_j"]] = dup.loc[0, ["site_i", "site_j"]].to_numpy()
    with pytest.raises(InputError, match="inconsistent site indices"):
        occupancy_lattice(dup)
    frac = t.copy()
    frac["site_i"] = frac["site_i"] + 0.5
    with pytest.raises(InputError, match="integers"):
        occupancy_lattice(frac)
    shuffled = t.copy()
    shuffled[["x", "y"]] = shuffled[["x", "y"]].sample(frac=1.0, random_state=1).to_numpy()
    with pytest.raises(InputError, match="do not match the positions"):
        occupancy_lattice(shuffled)
    nan = t.copy()
    nan.loc[4, "x"] = np.nan
    with pytest.raises(InputError, match="NaN"):
        occupancy_lattice(nan)
    with pytest.raises(InputError, match="too few sites"):
        occupancy_lattice(t, min_sites=500)
    host = t.copy()
    host["cls"] = "host"
    with pytest.raises(InputError, match="single species"):
        occupancy_lattice(host)
    with pytest.raises(InputError, match="unknown lattice"):
        occupancy_lattice(t, lattice="honeycomb")
    with pytest.raises(InputError, match="contradicts"):
        occupancy_lattice(t, lattice="triangular")
    with pytest.raises(InputError, match="no row has cls"):
        occupancy_lattice(t, dopant="Sr")
    with pytest.raises(InputError, match="not in the table"):
        occupancy_lattice(t, sublattice=3)


def test_ambiguous_tables(square_table):
    t = square_table.copy()
    t["cls"] = np.where(np.arange(len(t)) % 2, "La", "Ca")
    with pytest.raises(InputError, match="equally rare"):
        occupancy_lattice(t)
    two = pd.concat([t, t.assign(sublattice=1, x=t.x + A / 2)], ignore_index=True)
    with pytest.raises(InputError, match="sublattice"):
        occupancy_lattice(two)
    oblique = table_from(known_occupancy((10, 10), 9), [A, 0], [0.3 * A, A])
    with pytest.raises(InputError, match="degrees"):
        occupancy_lattice(oblique)


def test_array_errors():
    with pytest.raises(InputError, match="2-D"):
        occupancy_lattice(np.zeros((2, 3, 4), dtype=int))
    with pytest.raises(InputError, match="occupancy values"):
        occupancy_lattice(np.full((8, 8), 2))
    with pytest.raises(InputError, match="too few"):
        occupancy_lattice(np.array([[0, 1], [1, 0]]))
    with pytest.raises(InputError, match="single species"):
        occupancy_lattice(np.zeros((8, 8), dtype=int))
    with pytest.raises(InputError, match="atom tables"):
        occupancy_lattice(np.eye(8, dtype=int), dopant="Ca")
