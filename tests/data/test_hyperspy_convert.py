"""atomine <-> HyperSpy conversion: calibration, units, signal type and metadata survive the round trip."""

import sys
import warnings

import dask.array as dsa
import numpy as np
import pytest

from atomine.data import (UncalibratedWarning, cits_grid, from_hyperspy, image, signal_kind, spectrum, spectrum_image,
                          to_hyperspy)
from atomine.errors import InputError, MissingDependencyError

hs = pytest.importorskip("hyperspy.api")

RNG = np.random.default_rng(7)


def assert_same_coords(a, b):
    assert a.dims == b.dims
    for d in a.dims:
        np.testing.assert_allclose(b[d].values, a[d].values, rtol=1e-12, atol=1e-12)
        assert b[d].attrs["units"] == a[d].attrs["units"]


def test_image_roundtrip_and_hyperspy_axes():
    md = {"title": "lattice", "beam_energy_kv": 300.0, "convergence_angle_mrad": 21.4, "probe_current_pa": 35.0,
          "dwell_time_s": 2e-6, "acquisition_date": "2021-05-06T07:08:09", "material": "SrTiO3", "detector": "HAADF"}
    da = image(RNG.random((20, 30)).astype(np.float32), (0.05, 0.04), origin=(1.0, 2.0), signal="HAADF", metadata=md)
    s = to_hyperspy(da)
    assert isinstance(s, hs.signals.Signal2D)
    x, y = s.axes_manager.signal_axes
    assert (x.name, x.size, x.units) == ("x", 30, "nm") and x.scale == pytest.approx(0.04) and x.offset == pytest.approx(2.0)
    assert (y.name, y.size) == ("y", 20) and y.scale == pytest.approx(0.05) and y.offset == pytest.approx(1.0)
    tem = s.metadata.Acquisition_instrument.TEM
    assert tem.beam_energy == 300.0 and tem.convergence_angle == pytest.approx(21.4)
    assert tem.beam_current == pytest.approx(0.035)  # HyperSpy keeps nA
    assert s.metadata.General.title == "lattice" and s.metadata.General.date == "2021-05-06"
    back = from_hyperspy(s)
    assert_same_coords(da, back)
    np.testing.assert_array_equal(back.values, da.values)
    assert back.attrs["signal"] == "HAADF" and back.name == da.name
    for key, value in md.items():
        assert back.attrs["metadata"][key] == value
    assert back.attrs["provenance"][-1]["name"] == "from_hyperspy"


def test_spectrum_image_roundtrip_sets_eels_type():
    da = spectrum_image(RNG.poisson(40, (4, 5, 64)).astype(np.float32), (0.2, 0.25), energy_scale=0.5,
                        energy_offset=400.0, signal="EELS", metadata={"collection_angle_mrad": 30.0, "beam_energy_kv": 200.0})
    s = to_hyperspy(da)
    assert s.axes_manager.signal_dimension == 1 and s.axes_manager.navigation_dimension == 2
    assert s.metadata.Signal.signal_type == "EELS"
    e = s.axes_manager.signal_axes[0]
    assert e.units == "eV" and e.scale == pytest.approx(0.5) and e.offset == pytest.approx(400.0)
    assert s.metadata.Acquisition_instrument.TEM.Detector.EELS.collection_angle == 30.0
    back = from_hyperspy(s)
    assert back.dims == ("y", "x", "energy") and back.attrs["signal"] == "EELS"
    assert_same_coords(da, back)
    np.testing.assert_array_equal(back.values, da.values)


def test_cits_grid_roundtrip():
    bias = np.linspace(-0.5, 0.5, 41)
    da = cits_grid(RNG.normal(size=(6, 7, 41)), 0.3, bias=bias, value_units="A")
    s = to_hyperspy(da)
    assert s.axes_manager.signal_axes[0].units == "V"
    back = from_hyperspy(s)
    assert back.dims == ("y", "x", "bias") and back.attrs["signal"] == "CITS" and back.attrs["units"] == "A"
    assert_same_coords(da, back)


def test_non_uniform_energy_axis_roundtrip():
    energy = np.array([1.0, 1.5, 2.5, 4.0, 6.0, 9.0])
    da = spectrum(RNG.random(6), energy=energy, signal="EDS")
    s = to_hyperspy(da)
    assert not s.axes_manager.signal_axes[0].is_uniform
    assert s.metadata.Signal.signal_type == "EDS_TEM"
    back = from_hyperspy(s)
    np.testing.assert_allclose(back.energy.values, energy)
    assert back.attrs["signal"] == "EDS"


