"""EDS: the X-ray line table, elemental maps and line identification.

Ground truth: line energies typed from the X-ray Data Booklet (LBNL, Table 1-2, Bearden's
values), not from the table under test; synthetic spectrum images of known elements whose
line counts per pixel are drawn here; and the Velox EDS files of HyperSpy 1.7.6, whose
elements are read off their own spectra (pairs of lines at tabulated energies, see the
comments) and whose maps are checked against the simultaneous HAADF image.
"""

import warnings

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr
from scipy.special import erf

from atomine.data import spectrum_image
from atomine.errors import InputError
from atomine.spectra.eds import elemental_maps, fwhm_ev
from atomine.spectra.eds_identify import identify_lines
from atomine.spectra.xray_lines import ELEMENTS, line_energy, line_table, lines_near, main_line, xray_lines

# (element, line, energy eV) from the X-ray Data Booklet, Table 1-2 (Ka = Ka1, La = La1, Ma = Ma1).
BOOKLET = [("C", "Ka", 277.0), ("O", "Ka", 524.9), ("Al", "Ka", 1486.70), ("Si", "Ka", 1739.98),
           ("Ti", "Ka", 4510.84), ("Cr", "Ka", 5414.72), ("Mn", "Ka", 5898.75), ("Fe", "Ka", 6403.84),
           ("Fe", "Kb", 7057.98), ("Ni", "Ka", 7478.15), ("Cu", "Ka", 8047.78), ("Cu", "Kb", 8905.29),
           ("Cu", "La", 929.7), ("Zn", "Ka", 8638.86), ("Sr", "La", 1806.56), ("Nb", "La", 2165.89),
           ("Mo", "Ka", 17479.34), ("Mo", "La", 2293.16), ("Pd", "La", 2838.61), ("Pd", "Lb1", 2990.22),
           ("Ag", "La", 2984.31), ("Sn", "La", 3443.98), ("Ba", "La", 4466.26), ("La", "La", 4650.97),
           ("La", "Ma", 833.0), ("Ce", "Ma", 883.0), ("Gd", "Ma", 1185.0), ("W", "La", 8397.6),
           ("W", "Ma", 1775.4), ("Pt", "La", 9442.3), ("Au", "La", 9713.3), ("Au", "Lb1", 11442.3),
           ("Au", "Ma", 2122.9), ("Pb", "La", 10551.5), ("Pb", "Ma", 2345.5), ("U", "La", 13614.7),
           ("U", "Ma", 3170.8)]


# ---------------------------------------------------------------- the line table


@pytest.mark.parametrize("element, line, ev", BOOKLET)
def test_line_energies_within_5_ev_of_the_x_ray_data_booklet(element, line, ev):
    assert line_energy(element, line) * 1000 == pytest.approx(ev, abs=5.0)


def test_table_covers_be_to_u_with_principal_lines_and_sane_weights():
    table = line_table()
    assert len(ELEMENTS) == 89 and ELEMENTS[0] == "Be" and ELEMENTS[-1] == "U"
    assert table["Z"].is_monotonic_increasing
    assert table["energy_keV"].between(0.1, 25.0).all()
    assert (table["weight"] > 0).all() and (table["weight"] <= 1.0).all()
    for el in ELEMENTS:  # every element has a principal line an EDS detector sees
        assert main_line(el) is not None
    # within a family the principal line is the strongest and the lines keep Moseley's order
    for el, grp in table.groupby("element"):
        for fam, lines in grp.groupby("family"):
            principal = {"K": "Ka", "L": "La", "M": "Ma"}[fam]
            if principal in set(lines["line"]):
                assert lines["weight"].max() == lines.loc[lines["line"] == principal, "weight"].iloc[0]
    ka = table[table["line"] == "Ka"].sort_values("Z")
    assert np.all(np.diff(ka["energy_keV"]) > 0)
    # Moseley's law E_Ka = (3/4) Ry (Z - 1)^2 holds to a few % from Ne on (Be..F have valence-band K lines)
    ry_kev = 13.6057e-3
    ka = ka[ka["Z"] >= 10]
    np.testing.assert_allclose(ka["energy_keV"], 0.75 * ry_kev * (ka["Z"].to_numpy() - 1) ** 2, rtol=0.05)


def test_lookups_and_aliases():
    assert line_energy("cu", "Ka1") == line_energy("Cu", "Ka") == pytest.approx(8.0478)
    assert set(xray_lines("Au")) >= {"La", "Lb1", "Ma", "Mb"}
    near = lines_near(7.48, 0.01)
    assert near.iloc[0]["element"] == "Ni" and near.iloc[0]["line"] == "Ka"
    assert main_line("Nb", e_max_keV=7.19) == "La" and main_line("Nb") == "Ka"
    with pytest.raises(InputError, match="unknown element"):
        xray_lines("Xx")
    with pytest.raises(InputError, match="no tabulated line"):
        line_energy("C", "La")


