"""Bad input to atomine.simulate.stm raises InputError; inputs are never modified; presets are registered."""

import numpy as np
import pytest

import atomine.simulate as simulate
from atomine.errors import InputError
from atomine.simulate import stm
from atomine.simulate.stm import simulate_stm

OCC = np.zeros((30, 30), dtype=np.int8)
OCC[::3, ::2] = 1
OCC[5, 5] = -1


@pytest.mark.parametrize("occupancy", [
    np.where(OCC == 1, 2, OCC),                  # value outside {-1, 0, 1}
    OCC + 0.5,                                   # non-integer
    np.where(OCC == 1, np.nan, OCC),             # NaN
    OCC[None],                                   # 3-D
    OCC[0],                                      # 1-D
    np.zeros((0, 30)),                           # empty
    np.array([["a", "b"], ["c", "d"]]),          # non-numeric
    OCC.astype(complex),                         # complex
])
def test_bad_occupancy(occupancy):
    with pytest.raises(InputError):
        simulate_stm(occupancy)


@pytest.mark.parametrize("kwargs", [
    {"pixel_size_nm": 0.0},
    {"pixel_size_nm": -0.03},
    {"pixel_size_nm": float("nan")},
    {"pixel_size_nm": 0.3},                      # cannot resolve a = 0.388 nm
    {"lattice_nm": 0.0},
    {"lattice_nm": float("inf")},
    {"snr": -1.0},
    {"snr": 0.0},
    {"snr": float("nan")},
    {"snr": "high"},
    {"tip_sigma_nm": -0.01},
    {"atom_sigma_nm": 0.0},
    {"dopant_sigma_nm": float("nan")},
    {"o1_height_nm": float("nan")},
    {"dopant_height_nm": 5.0},                   # 5 nm apparent height: absurd
    {"mn_height_nm": float("inf")},
    {"rotation_deg": float("nan")},
    {"noise_mix": (1.0, 0.0)},
    {"noise_mix": (0.0, 0.0, 0.0)},
    {"noise_mix": (1.0, -0.5, 0.5)},
    {"noise_mix": ("a", "b", "c")},
    {"pink_exponent": -1.0},
    {"drift_nm": (float("nan"), 0.0)},
    {"drift_nm": 0.1},
    {"creep_nm": (0.1,)},
    {"creep_tau": 0.0},
    {"bias_v": 0.0},
    {"setpoint_a": -1e-10},
    {"seed": -1},
    {"seed": 0.5},
    {"shape": (8, 8)},                           # below the 16-px minimum
    {"shape": (100.5, 100)},
    {"shape": (400, 400)},                       # larger than the 30 x 30 occupancy covers
    {"drift_nm": (20.0, 0.0)},                   # drift carries the view off the lattice
])
def test_bad_parameters(kwargs):
    with pytest.raises(InputError):
        simulate_stm(OCC, **kwargs)


def test_too_small_occupancy_for_default_shape():
    with pytest.raises(InputError, match="too small"):
        simulate_stm(np.array([[1, 0], [0, 1]]))


def test_flat_surface_has_no_snr():
    with pytest.raises(InputError, match="flat"):
        simulate_stm(np.zeros((30, 30), dtype=np.int8), o1_height_nm=0.0, o2_height_nm=0.0)


def test_error_messages_are_one_line_and_actionable():
    with pytest.raises(InputError) as info:
        simulate_stm(OCC, shape=(400, 400))
    message = str(info.value)
    assert "\n" not in message and "occupancy" in message and "shape=None" in message


def test_inputs_not_modified():
    occ = OCC.copy()
    mix = [0.5, 0.3, 0.2]
    simulate_stm(occ, shape=(64, 64), noise_mix=mix)
    np.testing.assert_array_equal(occ, OCC)
    assert mix == [0.5, 0.3, 0.2]


def test_default_shape_is_the_largest_covered_square():
    sim = simulate_stm(OCC, snr=np.inf)
    ny, nx = sim.data.shape
    assert ny == nx >= 16
    # One more pixel per side no longer fits.
    with pytest.raises(InputError):
        simulate_stm(OCC, snr=np.inf, shape=(ny + 2, nx + 2))


def test_presets_registered_and_valid():
    table = simulate.presets()
    for name in ("stm-lcmo", "stm-lcmo-segregated"):
        assert name in table and table[name][0]
        assert name in stm.PRESETS
    sim = simulate.make("stm-lcmo", seed=1)
    assert 256 <= sim.data.shape[0] <= 384 and sim.truth.kind == "stm"
    assert float(sim.data.coords["x"][1] - sim.data.coords["x"][0]) == pytest.approx(0.03)
    assert sim.truth.parameters["dopant_fraction"] == pytest.approx(3 / 8)
