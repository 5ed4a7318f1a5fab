"""EDS spectrum images through unmix_spectra, and the X-ray lines of each component (annotate_eds).

Ground truth: a two-phase EDS mixture drawn here (Fe+Cr and Ni+Ti Gaussian X-ray lines on a
Kramers continuum, smooth abundance fields with pure regions, a zero-energy noise peak that
does not follow the phases, Poisson counts), graded by ``unmix_scores`` (Hungarian
assignment on spectral angle); and HyperSpy 1.7.6's Velox SuperX file of Inconel 718, whose
elements are those identify_lines finds in its summed spectrum and whose Nb and Ni maps
follow the simultaneous HAADF image (see tests/spectra/test_eds_maps.py).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from atomine.data import GroundTruth, Simulation, spectrum_image
from atomine.errors import InputError
from atomine.spectra import annotate_eds, fwhm_ev, identify_lines, line_energy, xray_lines
from atomine.spectra.annotate_eds import noise_scale
from atomine.workflows import unmix_scores, unmix_spectra

STEP = 10.0
ENERGY = np.arange(-200.0, 10240.0, STEP)  # eV, with the zero-energy noise peak on the axis like a Velox file
NY, NX = 20, 20
PHASES = {"Fe+Cr": ({"Fe": 500.0, "Cr": 300.0}, 0.30), "Ni+Ti": ({"Ni": 600.0, "Ti": 250.0}, 0.40)}


def _line(centre_ev, counts):
    sigma = fwhm_ev(centre_ev) / 2.3548
    return counts * STEP / (np.sqrt(2 * np.pi) * sigma) * np.exp(-0.5 * ((ENERGY - centre_ev) / sigma) ** 2)


def _pure(ka_counts, continuum):
    """Expected counts per pixel of one phase: Kramers' (E0 - E)/E continuum cut by absorption, plus its lines."""
    e_kev = np.clip(ENERGY / 1000, 0.05, None)
    spec = continuum * (200.0 - e_kev) / e_kev * (1 - np.exp(-(e_kev / 0.8) ** 3))
    for el, ka in ka_counts.items():
        for ln in xray_lines(el).values():
            spec = spec + _line(ln.energy_keV * 1000, ka * (ln.weight if ln.line[0] == "K" else 0.3 * ln.weight))
    return spec


def _mixture(seed=0) -> Simulation:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:NY, 0:NX]
    a = np.clip(0.5 + 0.8 * np.sin(2 * np.pi * (xx + 0.5) / NX) * np.cos(np.pi * (yy + 0.5) / NY), 0.0, 1.0)
    ab = np.stack([a, 1.0 - a], axis=-1)
    E = np.stack([_pure(*PHASES[p]) for p in PHASES])
    model = ab @ E
    # the detector's zero-energy (strobe) peak: its height varies per pixel independently of the phases
    model += rng.gamma(4.0, 500.0, size=(NY, NX))[..., None] * np.exp(-0.5 * (ENERGY / 20.0) ** 2)
    si = spectrum_image(rng.poisson(model).astype(np.float32), 1.0, energy=ENERGY, signal="EDS")
    maps = xr.Dataset({"abundances": (("y", "x", "component"), ab), "endmembers": (("component", "energy"), E)},
                      coords={"component": list(PHASES), "energy": ENERGY})
    return Simulation(si, GroundTruth("eds", {"seed": seed}, {}, maps))


@pytest.fixture(scope="module")
def mixture():
    return _mixture()


@pytest.fixture(scope="module")
def mixture_fcls(mixture):
    return unmix_spectra(mixture.data, method="fcls")  # K chosen from the data


def _elements(table, component):
    rows = table[(table["component"] == component) & (table["origin"] == "specimen")]
    return set(rows["element"])


# ---------------------------------------------------------------- synthetic two-phase mixture


def test_synthetic_mixture_meets_the_issue_targets(mixture, mixture_fcls):
    res = mixture_fcls
    assert res.summary["kind"] == "eds" and res.summary["n_components"] == 2  # chosen by bi-cross-validation
    s = unmix_scores(res, mixture)
    assert s["abundance_rmse"] <= 0.05, s
    assert max(s["angle_deg"]) <= 3.0, s
    assert s["endmember_min"] >= 0.0
    A = res.abundance.values
    assert A.min() >= 0.0 and np.allclose(A.sum(0), 1.0, atol=1e-6)


