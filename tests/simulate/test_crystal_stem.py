"""Unit cells, lattices, grains and phases of the STEM structure builder."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from atomine.errors import InputError
from atomine.simulate import crystal, regions
from atomine.simulate.structure import atomic_number

A_NM = 0.3905


def nn_distances(x, y, k=2):
    pts = np.column_stack([x, y])
    d, _ = cKDTree(pts).query(pts, k=k)
    return d[:, 1:]


def test_perovskite_columns_sit_on_the_lattice_with_their_atoms():
    cell = crystal.perovskite_cell(A_NM, A="Sr", B="Ti", X="O", thickness_cells=7)
    s = crystal.lattice(cell, fov_nm=4.0, origin_nm=(1.0, 1.2), margin_nm=0.5)
    frac = dict(zip(cell.sites, cell.fractional))
    for site in cell.sites:
        sel = s.site == site
        fx, fy = frac[site]
        assert np.allclose(s.x_nm[sel], 1.0 + (s.site_j[sel] + fx) * A_NM)
        assert np.allclose(s.y_nm[sel], 1.2 + (s.site_i[sel] + fy) * A_NM)
    species = s.species()
    assert set(species[s.site == "A"]) == {"Sr7"}
    assert set(species[s.site == "B"]) == {"Ti7O7"}
    assert set(species[s.site == "X1"]) | set(species[s.site == "X2"]) == {"O7"}
    # ABO3 stoichiometry: per cell 1 A, 1 B and 3 O
    totals = dict(zip(s.elements, s.counts.sum(axis=0)))
    assert totals["O"] == pytest.approx(3 * totals["Sr"], rel=0.1)
    assert s.z_sum[s.site == "A"][0] == 7 * atomic_number("Sr")
    # every column within the field of view plus margin, and no further
    assert s.x_nm.min() >= -0.5 and s.x_nm.max() <= 4.5 and s.x_nm.min() < -0.5 + A_NM / 2
    assert nn_distances(s.x_nm, s.y_nm).min() == pytest.approx(A_NM / 2)
    # sites of one sublattice are unique
    keys = set(zip(s.site, s.site_i, s.site_j))
    assert len(keys) == len(s)


def test_mos2_is_a_honeycomb_of_metal_and_chalcogen_pairs():
    a = 0.316
    s = crystal.lattice(crystal.mos2_cell(a), fov_nm=5.0)
    m, x = s.site == "M", s.site == "X2"
    assert set(s.species()[m]) == {"Mo1"} and set(s.species()[x]) == {"S2"}
    assert np.sum(m) == pytest.approx(np.sum(x), rel=0.05)
    core = (np.abs(s.x_nm - 2.5) < 1.5) & (np.abs(s.y_nm - 2.5) < 1.5)
    d = nn_distances(s.x_nm, s.y_nm, k=4)[core]
    assert np.allclose(d, a / np.sqrt(3))  # three nearest neighbours at a / sqrt(3)
    tree = cKDTree(np.column_stack([s.x_nm[x], s.y_nm[x]]))
    d_mx, _ = tree.query(np.column_stack([s.x_nm[m & core], s.y_nm[m & core]]))
    assert np.allclose(d_mx, a / np.sqrt(3))  # each metal's nearest neighbour is a chalcogen
    assert nn_distances(s.x_nm[m], s.y_nm[m])[:, 0].min() == pytest.approx(a)


def test_rocksalt_projects_to_mixed_columns_half_a_apart():
    s = crystal.lattice(crystal.rocksalt_cell(0.4177, thickness_cells=4), fov_nm=3.0)
    assert set(s.species()) == {"Ni4O4"}
    assert np.allclose(nn_distances(s.x_nm, s.y_nm), 0.4177 / 2)


@pytest.mark.parametrize("angle", [0.0, 30.0, -17.5, 90.0])
def test_rotation_is_counter_clockwise_as_displayed(angle):
    s = crystal.lattice(crystal.perovskite_cell(A_NM), fov_nm=4.0, rotation_deg=angle)
    a = s.site == "A"
    lookup = {(i, j): (x, y) for i, j, x, y in zip(s.site_i[a], s.site_j[a], s.x_nm[a], s.y_nm[a])}
    i, j = next(k for k in lookup if (k[0], k[1] + 1) in lookup)
    step = np.subtract(lookup[(i, j + 1)], lookup[(i, j)])
    t = np.deg2rad(angle)
    assert np.allclose(step, A_NM * np.array([np.cos(t), -np.sin(t)]))  # y down: CCW turns a1 toward -y
    assert s.grain_rotation_deg == (angle,)


def test_grains_follow_the_voronoi_partition_and_their_rotations():
    cell = crystal.perovskite_cell(A_NM, thickness_cells=5)
    seeds = [(2.0, 2.0), (6.0, 2.5), (4.0, 6.0)]
    rotations = [0.0, 20.0, -35.0]
    s = crystal.grains(cell, seeds_nm=seeds, rotations_deg=rotations, fov_nm=8.0)
    part = regions.Voronoi(seeds)
    assert np.array_equal(s.grain, part.label(s.x0_nm, s.y0_nm))
    assert np.array_equal(s.grain_at(s.x0_nm, s.y0_nm), s.grain)
    for g, rot in enumerate(rotations):
        sel = (s.grain == g) & (s.site == "A")
        basis = crystal.rotation_matrix(rot) @ (A_NM * np.eye(2))
        ideal = np.array(s.grain_origin_nm[g])[:, None] + basis @ np.vstack([s.site_j[sel], s.site_i[sel]])
        assert np.allclose(ideal, np.vstack([s.x_nm[sel], s.y_nm[sel]]))
    assert nn_distances(s.x_nm, s.y_nm).min() >= 0.6 * A_NM / 2 - 1e-12
    assert s.grain_phase == (0, 0, 0) and len(s.cells) == 1
    assert s.describe()["partition"]["type"] == "voronoi"


def test_phases_place_a_second_structure_inside_disks():
    host = crystal.perovskite_cell(A_NM)
    inc = crystal.rocksalt_cell(0.4177)
    s = crystal.phases(host, inc, centres_nm=[(2.0, 2.0), (5.0, 5.0)], radii_nm=[1.0, 1.5], fov_nm=7.0,
                       inclusion_rotation_deg=10.0)
    r1 = np.hypot(s.x0_nm - 2.0, s.y0_nm - 2.0) <= 1.0
    r2 = np.hypot(s.x0_nm - 5.0, s.y0_nm - 5.0) <= 1.5
    assert np.all(s.phase[r1 | r2] == 1) and np.all(s.phase[~(r1 | r2)] == 0)
    assert np.all(s.grain[r1] == 1) and np.all(s.grain[r2] == 2)
    assert set(s.site[s.phase == 1]) == {"MX"} and set(s.site[s.phase == 0]) == {"A", "B", "X1", "X2"}
    assert s.grain_phase == (0, 1, 1) and s.grain_rotation_deg == (0.0, 10.0, 10.0)
    assert np.array_equal(s.phase_at(s.x0_nm, s.y0_nm), s.phase)


def test_regions_label_points():
    v = regions.Voronoi([(0.0, 0.0), (2.0, 0.0)])
    assert list(v.label([0.9, 1.1], [5.0, -5.0])) == [0, 1]
    d = regions.Disks([(0.0, 0.0), (3.0, 0.0)], [1.0, 0.5])
    assert list(d.label([0.0, 3.0, 1.5, 3.6], [0.0, 0.0, 0.0, 0.0])) == [1, 2, 0, 0]
    st = regions.Stripes(width_nm=1.0, normal_deg=90.0)  # horizontal walls
    assert list(st.label([5.0, 5.0, 5.0], [-0.5, -1.5, 0.5])) == [0, 1, 1]


def test_structure_updates_leave_the_original_alone():
    s = crystal.lattice(crystal.perovskite_cell(A_NM), fov_nm=3.0)
    n = len(s)
    half = s.subset(s.x_nm < 1.5)
    assert len(s) == n and 0 < len(half) < n
    t = half.table()
    assert {"x", "y", "site", "species", "Z_sum", "site_i", "site_j", "cls", "grain", "phase"} <= set(t.columns)
    with pytest.raises(InputError, match="subset mask"):
        s.subset(np.ones(3, dtype=bool))


@pytest.mark.parametrize("make, message", [
    (lambda: crystal.perovskite_cell(0.0), "a_nm"),
    (lambda: crystal.perovskite_cell(np.nan), "a_nm"),
    (lambda: crystal.perovskite_cell(A_NM, thickness_cells=0), "thickness_cells"),
    (lambda: crystal.perovskite_cell(A_NM, thickness_cells=2.5), "thickness_cells"),
    (lambda: crystal.perovskite_cell(A_NM, A="Xx"), "element"),
    (lambda: crystal.mos2_cell(-1.0), "a_nm"),
    (lambda: crystal.lattice(crystal.perovskite_cell(), fov_nm=np.nan), "fov_nm"),
    (lambda: crystal.lattice(crystal.perovskite_cell(), fov_nm=(3.0, -1.0)), "fov_nm"),
    (lambda: crystal.lattice(crystal.perovskite_cell(), fov_nm=3.0, rotation_deg=np.inf), "rotation_deg"),
    (lambda: crystal.lattice("SrTiO3", fov_nm=3.0), "UnitCell"),
    (lambda: crystal.lattice(crystal.perovskite_cell(), fov_nm=5e4), "20 million"),
    (lambda: crystal.grains(crystal.perovskite_cell(), seeds_nm=[(1, 1), (2, 2)], rotations_deg=[0, 1, 2], fov_nm=3),
     "rotations_deg"),
    (lambda: crystal.grains(crystal.perovskite_cell(), seeds_nm=[(1, np.nan)], rotations_deg=[0], fov_nm=3), "NaN"),
    (lambda: crystal.phases(crystal.perovskite_cell(), crystal.rocksalt_cell(), centres_nm=[(1, 1)], radii_nm=[-1],
                            fov_nm=3), "radii_nm"),
    (lambda: crystal.polycrystal([crystal.perovskite_cell()] * 2, regions.Voronoi([(0, 0), (1, 1), (2, 2)]), fov_nm=3),
     "one per region"),
    (lambda: crystal.polycrystal([crystal.perovskite_cell()], partition="left half", fov_nm=3), "partition"),
])
def test_bad_structure_inputs_raise(make, message):
    with pytest.raises(InputError, match=message):
        make()
