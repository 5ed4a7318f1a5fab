"""Small local simulated datasets with exact ground truth, for exercising the workflows quickly.

They are built here from the ``atomine.data`` constructors so the workflow tests do not
depend on the (slower) built-in simulators; the built-in ones are exercised separately.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from atomine.data import GroundTruth, Simulation, cits_grid, image, spectrum_image

PIXEL_NM = 0.02
LATTICE_NM = 0.4


def make_lattice_image(seed: int) -> Simulation:
    """Gaussian atom columns on two interpenetrating square sublattices, one dopant, Poisson noise."""
    rng = np.random.default_rng(seed)
    n, ny, nx = 5, 100, 110
    j, i = np.meshgrid(np.arange(n + 1), np.arange(n))
    x = 0.2 + LATTICE_NM * j.ravel()
    y = 0.2 + LATTICE_NM * i.ravel()
    sub = ((i + j) % 2).ravel()
    cls = np.array(["host"] * x.size, dtype=object)
    cls[7] = "dopant"
    amp = np.where(sub == 0, 100.0, 40.0) * np.where(cls == "dopant", 1.5, 1.0)
    yy, xx = np.mgrid[0:ny, 0:nx] * PIXEL_NM
    sigma = 0.05
    clean = 5.0 + (amp[:, None, None] * np.exp(-((xx - x[:, None, None]) ** 2 + (yy - y[:, None, None]) ** 2)
                                                / (2 * sigma**2))).sum(0)
    data = rng.poisson(clean).astype(np.float32)
    atoms = pd.DataFrame({"x": x, "y": y, "Z": np.where(sub == 0, 38, 22), "sublattice": sub,
                          "site_i": i.ravel(), "site_j": j.ravel(), "cls": cls.astype(str)})
    maps = xr.Dataset({"clean": (("y", "x"), clean.astype(np.float32))})
    truth = GroundTruth("stem", {"lattice_nm": LATTICE_NM, "sigma_nm": sigma, "pixel_nm": PIXEL_NM, "seed": seed},
                        {"atoms": atoms}, maps)
    da = image(data, PIXEL_NM, signal="HAADF", name="HAADF", metadata={"beam_energy_kv": 300.0, "material": "test"})
    return Simulation(da, truth)


def make_two_component_si(seed: int) -> Simulation:
    """Linear mixture of two edge-like spectra with known abundance maps, plus a simultaneous ADF image."""
    rng = np.random.default_rng(seed)
    ny, nx = 16, 20
    e = 400.0 + 0.5 * np.arange(120)
    comp = np.stack([np.exp(-0.5 * ((e - 430.0) / 3.0) ** 2), np.exp(-0.5 * ((e - 440.0) / 3.0) ** 2)])
    frac = np.broadcast_to(np.linspace(0.0, 1.0, nx), (ny, nx))
    ab = np.stack([1.0 - frac, frac])
    clean = 200.0 * np.einsum("kyx,ke->yxe", ab, comp) + 10.0
    data = rng.poisson(clean).astype(np.float32)
    maps = xr.Dataset({"abundance": (("component", "y", "x"), ab.astype(np.float32))},
                      coords={"component": ["A", "B"]})
    truth = GroundTruth("eels", {"edges_ev": [430.0, 440.0], "seed": seed}, {}, maps)
    si = spectrum_image(data, 0.1, energy=e, signal="EELS", name="EELS")
    adf = image((clean.sum(-1) / 100.0).astype(np.float32), 0.1, signal="ADF", name="ADF")
    return Simulation(si, truth, {"ADF": adf})


def make_two_phase_cits(seed: int) -> Simulation:
    """I(V) curves of a metal-like and a gapped phase, separated at the middle column."""
    rng = np.random.default_rng(seed)
    v = np.linspace(-1.0, 1.0, 41)
    phase = np.zeros((12, 12), dtype=np.int8)
    phase[:, 6:] = 1
    metal = 1e-10 * v
    gapped = 1e-10 * np.sign(v) * np.clip(np.abs(v) - 0.3, 0, None)
    clean = np.where(phase[..., None] == 0, metal, gapped)
    data = clean + rng.normal(0.0, 1e-13, clean.shape)
    truth = GroundTruth("cits", {"gap_v": 0.3, "seed": seed}, {}, xr.Dataset({"phase": (("y", "x"), phase)}))
    return Simulation(cits_grid(data, 0.5, bias=v, value_units="A", name="CITS"), truth)


LOCAL_PRESETS = {
    "lattice": ("two-sublattice column image with one dopant (test)", make_lattice_image),
    "mixture": ("two-component EELS mixture with simultaneous ADF (test)", make_two_component_si),
    "phases": ("two-phase CITS grid (test)", make_two_phase_cits),
}


@pytest.fixture(scope="session")
def local_presets():
    return LOCAL_PRESETS
