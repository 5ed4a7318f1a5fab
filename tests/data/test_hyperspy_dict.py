"""signal_dict: the HyperSpy signal dictionary built without HyperSpy; restore_attrs: the way back."""

import sys

import numpy as np
import pytest

from atomine.data import image, signal_dict, spectrum_image, with_step
from atomine.data.hyperspy import STASH_KEY, restore_attrs, stashed_attrs


def _si():
    da = spectrum_image(np.ones((3, 4, 1000), dtype=np.float32), (0.2, 0.1), origin=(5.0, -2.0),
                        energy=1e6 + np.arange(1000) * 1e-3, signal="EELS",
                        metadata={"beam_energy_kv": 300.0, "collection_angle_mrad": 25.0, "vendor_key": 7},
                        original_metadata={"Vendor/Tag": {"a": 1}})
    return with_step(da, "test.make", {"seed": 1})


def test_signal_dict_needs_no_hyperspy(monkeypatch):
    monkeypatch.setitem(sys.modules, "hyperspy", None)
    monkeypatch.setitem(sys.modules, "hyperspy.api", None)
    sig = signal_dict(_si())
    assert [(a["name"], a["navigate"]) for a in sig["axes"]] == [("y", True), ("x", True), ("energy", False)]


def test_signal_dict_axes_scale_spans_the_axis():
    da = _si()
    y, x, e = signal_dict(da)["axes"]
    assert (y["units"], y["scale"], y["offset"], y["size"]) == ("nm", pytest.approx(0.2), 5.0, 3)
    assert (x["units"], x["scale"], x["offset"]) == ("nm", pytest.approx(0.1), -2.0)
    # The energy axis sits at 1e6 eV, where the first step is off by ~5e-8; the span is not.
    first_step = float(da.energy[1] - da.energy[0])
    assert abs(first_step - 1e-3) > 1e-11
    assert e["scale"] == pytest.approx(1e-3, rel=1e-10)
    assert e["offset"] + 999 * e["scale"] == pytest.approx(float(da.energy[-1]), abs=1e-9)


def test_signal_dict_metadata_tree_and_stash():
    da = _si()
    sig = signal_dict(da)
    tem = sig["metadata"]["Acquisition_instrument"]["TEM"]
    assert tem["beam_energy"] == 300.0 and tem["Detector"]["EELS"]["collection_angle"] == 25.0
    assert sig["metadata"]["Signal"]["signal_type"] == "EELS"
    assert sig["original_metadata"]["Vendor-Tag"] == {"a": 1}  # HDF5 group names cannot hold "/"
    stash = sig["original_metadata"][STASH_KEY]
    assert stash["metadata"] == da.attrs["metadata"] and stash["provenance"] == da.attrs["provenance"]
    assert (stash["signal"], stash["units"], stash["name"]) == ("EELS", "counts", "EELS")


def test_restore_attrs_keeps_stash_and_takes_hyperspy_side_edits():
    from atomine.data._hs_dict import to_dataarray

    da = _si()
    sig = signal_dict(da)
    sig["metadata"]["Acquisition_instrument"]["TEM"]["beam_energy"] = 200.0  # edited after the export
    original, stash = stashed_attrs(sig["original_metadata"])
    assert STASH_KEY in sig["original_metadata"] and STASH_KEY not in original  # the input is not modified
    read = to_dataarray({**sig, "original_metadata": original}, lazy=False, provenance=[{"name": "load"}],
                        what="test")
    back = restore_attrs(read, stash, original)
    assert back.attrs["metadata"] == {**da.attrs["metadata"], "beam_energy_kv": 200.0}
    assert back.attrs["provenance"] == da.attrs["provenance"] + [{"name": "load"}]
    assert back.name == "EELS" and back.attrs["signal"] == "EELS"
    assert restore_attrs(read, None) is read


def test_signal_dict_of_an_image_has_two_signal_axes():
    sig = signal_dict(image(np.zeros((2, 3)), 0.5))
    assert [a["navigate"] for a in sig["axes"]] == [False, False]