def test_synthetic_components_are_annotated_with_their_own_elements(mixture, mixture_fcls):
    res = mixture_fcls
    table = res.annotations
    s = unmix_scores(res, mixture)
    for m in s["matches"]:
        own = set(PHASES[m["true"]][0])
        assert _elements(table, m["component"]) == own, table[table["component"] == m["component"]]
        rows = table[(table["component"] == m["component"]) & (table["line"] == "Ka")]
        for el in own:  # the Ka centroid sits on the tabulated energy
            assert abs(rows.loc[rows["element"] == el, "measured_keV"].iloc[0] - line_energy(el, "Ka")) < 0.02
        # strength is per pixel of the pure phase: Ka counts inside +-0.6 FWHM (84 % of the line)
        fe_or_ni = "Fe" if "Fe" in own else "Ni"
        drawn = PHASES[m["true"]][0][fe_or_ni] * xray_lines(fe_or_ni)["Ka"].weight
        assert rows.loc[rows["element"] == fe_or_ni, "strength"].iloc[0] == pytest.approx(0.84 * drawn, rel=0.15)
    assert set(table["component_name"]) == set(res.component_names)


def test_synthetic_preprocessing_cuts_the_noise_peak_and_maps_the_lines(mixture, mixture_fcls):
    res = mixture_fcls
    eds = res.summary["preprocessing"]["eds"]
    assert float(res.maps["energy"].min()) >= 150.0 and res.maps["energy"].attrs["units"] == "eV"
    raw = mixture.data.values
    below = raw[..., ENERGY < 150.0].sum() / raw.sum()
    assert eds["counts_cut_fraction"] == pytest.approx(below, rel=1e-9)
    assert set(eds["elements"]) == {"Fe", "Cr", "Ni", "Ti"}
    assert set(eds["lines_mapped"]) == {"Fe_Ka", "Cr_Ka", "Ni_Ka", "Ti_Ka"}
    truth = mixture.truth.maps["abundances"]
    for el, phase in (("Fe", 0), ("Cr", 0), ("Ni", 1), ("Ti", 1)):
        m = res.maps[f"eds_{el}_Ka"]
        assert m.attrs["units"] == "counts" and m.dims == ("y", "x")
        r = np.corrcoef(m.values.ravel(), truth.isel(component=phase).values.ravel())[0, 1]
        assert r > 0.95, (el, r)


def test_kev_axis_gives_the_same_unmixing(mixture, mixture_fcls):
    kev = mixture.data.assign_coords(energy=("energy", ENERGY / 1000, {"units": "keV"}))
    res = unmix_spectra(kev, method="fcls", n_components=2)
    np.testing.assert_allclose(res.maps["energy"].values, mixture_fcls.maps["energy"].values)
    np.testing.assert_allclose(res.abundance.values, mixture_fcls.abundance.values, atol=1e-5)
    assert res.annotations["element"].tolist() == mixture_fcls.annotations["element"].tolist()


# ---------------------------------------------------------------- annotate_eds on its own


def test_noise_scale_counts_what_a_spectrum_is_worth():
    rng = np.random.default_rng(1)
    expected = _pure(*PHASES["Fe+Cr"])[ENERGY >= 150]
    one = rng.poisson(expected).astype(float)
    mean = rng.poisson(np.broadcast_to(expected, (100, expected.size))).mean(0)
    assert noise_scale(one) == pytest.approx(1.0, rel=0.25)
    assert noise_scale(mean) == pytest.approx(100.0, rel=0.25)
    assert noise_scale(expected) > 1e3  # noiseless


def test_annotate_eds_scales_significance_by_the_pixels_a_component_represents():
    rng = np.random.default_rng(2)
    expected = np.stack([_pure(*PHASES[p]) for p in PHASES])
    comps = rng.poisson(np.broadcast_to(expected, (50,) + expected.shape)).mean(0)  # each the mean of 50 pixels
    da = xr.DataArray(comps, dims=("component", "energy"),
                      coords={"component": [0, 1], "energy": ("energy", ENERGY / 1000, {"units": "keV"})})
    table = annotate_eds(da, n_pixels=[50, 50])
    assert _elements(table, 0) == {"Fe", "Cr"} and _elements(table, 1) == {"Ni", "Ti"}
    assert list(table.columns[:6]) == ["component", "element", "line", "lines", "energy_keV", "measured_keV"]
    assert (table["counts_scale"] <= 50).all() and (table["counts_scale"] > 25).all()
    # a component that stands for almost no pixels holds no significant line
    faint = annotate_eds(da, n_pixels=[50, 0.01])
    assert _elements(faint, 0) == {"Fe", "Cr"} and not (faint["component"] == 1).any()
    # a plain array with its eV axis gives the same table
    plain = annotate_eds(comps, ENERGY, n_pixels=50)
    pd.testing.assert_frame_equal(plain, table)


