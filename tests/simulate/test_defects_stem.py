"""Defects in the projected structure: dislocations (Burgers circuits, elasticity), dopants, vacancies, polar shifts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from atomine.errors import InputError
from atomine.simulate import crystal, defects, regions
from atomine.simulate.stem_presets import dislocation_structure

A_NM = 0.3905


@pytest.fixture(scope="module")
def sto():
    return crystal.lattice(crystal.perovskite_cell(A_NM, thickness_cells=10), fov_nm=6.0)


@pytest.fixture(scope="module")
def dislocated():
    return dislocation_structure()


def burgers_circuit(structure, start_xy, n, direction=+1):
    """Walk n a1, n a2, -n a1, -n a2 on the A sublattice of the real (displaced) crystal.

    Each step goes to the A column nearest to (current position + perfect lattice vector).
    Returns the closure failure (end - start) in lattice indices (d_i, d_j).
    """
    sel = np.flatnonzero(structure.site == "A")
    pos = np.column_stack([structure.x_nm[sel], structure.y_nm[sel]])
    tree = cKDTree(pos)
    steps = [(A_NM, 0.0)] * n + [(0.0, A_NM)] * n + [(-A_NM, 0.0)] * n + [(0.0, -A_NM)] * n
    if direction < 0:
        steps = [(-sx, -sy) for sx, sy in reversed(steps)]
    start = current = tree.query(start_xy)[1]
    for step in steps:
        dist, current = tree.query(pos[current] + np.array(step))
        assert dist < 0.3 * A_NM  # every step lands on a well-defined neighbour: good crystal
    i, j = structure.site_i[sel], structure.site_j[sel]
    return int(i[current] - i[start]), int(j[current] - j[start])


def test_burgers_circuit_closes_with_one_lattice_vector_around_each_core(dislocated):
    cores = [(d.x_nm, d.y_nm, np.array(d.burgers_nm)) for d in dislocated.dislocations]
    for x, y, b in cores:
        di, dj = burgers_circuit(dislocated, (x - 3 * A_NM, y - 3 * A_NM), 6)
        closure = dj * np.array([A_NM, 0.0]) + di * np.array([0.0, A_NM])
        # a clockwise circuit (as displayed) misses closure by exactly b (finish - start)
        assert np.allclose(closure, b)
        assert burgers_circuit(dislocated, (x - 3 * A_NM, y - 3 * A_NM), 6, direction=-1) == (-di, -dj)
    # a circuit in good crystal away from both cores closes
    assert burgers_circuit(dislocated, (1.0, 0.8), 4) == (0, 0)
    assert burgers_circuit(dislocated, (5.5, 8.0), 4) == (0, 0)


def test_burgers_circuit_around_both_cores_sums_their_vectors(dislocated):
    (x1, y1), (x2, y2) = [(d.x_nm, d.y_nm) for d in dislocated.dislocations]
    singles = [burgers_circuit(dislocated, (x - 3 * A_NM, y - 3 * A_NM), 6) for x, y in ((x1, y1), (x2, y2))]
    both = burgers_circuit(dislocated, (x1 - 3 * A_NM, min(y1, y2) - 8 * A_NM), 16)
    assert both == (singles[0][0] + singles[1][0], singles[0][1] + singles[1][1])


def test_edge_field_jumps_by_b_on_the_slip_plane_and_is_elastic():
    d = defects.EdgeDislocation(0.0, 0.0, (A_NM, 0.0), poisson_ratio=0.3)
    eps = 1e-9
    xs = np.array([-2.0, -0.7, -0.2])
    up = np.array(d.displacement(xs, -eps))
    down = np.array(d.displacement(xs, eps))
    assert np.allclose(down - up, [[A_NM] * 3, [0.0] * 3], atol=1e-6)  # cut along -b: jump = b
    right_up, right_down = np.array(d.displacement(-xs, -eps)), np.array(d.displacement(-xs, eps))
    assert np.allclose(right_up, right_down, atol=1e-6)  # no cut ahead of the core
    # the isotropic Navier equation (1 - 2 nu) lap(u) + grad(div u) = 0 holds away from the core
    nu, h = 0.3, 1e-3
    pts = np.array([[0.8, 0.5], [1.5, -0.9], [-0.6, 1.1], [0.3, -1.4]])

    def u(x, y):
        return np.array(d.displacement(x, y))

    for x, y in pts:
        uxx = (u(x + h, y) - 2 * u(x, y) + u(x - h, y)) / h**2
        uyy = (u(x, y + h) - 2 * u(x, y) + u(x, y - h)) / h**2
        uxy = (u(x + h, y + h) - u(x + h, y - h) - u(x - h, y + h) + u(x - h, y - h)) / (4 * h**2)
        lap = uxx + uyy
        grad_div = np.array([uxx[0] + uxy[1], uxy[0] + uyy[1]])
        residual = (1 - 2 * nu) * lap + grad_div
        assert np.abs(residual).max() < 1e-4 * np.abs(grad_div).max() + 1e-6


def test_edge_field_rotates_with_its_burgers_vector():
    bx = defects.EdgeDislocation(0.0, 0.0, (A_NM, 0.0))
    by = defects.EdgeDislocation(0.0, 0.0, (0.0, A_NM))
    x, y = np.array([0.5, -0.3, 1.2]), np.array([0.4, 0.9, -0.7])
    # rotating the whole configuration by 90 degrees maps (x, y) -> (-y, x) in image coordinates
    ux, uy = bx.displacement(x, y)
    vx, vy = by.displacement(-y, x)
    assert np.allclose(vx, -uy) and np.allclose(vy, ux)


def test_extra_half_plane_lies_on_the_plus_n_side(dislocated):
    d = dislocated.dislocations[0]  # b along +x: n = +y, below the core as displayed
    a = dislocated.site == "A"
    core_row = np.median(dislocated.site_i[a & (np.abs(dislocated.y0_nm - d.y_nm) < 0.5 * A_NM)])

    def columns_between(row):
        """Columns of one A row between the A columns nearest to x_core -+ 2.5 nm (ends included)."""
        sel = np.flatnonzero(a & (dislocated.site_i == row))
        x = dislocated.x_nm[sel]
        left = sel[np.argmin(np.abs(x - (d.x_nm - 2.5)))]
        right = sel[np.argmin(np.abs(x - (d.x_nm + 2.5)))]
        inside = (x >= dislocated.x_nm[left]) & (x <= dislocated.x_nm[right])
        return int(inside.sum()), dislocated.x_nm[right] - dislocated.x_nm[left]

    above, span_above = columns_between(core_row - 1)
    below, span_below = columns_between(core_row + 1)
    assert below - above == 1  # one extra column below the core over (nearly) the same length
    assert abs(span_below - span_above) < 0.5 * A_NM


def test_dislocation_displacements_are_stored_and_input_untouched(sto):
    x0 = sto.x_nm.copy()
    d = defects.EdgeDislocation(3.0, 3.0, (A_NM, 0.0))
    out = defects.add_dislocations(sto, d)
    assert np.array_equal(sto.x_nm, x0) and np.all(sto.ux_nm == 0)
    ux, uy = d.displacement(out.x0_nm, out.y0_nm)
    assert np.allclose(out.ux_nm, ux) and np.allclose(out.x_nm - out.x0_nm, ux)
    assert np.allclose(out.uy_nm, uy)
    fx, fy = out.displacement_at(out.x0_nm, out.y0_nm)
    assert np.allclose(fx, ux) and np.allclose(fy, uy)
    assert len(out) <= len(sto)


@pytest.mark.parametrize("kwargs, message", [
    ({"burgers_nm": (0.0, 0.0)}, "non-zero"),
    ({"burgers_nm": (np.nan, 0.0)}, "burgers_nm"),
    ({"poisson_ratio": 0.5}, "poisson_ratio"),
    ({"x_nm": np.inf}, "x_nm"),
])
def test_bad_dislocations_raise(kwargs, message):
    base = {"x_nm": 1.0, "y_nm": 1.0, "burgers_nm": (A_NM, 0.0), "poisson_ratio": 0.3}
    with pytest.raises(InputError, match=message):
        defects.EdgeDislocation(**{**base, **kwargs})


def test_add_dislocations_rejects_non_dislocations(sto):
    with pytest.raises(InputError, match="EdgeDislocation"):
        defects.add_dislocations(sto, [(1.0, 2.0)])
    with pytest.raises(InputError, match="Structure"):
        defects.add_dislocations("not a structure", defects.EdgeDislocation(1, 1, (A_NM, 0)))


# --- dopants and vacancies -----------------------------------------------------------------
def test_dopants_and_vacancies_sit_where_the_occupancy_array_says(sto):
    grid = defects.occupancy_grid(sto, "B")
    occ = defects.random_occupancy(grid.shape, dopant_fraction=0.1, vacancy_fraction=0.05, seed=4)
    out = defects.substitute(sto, occ, site="B", dopant="Nb", atoms_per_column=2)
    b = out.site == "B"
    value = occ[out.site_i[b] - grid.i0, out.site_j[b] - grid.j0]
    assert np.array_equal(out.cls[b] == "dopant", value == 1)
    assert np.array_equal(out.cls[b] == "vacancy", value == -1)
    assert np.all(out.cls[~b] == "host")
    species = out.species()
    assert set(species[b][value == 1]) == {"Nb2Ti8O10"}
    assert set(species[b][value == -1]) == {""} and np.all(out.n_atoms[b][value == -1] == 0)
    assert set(species[b][value == 0]) == {"Ti10O10"}
    # the input structure is untouched
    assert np.all(sto.cls == "host") and "Nb" not in sto.elements
    rows, cols = np.nonzero(occ == 1)
    doped = {(i, j) for i, j in zip(out.site_i[b][value == 1] - grid.i0, out.site_j[b][value == 1] - grid.j0)}
    present = {(i, j) for i, j in zip(out.site_i[b] - grid.i0, out.site_j[b] - grid.j0)}
    assert doped == {(i, j) for i, j in zip(rows, cols) if (i, j) in present}


def test_random_occupancy_fractions_and_seed():
    occ = defects.random_occupancy((200, 200), dopant_fraction=0.1, vacancy_fraction=0.05, seed=1)
    n = occ.size
    assert np.mean(occ == 1) == pytest.approx(0.1, abs=4 * np.sqrt(0.1 * 0.9 / n))
    assert np.mean(occ == -1) == pytest.approx(0.05, abs=4 * np.sqrt(0.05 * 0.95 / n))
    assert np.array_equal(occ, defects.random_occupancy((200, 200), dopant_fraction=0.1, vacancy_fraction=0.05, seed=1))
    assert not np.array_equal(occ, defects.random_occupancy((200, 200), dopant_fraction=0.1, vacancy_fraction=0.05, seed=2))
    with pytest.raises(InputError, match="<= 1"):
        defects.random_occupancy((5, 5), dopant_fraction=0.7, vacancy_fraction=0.6)
    with pytest.raises(InputError, match="dopant_fraction"):
        defects.random_occupancy((5, 5), dopant_fraction=np.nan)


@pytest.mark.parametrize("change, message", [
    (lambda occ: occ[:-1], "shape"),
    (lambda occ: occ.astype(float) * np.nan, "NaN"),
    (lambda occ: occ + 2, "0 \\(host\\), 1"),
    (lambda occ: np.full(occ.shape, "x"), "integer"),
])
def test_bad_occupancy_arrays_raise(sto, change, message):
    grid = defects.occupancy_grid(sto, "A")
    occ = np.zeros(grid.shape, dtype=int)
    with pytest.raises(InputError, match=message):
        defects.substitute(sto, change(occ), site="A", dopant="La")


def test_bad_substitution_requests_raise(sto):
    grid = defects.occupancy_grid(sto, "A")
    occ = np.zeros(grid.shape, dtype=int)
    occ[2, 2] = 1
    with pytest.raises(InputError, match="no dopant element"):
        defects.substitute(sto, occ, site="A")
    with pytest.raises(InputError, match="host element"):
        defects.substitute(sto, occ, site="A", dopant="Sr")
    with pytest.raises(InputError, match="unknown element"):
        defects.substitute(sto, occ, site="A", dopant="Qq")
    with pytest.raises(InputError, match="no sublattice named"):
        defects.substitute(sto, occ, site="Z", dopant="La")
    with pytest.raises(InputError, match="grain 3"):
        defects.substitute(sto, occ, site="A", dopant="La", grain=3)
    with pytest.raises(InputError, match="atoms_per_column"):
        defects.substitute(sto, occ, site="A", dopant="La", atoms_per_column=0)
    once = defects.substitute(sto, occ, site="A", dopant="La")
    with pytest.raises(InputError, match="already"):
        defects.substitute(once, occ, site="A", dopant="Ba")


# --- polar displacements --------------------------------------------------------------------
def test_uniform_polar_displacement(sto):
    out = defects.polar_displacement(sto, site="B", displacement_pm=(8.0, -5.0))
    b = out.site == "B"
    assert np.allclose(out.dx_pm[b], 8.0) and np.allclose(out.dy_pm[b], -5.0)
    assert np.allclose((out.x_nm - out.x0_nm)[b], 0.008) and np.allclose((out.y_nm - out.y0_nm)[b], -0.005)
    assert np.all(out.x_nm[~b] == sto.x_nm[~b])
    assert np.all(sto.dx_pm == 0)


def test_polar_domains_and_fields(sto):
    stripes = regions.Stripes(width_nm=1.5, normal_deg=0.0)
    out = defects.polar_displacement(sto, site="B", displacement_pm=[(10.0, 0.0), (-10.0, 0.0)], domains=stripes)
    b = out.site == "B"
    label = stripes.label(out.x0_nm[b], out.y0_nm[b])
    assert np.allclose(out.dx_pm[b], np.where(label == 0, 10.0, -10.0))
    px, py = out.polarisation_at(np.array([0.2, 1.7]), np.array([0.0, 0.0]))
    assert np.allclose(px, [10.0, -10.0]) and np.allclose(py, 0)

    def gradient(x, y):
        return 2.0 * x, -1.0 * y

    out = defects.polar_displacement(sto, site="B", displacement_pm=gradient)
    b = out.site == "B"
    assert np.allclose(out.dx_pm[b], 2.0 * out.x0_nm[b]) and np.allclose(out.dy_pm[b], -out.y0_nm[b])


@pytest.mark.parametrize("kwargs, message", [
    ({"displacement_pm": (np.nan, 0.0)}, "NaN"),
    ({"displacement_pm": (1.0, 2.0, 3.0)}, "2 numbers"),
    ({"displacement_pm": (80.0, 0.0)}, "quarter"),  # 80 pm is not a small polar shift here
    ({"displacement_pm": [(1.0, 0.0)], "domains": regions.Stripes(1.0)}, "one \\(dx, dy\\) per domain"),
    ({"displacement_pm": lambda x, y: (np.zeros(3), np.zeros(3))}, "shaped like"),
    ({"displacement_pm": (1.0, 0.0), "site": "Q"}, "no sublattice"),
])
def test_bad_polar_requests_raise(sto, kwargs, message):
    with pytest.raises(InputError, match=message):
        defects.polar_displacement(sto, **{"site": "B", **kwargs})


def test_prune_removes_the_higher_grain_of_close_pairs():
    cell = crystal.perovskite_cell(A_NM, thickness_cells=5)
    s = crystal.grains(cell, seeds_nm=[(1.5, 3.0), (4.5, 3.0)], rotations_deg=[0.0, 13.0], fov_nm=6.0,
                       min_separation_nm=0.15)
    d, _ = cKDTree(np.column_stack([s.x_nm, s.y_nm])).query(np.column_stack([s.x_nm, s.y_nm]), k=2)
    assert d[:, 1].min() >= 0.15
    step = [h for h in s.history if h["step"] == "prune_close_columns"][0]
    assert step["removed"] > 0
    raw = crystal.grains(cell, seeds_nm=[(1.5, 3.0), (4.5, 3.0)], rotations_deg=[0.0, 13.0], fov_nm=6.0,
                         min_separation_nm=1e-6)
    assert len(raw) - len(s) == step["removed"]
    assert np.sum(s.grain == 0) == np.sum(raw.grain == 0)  # only grain 1 lost columns