def test_detector_resolution_law():
    assert fwhm_ev(5898.7) == pytest.approx(130.0)
    # FWHM^2 grows by 2.5 eV per eV of photon energy (Fano statistics in Si)
    assert fwhm_ev(8047.8, 125.0) ** 2 - 125.0 ** 2 == pytest.approx(2.5 * (8047.8 - 5898.7))
    assert np.all(np.isfinite(fwhm_ev(np.array([0.0, 100.0]), 110.0)))


# ---------------------------------------------------------------- synthetic spectrum image

E0_KEV = 200.0
FWHM_MNKA = 130.0
STEP = 10.0
ENERGY = np.arange(-200.0, 20280.0, STEP)  # eV, like a Velox axis with the zero peak on it
NY, NX = 12, 16


def gaussian_line(centre_ev, counts):
    sigma = fwhm_ev(centre_ev, FWHM_MNKA) / 2.3548
    return counts * STEP / (np.sqrt(2 * np.pi) * sigma) * np.exp(-0.5 * ((ENERGY - centre_ev) / sigma) ** 2)


def continuum(energy_ev):
    """Kramers' bremsstrahlung (E0 - E)/E, cut at low energy by window and self absorption."""
    e_kev = np.clip(energy_ev / 1000, 0.05, None)
    return (E0_KEV - e_kev) / e_kev * (1 - np.exp(-(e_kev / 0.8) ** 3))


