"""Tables: calibration per axis, metadata, parameters, statistics, units in headers."""

import json

import dask.array as dsa
import numpy as np
import pandas as pd
import pytest

from atomine.data import cits_grid, image, spectrum_image
from atomine.errors import InputError
from atomine.report import (
    calibration_table,
    column_units,
    dataframe_html,
    metadata_table,
    parameters_table,
    value_statistics,
)


def test_calibration_table_gives_offset_scale_units_per_axis():
    si = spectrum_image(np.ones((4, 6, 10), dtype=np.float32), (0.02, 0.025), origin=(1.0, -0.5),
                        energy_scale=0.25, energy_offset=280.0)
    cal = calibration_table(si).set_index("dim")
    assert list(cal.index) == ["y", "x", "energy"]
    assert cal.loc["y", ["offset", "scale", "units"]].tolist() == [pytest.approx(1.0), pytest.approx(0.02), "nm"]
    assert cal.loc["x", ["offset", "scale", "units"]].tolist() == [pytest.approx(-0.5), pytest.approx(0.025), "nm"]
    assert cal.loc["energy", ["size", "offset", "scale", "units"]].tolist() == [10, 280.0, pytest.approx(0.25), "eV"]
    assert cal.loc["energy", "long_name"] == "energy loss"
    assert cal["uniform"].all()


def test_calibration_table_flags_a_non_uniform_axis():
    bias = np.array([-1.0, -0.5, 0.0, 0.1, 0.2, 1.0])
    grid = cits_grid(np.ones((3, 3, 6)), 0.5, bias=bias)
    cal = calibration_table(grid).set_index("dim")
    assert not cal.loc["bias", "uniform"]
    assert cal.loc["bias", "scale"] == pytest.approx(2.0 / 5)  # mean step
    assert cal.loc["bias", "units"] == "V"


def test_metadata_table_lists_normalised_metadata():
    da = image(np.ones((4, 4)), 0.1, metadata={"beam_energy_kv": 200, "elements": "Sr, Ti", "vendor_key": 1},
               value_units="counts")
    rows = dict(metadata_table(da).itertuples(index=False))
    assert rows["beam_energy_kv"] == "200"
    assert rows["elements"] == "Sr, Ti"
    assert rows["value units"] == "counts" and rows["kind"] == "image" and rows["shape"] == "4 x 4"
    assert "vendor_key" not in rows and "extra" not in rows
    da.attrs["metadata"] = json.dumps({"instrument": "Titan"})  # a store may hand it back as JSON text
    assert dict(metadata_table(da).itertuples(index=False))["instrument"] == "Titan"


def test_parameters_table_flattens_nested_parameters():
    t = parameters_table({"lattice": {"a_nm": 0.39, "kind": "perovskite"}, "noise": 0.1})
    assert t.to_dict("records") == [{"parameter": "lattice.a_nm", "value": "0.39"},
                                    {"parameter": "lattice.kind", "value": "perovskite"},
                                    {"parameter": "noise", "value": "0.1"}]
    with pytest.raises(InputError):
        parameters_table([1, 2])


def test_value_statistics_match_numpy_for_eager_and_lazy_data():
    rng = np.random.default_rng(5)
    v = rng.normal(3.0, 2.0, (64, 48)).astype(np.float32)
    want = {"min": v.min(), "max": v.max(), "mean": v.astype(np.float64).mean(), "std": v.astype(np.float64).std()}
    eager = value_statistics(image(v, 0.1))
    lazy = value_statistics(image(dsa.from_array(v, chunks=16), 0.1))
    for k, w in want.items():
        assert eager[k] == pytest.approx(float(w), rel=1e-6)
        assert lazy[k] == pytest.approx(float(w), rel=1e-6)


def test_column_units_follow_the_conventions_and_suffixes():
    df = pd.DataFrame(columns=["x", "y", "x_px", "pos_err", "theta", "onset_ev", "bias_v", "cls", "shift_pm"])
    assert column_units(df) == {"x": "nm", "y": "nm", "x_px": "px", "pos_err": "nm", "theta": "rad",
                                "onset_ev": "eV", "bias_v": "V", "shift_pm": "pm"}


def test_dataframe_html_puts_units_in_headers_and_escapes():
    df = pd.DataFrame({"x": [0.123456789], "name": ["<b>"]})
    out = dataframe_html(df, units={"x": "nm"})
    assert "<th>x (nm)</th>" in out and "0.12346" in out and "&lt;b&gt;" in out and "<b>" not in out
    with pytest.raises(InputError):
        dataframe_html([1, 2])
    with pytest.raises(InputError, match="max_rows"):
        dataframe_html(df, max_rows=0)