def test_lazy_roundtrip_stays_dask():
    data = dsa.from_array(RNG.random((8, 9, 16)), chunks=(4, 9, 16))
    da = spectrum_image(data, 0.1, energy_scale=1.0, energy_offset=0.0)
    s = to_hyperspy(da)
    assert s._lazy
    back = from_hyperspy(s)
    assert isinstance(back.data, dsa.Array)
    np.testing.assert_array_equal(back.data.compute(), data.compute())


def test_plain_hyperspy_signal_in_micrometres_and_kev():
    s = hs.signals.Signal1D(RNG.random((3, 4, 50)))
    for axis, (name, scale, offset, units) in zip(s.axes_manager._axes, [("y", 0.001, 0.0, "µm"), ("x", 0.002, 0.01, "µm"),
                                                                          ("Energy", 0.01, 0.1, "keV")]):
        axis.name, axis.scale, axis.offset, axis.units = name, scale, offset, units
    s.metadata.set_item("Signal.signal_type", "EDS_TEM")
    s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    da = from_hyperspy(s)
    assert da.dims == ("y", "x", "energy") and da.attrs["signal"] == "EDS"
    assert da.x.attrs["units"] == "nm" and float(da.x[1] - da.x[0]) == pytest.approx(2.0)
    assert float(da.x[0]) == pytest.approx(10.0)
    assert float(da.energy[1] - da.energy[0]) == pytest.approx(10.0) and float(da.energy[0]) == pytest.approx(100.0)
    assert da.attrs["metadata"]["beam_energy_kv"] == 200.0


def test_uncalibrated_hyperspy_spectrum_image_counts_channels_and_warns():
    s = hs.signals.Signal1D(RNG.random((3, 4, 10)))
    with pytest.warns(UncalibratedWarning, match="channels"):
        da = from_hyperspy(s)
    # atomine's convention for uncalibrated spectra (as for .npy files): energy dim counted in channels
    assert da.dims == ("y", "x", "energy") and signal_kind(da) == "spectrum_image"
    assert da.x.attrs["units"] == "px" and da.energy.attrs["units"] == "channel"
    np.testing.assert_array_equal(da.energy.values, np.arange(10))
    with pytest.warns(UncalibratedWarning):
        back = from_hyperspy(to_hyperspy(da))
    assert_same_coords(da, back)


def test_hyperspy_dm4_load_matches_atomine_load(hyperspy_io):
    from atomine.io import load

    path = hyperspy_io / "dm4_3D_data" / "EELS_SI.dm4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        via_hyperspy = from_hyperspy(hs.load(path))
    direct = load(path, kind="spectral")
    assert_same_coords(direct, via_hyperspy)
    np.testing.assert_array_equal(via_hyperspy.values, direct.values)
    assert via_hyperspy.attrs["signal"] == "EELS"
    assert via_hyperspy.attrs["metadata"]["collection_angle_mrad"] == direct.attrs["metadata"]["collection_angle_mrad"]


@pytest.mark.parametrize("bad", [np.zeros((3, 3)), [1, 2, 3], None])
def test_to_hyperspy_rejects_non_dataarrays(bad):
    with pytest.raises(InputError, match="DataArray"):
        to_hyperspy(bad)


def test_to_hyperspy_rejects_empty_and_text():
    import xarray as xr

    with pytest.raises(InputError, match="empty"):
        to_hyperspy(xr.DataArray(np.zeros((0, 3)), dims=("y", "x")))
    with pytest.raises(InputError, match="numeric"):
        to_hyperspy(xr.DataArray(np.array(["a", "b"]), dims=("x",)))


@pytest.mark.parametrize("bad", [np.zeros(3), "signal.hspy", 3.0])
def test_from_hyperspy_rejects_non_signals(bad):
    with pytest.raises(InputError, match="HyperSpy signal"):
        from_hyperspy(bad)


def test_missing_hyperspy_is_a_clear_error(monkeypatch):
    da = image(np.ones((4, 4)), 0.1)
    monkeypatch.setitem(sys.modules, "hyperspy", None)
    monkeypatch.setitem(sys.modules, "hyperspy.api", None)
    with pytest.raises(MissingDependencyError, match="pip install hyperspy"):
        to_hyperspy(da)


def test_to_hyperspy_does_not_change_the_dataarray():
    da = image(RNG.random((5, 6)), 0.1, metadata={"title": "t"})
    before = (da.values.copy(), dict(da.attrs), {d: da[d].values.copy() for d in da.dims})
    to_hyperspy(da)
    np.testing.assert_array_equal(da.values, before[0])
    assert da.attrs == before[1]
    for d in da.dims:
        np.testing.assert_array_equal(da[d].values, before[2][d])