def synthetic(seed=0, escape=True):
    """Fe/Ni/Cr spectrum image on a Kramers continuum, Cu Ka/Kb from the grid, Poisson noise.

    Returns the DataArray and the true expected Ka counts per pixel of each element.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:NY, 0:NX]
    amount = {"Fe": 300 + 1200 * xx / (NX - 1), "Ni": 300 + 900 * yy / (NY - 1), "Cr": np.full((NY, NX), 700.0)}
    model = np.broadcast_to(0.3 * continuum(ENERGY), (NY, NX, ENERGY.size)).copy()
    truth = {}
    for el, ka in amount.items():
        truth[el] = ka
        for ln in xray_lines(el).values():
            rel = ln.weight if ln.line[0] == "K" else 0.3 * ln.weight  # L lines weaker, absorbed
            model += ka[..., None] * gaussian_line(ln.energy_keV * 1000, rel)[None, None, :]
    model += 150 * gaussian_line(8047.8, 1.0) + 150 * 0.13 * gaussian_line(8905.3, 1.0)  # Cu from the grid
    if escape:  # Si escape peak of Ni Ka, 1.740 keV lower: 2 % of it (Si detectors: ~0.5-2 %)
        model += 0.02 * amount["Ni"][..., None] * gaussian_line(7478.2 - 1739.7, 1.0)
    model += 2000 * np.exp(-0.5 * (ENERGY / 20.0) ** 2)  # zero-energy noise peak
    counts = rng.poisson(model).astype(np.float32)
    si = spectrum_image(counts, 1.0, energy=ENERGY, signal="EDS")
    return si, truth


@pytest.fixture(scope="module")
def synth():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return synthetic()


def test_identify_finds_exactly_the_elements_drawn_and_reports_grid_and_escape(synth):
    si, _ = synth
    table, elements = identify_lines(si)
    assert set(elements) == {"Fe", "Ni", "Cr"}
    assert elements[0] == "Fe"  # the most counts (mean Ka 900 against 750 and 700)
    specimen = table[table["origin"] == "specimen"]
    for el, line in (("Fe", "Ka"), ("Fe", "Kb"), ("Ni", "Ka"), ("Ni", "Kb"), ("Cr", "Ka"), ("Cr", "Kb")):
        row = specimen[(specimen["element"] == el) & (specimen["line"] == line)]
        assert len(row) == 1
        assert abs(row["measured_keV"].iloc[0] - line_energy(el, line)) < 0.015
    cu = table[table["element"] == "Cu"]
    assert set(cu["line"]) >= {"Ka"} and set(cu["origin"]) == {"grid/holder"}
    esc = table[table["origin"] == "escape"]
    assert len(esc) == 1 and esc["element"].iloc[0] == "Ni"
    assert esc["measured_keV"].iloc[0] == pytest.approx(7.4782 - 1.7397, abs=0.03)
    assert (table["origin"] != "unassigned").all()
    # with Cu allowed as a specimen element it joins the list
    assert "Cu" in identify_lines(si, artefact_elements=())[1]


def test_identify_on_a_flat_continuum_finds_nothing():
    rng = np.random.default_rng(3)
    counts = rng.poisson(200 * continuum(ENERGY)).astype(float)
    table, elements = identify_lines(xr.DataArray(counts, dims="energy",
                                                  coords={"energy": ("energy", ENERGY, {"units": "eV"})}))
    assert elements == [] and len(table) == 0


def test_maps_recover_the_drawn_line_counts(synth):
    si, truth = synth
    ds = elemental_maps(si, elements=["Fe", "Ni", "Cr"])
    assert set(ds.data_vars) == {"Fe_Ka", "Ni_Ka", "Cr_Ka"}
    for el in ("Fe", "Ni", "Cr"):
        m = ds[f"{el}_Ka"]
        assert m.dims == ("y", "x") and m.attrs["units"] == "counts" and m.attrs["background"] == "linear"
        lo, hi = m.attrs["window_ev"]
        c, f = line_energy(el, "Ka") * 1000, fwhm_ev(line_energy(el, "Ka") * 1000)
        assert hi - lo == pytest.approx(1.2 * f, abs=STEP)
        # expected counts inside the window: the Gaussian's fraction over the channels integrated
        s = f / 2.3548
        frac = 0.5 * (erf((hi - c) / (np.sqrt(2) * s)) - erf((lo - c) / (np.sqrt(2) * s)))
        expected = truth[el] * frac
        # the background side windows avoid Kb/Ka of the others; the mean bias is within 2 %
        assert float(m.mean()) == pytest.approx(float(expected.mean()), rel=0.02)
        assert np.corrcoef(m.values.ravel(), expected.ravel())[0, 1] > 0.97 or el == "Cr"
        # Cr is uniform: only Poisson scatter; sigma from counts in line + side windows
        assert float(m.std()) < 3 * np.sqrt(expected.mean() * 2 + 200) if el == "Cr" else True
        for bw in m.attrs["background_windows_ev"]:
            for other in ("Fe", "Ni", "Cr"):
                for ln in xray_lines(other).values():
                    e = ln.energy_keV * 1000
                    if ln.weight >= 0.05 and not (other == el and ln.line == "Ka"):
                        assert bw[1] <= e - fwhm_ev(e) + STEP or bw[0] >= e + fwhm_ev(e) - STEP
    assert ds.attrs["windows"]["Ni_Ka"]["window_ev"] == ds["Ni_Ka"].attrs["window_ev"]
    assert ds["Ni_Ka"].attrs["provenance"][-1]["name"] == "spectra.elemental_maps"


def test_maps_kev_axis_dask_and_line_names_agree(synth):
    si, _ = synth
    ref = elemental_maps(si, lines=["Ni_Ka", "Fe_Kb"], elements=["Fe", "Ni", "Cr"])
    kev = si.assign_coords(energy=("energy", ENERGY / 1000, {"units": "keV"}))
    same = elemental_maps(kev, lines=["Ni_Ka", "Fe_Kb"], elements=["Fe", "Ni", "Cr"])
    lazy_si = si.copy(data=dsa.from_array(si.values, chunks=(5, 8, -1)))
    lazy = elemental_maps(lazy_si, lines=["Ni_Ka", "Fe_Kb"], elements=["Fe", "Ni", "Cr"])
    assert isinstance(lazy["Ni_Ka"].data, dsa.Array)
    for v in ("Ni_Ka", "Fe_Kb"):
        np.testing.assert_allclose(same[v].values, ref[v].values, rtol=1e-9)
        np.testing.assert_allclose(lazy[v].values, ref[v].values, rtol=1e-9)
    np.testing.assert_array_equal(ref["Ni_Ka"].x.values, si.x.values)


def test_maps_default_elements_from_metadata(synth):
    si, _ = synth
    tagged = si.copy()
    tagged.attrs = {**si.attrs, "metadata": {**si.attrs.get("metadata", {}), "elements": ["Ni"]}}
    assert list(elemental_maps(tagged).data_vars) == ["Ni_Ka"]
    assert set(elemental_maps(si).data_vars) == {"Fe_Ka", "Ni_Ka", "Cr_Ka"}  # found by identify_lines


def test_bad_input_is_one_clear_input_error(synth):
    si, _ = synth
    small = si.isel(y=slice(0, 2), x=slice(0, 2))
    bare = small.assign_coords(energy=("energy", ENERGY))
    with pytest.raises(InputError, match="no units"):
        elemental_maps(bare, elements=["Ni"])
    shuffled = small.assign_coords(energy=("energy", ENERGY[::-1].copy(), {"units": "eV"}))
    with pytest.raises(InputError, match="not strictly increasing"):
        identify_lines(shuffled)
    with pytest.raises(InputError, match="unknown element"):
        elemental_maps(small, elements=["Qq"])
    with pytest.raises(InputError, match="outside the energy axis"):
        elemental_maps(small.sel(energy=slice(None, 7000)), lines=["Ni_Ka"])
    with pytest.raises(InputError, match="Element_Line"):
        elemental_maps(small, lines=["NiKa"])
    nan = small.copy(data=small.values.copy())
    nan.values[0, 0, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        elemental_maps(nan, elements=["Ni"])
    before = small.values.copy()
    elemental_maps(small, elements=["Ni"])
    np.testing.assert_array_equal(small.values, before)  # input untouched


# ---------------------------------------------------------------- real Velox files (HyperSpy 1.7.6)


@pytest.fixture
def sparse():
    return pytest.importorskip("sparse", reason="reading Velox EDS spectrum images needs the 'sparse' package "
                                                "(pip install 'rosettasciio[eds-stream]')")


def velox(velox_dir, name):
    from atomine.io import load_all

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals = load_all(velox_dir / name)
    haadf = next(s for s in signals if s.dims == ("y", "x"))
    si = next(s for s in signals if s.dims == ("y", "x", "energy"))
    return haadf, si


def r(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def test_velox_superx_is_a_nickel_superalloy(velox_dir, sparse):
    # The summed spectrum shows Ka and Kb of Ni (7.478/8.265 keV), Cr (5.415/5.947) and Fe
    # (6.404/7.058), Nb Ka/Kb (16.62/18.62) with Nb La at 2.166, Ti Ka 4.511, Al Ka 1.487:
    # the composition of Inconel 718. The file's metadata lists only Nb.
    haadf, si = velox(velox_dir, "fei_SI_SuperX-HAADF_10frames_10x50.emd")
    table, elements = identify_lines(si)
    assert {"Ni", "Cr", "Fe", "Nb", "Ti", "Al"} <= set(elements)
    assert set(si.attrs["metadata"]["elements"]) <= set(elements)
    assert elements[0] == "Ni"
    found = table[table["origin"] == "specimen"]
    for el, line in (("Ni", "Ka"), ("Ni", "Kb"), ("Cr", "Ka"), ("Cr", "Kb"), ("Fe", "Ka"), ("Fe", "Kb"),
                     ("Nb", "Ka"), ("Nb", "Kb"), ("Nb", "La")):
        row = found[(found["element"] == el) & (found["line"] == line)]
        assert len(row) == 1 and abs(row["measured_keV"].iloc[0] - line_energy(el, line)) < 0.06
    cu = table[table["element"] == "Cu"]
    assert len(cu) and (cu["origin"] == "grid/holder").all() and "Cu" not in elements
    # HAADF (Z contrast) is brighter where the heavier Ni and Nb are, darker where Cr and Fe are
    maps = elemental_maps(si, elements=["Ni", "Cr", "Fe", "Nb"])
    assert float(maps["Ni_Ka"].min()) > 0
    assert r(maps["Ni_Ka"], haadf) > 0.5
    assert r(maps["Nb_Ka"], haadf) > 0.3
    assert r(maps["Cr_Ka"], haadf) < 0 and r(maps["Fe_Ka"], haadf) < 0


def test_velox_four_detector_file_is_gold_palladium_on_a_support(velox_dir, sparse):
    # Au La/Lb1/Lg1 (9.713/11.44/13.38 keV) and Ma (2.122); Pd La and Lb1 (2.839/2.990, ratio
    # ~0.4); C, O and Si Ka of the support; Cu Ka/Kb/La. Metadata lists no elements.
    haadf, si = velox(velox_dir, "fei_SI_EDS-HAADF-4detectors_2frames.emd")
    table, elements = identify_lines(si)
    assert {"Au", "Pd", "Si", "C", "O"} <= set(elements)
    au = table[table["element"] == "Au"]
    assert {"La", "Lb1", "Ma"} <= set(au["line"])
    assert set(table.loc[table["element"] == "Pd", "line"]) == {"La", "Lb1"}
    assert "Cu" in set(table["element"]) and "Cu" not in elements
    maps = elemental_maps(si, elements=["Au", "Pd", "Si", "Cu"])
    # the particle is what HAADF sees: Au and Pd follow it, the Si support does not
    assert r(maps["Au_La"], haadf) > 0.8 and r(maps["Pd_La"], haadf) > 0.8
    assert abs(r(maps["Si_Ka"], haadf)) < 0.3