def test_annotate_eds_bad_input_is_one_clear_error():
    comps = np.ones((2, ENERGY.size))
    before = comps.copy()
    with pytest.raises(InputError, match="n_pixels"):
        annotate_eds(comps, ENERGY, n_pixels=[1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="n_pixels"):
        annotate_eds(comps, ENERGY, n_pixels=-1.0)
    with pytest.raises(InputError, match="no units"):
        annotate_eds(xr.DataArray(comps, dims=("component", "energy"), coords={"energy": ENERGY}))
    with pytest.raises(InputError, match="energy axis"):
        annotate_eds(comps)
    np.testing.assert_array_equal(comps, before)


# ---------------------------------------------------------------- real Velox file (HyperSpy 1.7.6)


@pytest.fixture(scope="module")
def superx(velox_dir):
    """HAADF and EDS of the SuperX file, 2 x 2 pixels summed (50 x 10 -> 25 x 5).

    The file holds 10 frames already summed (no frame axis) and ~1500 counts per pixel, 82 % of
    them in the zero-energy noise peak: some 270 X-ray counts over 3866 channels. Summing 2 x 2
    pixels gives ~1100 X-ray counts per pixel; bi-cross-validation still calls the rest noise
    (it picks 2 components only from 5 x 5 binning), so K is fixed.
    """
    pytest.importorskip("sparse", reason="reading Velox EDS spectrum images needs the 'sparse' package "
                                         "(pip install 'rosettasciio[eds-stream]')")
    from atomine.io import load_all

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signals = load_all(velox_dir / "fei_SI_SuperX-HAADF_10frames_10x50.emd")
    haadf = next(s for s in signals if s.dims == ("y", "x"))
    si = next(s for s in signals if s.dims == ("y", "x", "energy"))
    binned = si.coarsen(y=2, x=2).sum()
    binned.attrs = si.attrs
    return haadf.astype(float).coarsen(y=2, x=2).mean(), binned


def r(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.mark.parametrize("method, k", [("fcls", 2), ("mcr", 2), ("fcls", 3)])
def test_velox_inconel_components_carry_its_elements_and_nb_follows_its_map(superx, method, k):
    haadf, si = superx
    res = unmix_spectra(si, method=method, n_components=k)
    summed = identify_lines(si)[1]
    eds = res.summary["preprocessing"]["eds"]
    assert eds["elements"] == summed
    # the zero-energy noise peak was cut: the fraction the file holds below 0.15 keV
    raw = si.values
    assert eds["counts_cut_fraction"] == pytest.approx(raw[..., si.energy.values < 150].sum() / raw.sum())
    table = res.annotations
    found = set(table.loc[table["origin"] == "specimen", "element"])
    assert {"Ni", "Cr", "Fe", "Nb"} <= found <= set(summed)
    assert set(table.loc[table["element"] == "Cu", "origin"]) <= {"grid/holder"}
    # simplex, finite residual
    A = res.abundance.values
    assert A.min() >= -1e-9 and np.allclose(A.sum(0), 1.0, atol=1e-6)
    assert np.all(np.isfinite(res.residual.values)) and float(res.endmember.min()) >= 0.0
    # the Nb-richest component (most Nb Ka counts per pixel of the pure component) follows the Nb map
    nb = table[(table["element"] == "Nb") & (table["line"] == "Ka")]
    c_nb = int(nb.loc[nb["strength"].idxmax(), "component"])
    assert r(A[c_nb], res.maps["eds_Nb_Ka"]) > 0.8
    assert r(A[c_nb], haadf) > 0.3  # and, like Nb (Z = 41) and Ni, the Z contrast
    if k == 2:  # Ni3Nb-type precipitate against the Cr/Fe-rich gamma matrix
        cr = table[(table["element"] == "Cr") & (table["line"] == "Ka")].set_index("component")["strength"]
        assert cr[c_nb] < 0.5 * cr[1 - c_nb]
        assert r(A[c_nb], res.maps["eds_Cr_Ka"]) < -0.5


def test_report_marks_each_component_line_at_its_measured_energy(mixture_fcls):
    pytest.importorskip("matplotlib")
    from atomine.report.unmix_report import _spectra_figure, unmix_sections

    fig = _spectra_figure(mixture_fcls, None, {})
    table = mixture_fcls.annotations
    for i, ax in enumerate(fig.axes[:2]):
        marks = {t.get_text().strip(): t.get_position()[0] for t in ax.texts}
        for row in table[table["component"] == i].itertuples():
            assert marks[row.lines] == pytest.approx(1000.0 * row.measured_keV)
    caption = unmix_sections(mixture_fcls)[0].blocks[0].caption
    assert "X-ray lines" in caption


def test_uncalibrated_eds_axis_is_unmixed_and_the_skipped_lines_are_said(mixture):
    px = mixture.data.assign_coords(energy=("energy", np.arange(ENERGY.size, dtype=float), {"units": "px"}))
    res = unmix_spectra(px, method="fcls", n_components=2)
    assert "unknown energy unit 'px'" in res.summary["preprocessing"]["eds"]["skipped"]
    assert len(res.annotations) == 0 and any("annotations" in s for s in res.summary["skipped"])
    assert not any(v.startswith("eds_") for v in res.maps.data_vars)
