"""GroundTruth and Simulation records: independent defaults and the signal order callers rely on."""

import numpy as np
import xarray as xr

from atomine.data import GroundTruth, Simulation, image


def test_defaults_are_not_shared_between_records():
    a, b = GroundTruth("a"), GroundTruth("b")
    a.parameters["x"] = 1
    a.tables["t"] = None
    assert b.parameters == {} and b.tables == {}
    assert isinstance(b.maps, xr.Dataset) and not b.maps.data_vars


def test_signals_lists_the_main_signal_first_then_simultaneous_ones():
    main = image(np.ones((2, 2)), 0.1, signal="HAADF")
    adf = image(np.zeros((2, 2)), 0.1, signal="ADF")
    bf = image(np.zeros((2, 2)), 0.1, signal="BF")
    sim = Simulation(main, GroundTruth("stem"), {"ADF": adf, "BF": bf})
    assert [s.name for s in sim.signals()] == ["HAADF", "ADF", "BF"]
    assert Simulation(main, GroundTruth("stem")).signals()[0] is main
