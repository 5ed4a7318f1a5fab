"""Dislocation cores (GPA phase singularities) and grain boundaries (rotation jumps) as coordinate tables."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from lattice_images import A_NM, basis, fringes
from scipy import ndimage

from atomine.errors import InputError
from atomine.fourier.dislocations import COLUMNS, defect_table, find_dislocations, find_grain_boundaries
from atomine.fourier.gpa import gpa
from atomine.fourier.lattice import find_lattice_peaks, local_lattice, power_spectrum
from atomine.fourier.sliding import sliding_fft
from atomine.simulate.defects import EdgeDislocation
from atomine.simulate.stem_presets import haadf_dislocation, haadf_grains

NOMINAL_G = [[1 / A_NM, 0.0], [0.0, 1 / A_NM]]


def _match(found: pd.DataFrame, truth: pd.DataFrame):
    """For every true core: distance (nm) to the nearest found core, and that core's row."""
    out = []
    for _, t in truth.iterrows():
        d = np.hypot(found.x - t.x_nm, found.y - t.y_nm)
        out.append((float(d.min()), found.iloc[int(np.argmin(d.values))]))
    return out


def test_cores_and_burgers_vectors_of_exact_volterra_fields():
    px, n = 0.02, 320
    cores = [EdgeDislocation(2.2, 2.6, (A_NM, 0.0)), EdgeDislocation(4.3, 3.7, (0.0, -A_NM))]
    y, x = np.mgrid[0:n, 0:n] * px
    ux = sum(d.displacement(x, y)[0] for d in cores)
    uy = sum(d.displacement(x, y)[1] for d in cores)
    img = fringes((n, n), basis()[1], ux=ux, uy=uy)
    table = find_dislocations(gpa(img, NOMINAL_G))
    truth = pd.DataFrame([{"x_nm": d.x_nm, "y_nm": d.y_nm, "bx_nm": d.burgers_nm[0], "by_nm": d.burgers_nm[1]}
                          for d in cores])
    assert len(table) == 2 and (table.kind == "dislocation").all()
    for (dist, row), (_, t) in zip(_match(table, truth), truth.iterrows()):
        assert dist < 0.25 * A_NM
        # with the exact lattice the Burgers vector is an exact lattice vector, sign included
        assert np.allclose([row.bx, row.by], [t.bx_nm, t.by_nm], atol=1e-6)
        assert np.isclose(row.b_nm, A_NM)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_simulated_core_found_with_its_burgers_vector_and_no_false_ones(seed):
    sim = haadf_dislocation(seed)
    peaks = find_lattice_peaks(power_spectrum(sim.data))
    table = find_dislocations(gpa(sim.data, peaks))
    truth = sim.truth.tables["dislocations"]
    assert len(table) == len(truth)  # no false cores at the preset dose
    for (dist, row), (_, t) in zip(_match(table, truth), truth.iterrows()):
        assert dist <= 2 * A_NM
        # peaks measured on the distorted image are off by ~1 %, so b is a lattice vector to a few %
        assert np.hypot(row.bx - t.bx_nm, row.by - t.by_nm) < 0.15 * A_NM


def test_a_perfect_noisy_lattice_has_no_dislocations():
    img = fringes((256, 256), basis(rotation_deg=5.0)[1], noise=1.0, seed=2)
    table = find_dislocations(gpa(img, find_lattice_peaks(power_spectrum(img))))
    assert len(table) == 0
    assert list(table.columns) == list(COLUMNS)


def test_no_cores_where_the_lattice_of_g_is_absent():
    # GPA of a tricrystal with one grain's reflections: the other grains' phases are noise,
    # full of vortices, and the boundaries end the lattice; none of that is a dislocation
    sim = haadf_grains(0)
    ds = gpa(sim.data, find_lattice_peaks(power_spectrum(sim.data)))
    assert len(find_dislocations(ds)) == 0
    assert len(find_dislocations(ds, min_amplitude=0.0)) > 0  # the filter is what removes them


def test_grain_boundaries_follow_the_true_boundaries():
    sim = haadf_grains(0)
    window, step, px = 64, 16, 0.025
    ds = local_lattice(sliding_fft(sim.data, window, step), find_lattice_peaks(power_spectrum(sim.data)),
                       reference_vectors=[[A_NM, 0.0], [0.0, A_NM]])
    table = find_grain_boundaries(ds.rotation, threshold_deg=5.0)
    assert (table.kind == "grain_boundary").all() and table.b_nm.isna().all()
    boundary = sim.truth.maps.boundary.values
    dist_px = ndimage.distance_transform_edt(~boundary)
    iy = np.clip(np.rint(table.y.values / px).astype(int), 0, boundary.shape[0] - 1)
    ix = np.clip(np.rint(table.x.values / px).astype(int), 0, boundary.shape[1] - 1)
    # a window straddling the boundary may take either side's lattice: within half a window
    assert np.max(dist_px[iy, ix]) <= window / 2 + step
    # and the boundaries are covered: true boundary pixels inside the window grid have a point nearby
    near = np.zeros_like(boundary)
    near[iy, ix] = True
    reach = ndimage.distance_transform_edt(~near) <= window / 2 + step
    lo, hi = window // 2 + step, boundary.shape[0] - window // 2 - step
    inner = np.zeros_like(boundary)
    inner[lo:hi, lo:hi] = boundary[lo:hi, lo:hi]
    assert reach[inner].mean() > 0.9


def test_defect_table_stacks_and_round_trips(tmp_path):
    dis = pd.DataFrame({"kind": ["dislocation"], "x": [1.0], "y": [2.0], "bx": [0.39], "by": [0.0], "b_nm": [0.39]})
    rot = xr.DataArray(np.array([[0.0, 0.0, 10.0], [0.0, 0.0, 10.0]]), dims=("wy", "wx"),
                       coords={"wy": [0.5, 1.0], "wx": [0.5, 1.0, 1.5]})
    gb = find_grain_boundaries(rot)
    assert np.allclose(gb.x, 1.25) and np.allclose(gb.y, [0.5, 1.0])
    table = defect_table(dis, gb)
    assert list(table.kind) == ["dislocation", "grain_boundary", "grain_boundary"]
    path = tmp_path / "defects.parquet"
    table.to_parquet(path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), table)
    assert len(defect_table()) == 0
    # a square lattice at +44 and -44 degrees is 2 degrees apart, not 88
    wrapped = rot.copy(data=np.array([[44.0, 44.0, -44.0], [44.0, 44.0, -44.0]]))
    assert len(find_grain_boundaries(wrapped, threshold_deg=5.0)) == 2
    assert len(find_grain_boundaries(wrapped, threshold_deg=5.0, period_deg=90.0)) == 0


def test_bad_input():
    with pytest.raises(InputError, match="gpa"):
        find_dislocations(xr.Dataset())
    img = fringes((128, 128), basis()[1])
    ds = gpa(img, NOMINAL_G)
    with pytest.raises(InputError, match="loop_radius_nm"):
        find_dislocations(ds, loop_radius_nm=0.001)
    with pytest.raises(InputError, match="NaN"):
        find_dislocations(ds.assign(phase1=ds.phase1 * np.nan))
    with pytest.raises(InputError, match="2-D"):
        find_grain_boundaries(xr.DataArray(np.zeros(5)))
    with pytest.raises(InputError, match="threshold_deg"):
        find_grain_boundaries(xr.DataArray(np.zeros((3, 3)), dims=("wy", "wx")), threshold_deg=0)
    with pytest.raises(InputError, match="columns"):
        defect_table(pd.DataFrame({"a": [1]}))
