"""Unit factors to nm, eV, V and 1/nm: physical values, spellings of micro, and clear errors."""

import pytest

from atomine.data import (bias_factor_to_v, energy_factor_to_ev, is_length_unit, length_factor_to_nm,
                          reciprocal_factor_to_per_nm)
from atomine.data.units import check_scale
from atomine.errors import AtomineError, CalibrationError


@pytest.mark.parametrize("unit, factor", [("m", 1e9), ("mm", 1e6), ("um", 1e3), ("µm", 1e3), ("μm", 1e3),
                                          ("micron", 1e3), (" nm ", 1.0), ("Å", 0.1), ("A", 0.1), ("pm", 1e-3)])
def test_length_factors(unit, factor):
    assert length_factor_to_nm(unit) == factor and is_length_unit(unit)


def test_other_factors():
    assert energy_factor_to_ev("keV") == 1e3 and energy_factor_to_ev("meV") == 1e-3 and energy_factor_to_ev("eV") == 1
    assert bias_factor_to_v("mV") == 1e-3 and bias_factor_to_v("µV") == 1e-6
    assert reciprocal_factor_to_per_nm("1/Å") == 10.0 and reciprocal_factor_to_per_nm("1/m") == 1e-9
    assert reciprocal_factor_to_per_nm("nm") is None  # a length is not a reciprocal length
    assert not is_length_unit("px") and not is_length_unit(None) and not is_length_unit("eV")


@pytest.mark.parametrize("fn, unit", [(length_factor_to_nm, "furlong"), (length_factor_to_nm, None),
                                      (length_factor_to_nm, "px"), (energy_factor_to_ev, "J"),
                                      (energy_factor_to_ev, ""), (bias_factor_to_v, "A")])
def test_unknown_units_are_calibration_errors(fn, unit):
    with pytest.raises(CalibrationError, match="unknown"):
        fn(unit)


def test_micro_volt_in_both_spellings():
    assert bias_factor_to_v("μV") == 1e-6


def test_non_string_units_are_calibration_errors():
    with pytest.raises(CalibrationError):
        length_factor_to_nm(5)


def test_check_scale():
    assert check_scale(0.5, "x") == 0.5 and check_scale(-2, "x") == -2.0
    for bad in (0, 0.0, float("nan"), float("inf"), -float("inf")):
        with pytest.raises(CalibrationError, match="x calibration step"):
            check_scale(bad, "x")


@pytest.mark.parametrize("bad", ["a", None])
def test_check_scale_rejects_non_numbers_clearly(bad):
    with pytest.raises(AtomineError):
        check_scale(bad, "x")


@pytest.mark.parametrize("fn, unit, factor", [(length_factor_to_nm, "μm", 1e3), (length_factor_to_nm, "µm", 1e3),
                                              (bias_factor_to_v, "μV", 1e-6), (bias_factor_to_v, "uV", 1e-6),
                                              (length_factor_to_nm, "\u212b", 0.1),  # the Angstrom sign
                                              (length_factor_to_nm, b"nm", 1.0)])  # bytes from a file header
def test_every_spelling_of_micro_and_angstrom(fn, unit, factor):
    assert fn(unit) == factor


def test_unknown_length_unit_message_names_the_known_ones():
    with pytest.raises(CalibrationError, match=r"'furlong'.*nm.*pm"):
        length_factor_to_nm("furlong")
    assert not is_length_unit(5) and reciprocal_factor_to_per_nm(None) is None  # non-text: unknown, not a crash
