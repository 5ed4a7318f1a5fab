"""unmix_spectra on the simulated mixtures: the issue's acceptance figures, the result folder, bad input."""

import json

import numpy as np
import pytest
import xarray as xr

from atomine.errors import CalibrationError, InputError, OutputExistsError
from atomine.simulate import make
from atomine.workflows import unmix_scores, unmix_spectra

RMSE, ANGLE = 0.05, 3.0


@pytest.fixture(scope="module")
def eels():
    return make("eels-si-mixed", seed=0)


@pytest.fixture(scope="module")
def cits():
    return make("cits-grid-mixed", seed=0)


@pytest.fixture(scope="module")
def eels_fcls(eels):
    return unmix_spectra(eels.data, method="fcls")  # K chosen from the data


@pytest.fixture(scope="module")
def cits_fcls(cits):
    return unmix_spectra(cits.data, method="fcls")


def _meets_targets(result, sim):
    s = unmix_scores(result, sim)
    assert s["n_components"] == s["n_components_true"] == 3
    assert s["abundance_rmse"] <= RMSE, s
    assert max(s["angle_deg"]) <= ANGLE, s
    assert s["endmember_min"] >= 0.0, s  # raw counts incl. background / dI/dV: no negative spectra
    assert sorted(m["true"] for m in s["matches"]) == sorted(map(str, sim.truth.maps["component"].values))
    return s


@pytest.mark.parametrize("which", ["eels", "cits"])
def test_fcls_finds_three_components_and_meets_the_targets(which, eels, cits, eels_fcls, cits_fcls):
    sim, result = (eels, eels_fcls) if which == "eels" else (cits, cits_fcls)
    assert result.summary["n_components"] == 3
    assert result.summary["n_components_chosen"] == "bi-cross-validation"
    crit = result.summary["n_components_criterion"]
    assert crit["relative_drop"][1] > 0.05 > crit["relative_drop"][2]  # the 3rd component matters, the 4th is noise
    s = _meets_targets(result, sim)
    # on raw counts (EELS) or the analytic dI/dV (CITS) the angles are as small
    assert max(s["angle_raw_deg"]) <= ANGLE
    # abundances on the simplex
    A = result.abundance.values
    assert A.min() >= -1e-9 and np.allclose(A.sum(axis=0), 1.0, atol=1e-6)


@pytest.mark.parametrize("which", ["eels", "cits"])
def test_nmf_started_from_the_simplex_meets_the_targets(which, eels, cits):
    sim = eels if which == "eels" else cits
    result = unmix_spectra(sim.data, method="nmf", n_components=3)
    _meets_targets(result, sim)
    assert result.summary["unmixing"]["init"].startswith("nfindr")


def test_nnls_abundances_nearly_sum_to_one_without_being_told(cits):
    result = unmix_spectra(cits.data, method="nnls", n_components=3)
    s = unmix_scores(result, cits)
    assert s["abundance_rmse"] <= RMSE
    sums = result.abundance.sum("component").values
    assert abs(float(np.median(sums)) - 1.0) < 0.02  # the model is convex, so free abundances land near the simplex


def test_eels_background_window_and_pixel_quality_are_recorded(eels, eels_fcls):
    bg = eels_fcls.summary["preprocessing"]["background"]
    assert bg["mode"] == "endmember" and bg["first_edge"].startswith("Ti")
    lo, hi = bg["window_ev"]
    assert 400.0 <= lo < hi < 456.0  # before the Ti L3 onset
    # Poisson counts fitted by a power law: reduced chi-square about 1 per pixel
    assert 0.9 < bg["pixel_chi2_red_median"] < 1.1
    chi2 = eels_fcls.maps["background_chi2_red"]
    assert chi2.dims == ("y", "x") and chi2.shape == eels.data.shape[:2]
    # the endmember carries its own background; the reported one has it removed in the same window
    e = eels_fcls.maps["energy"].values
    pre = (e >= lo) & (e <= hi)
    assert np.all(eels_fcls.maps["endmember_counts"].values[:, pre].mean(axis=1) > 100)
    assert np.all(np.abs(eels_fcls.endmember.values[:, pre].mean(axis=1)) < 5)


def test_eels_edges_are_annotated(eels_fcls):
    ann = eels_fcls.annotations
    if not len(ann):
        pytest.skip("annotate_eels not available yet: " + "; ".join(eels_fcls.summary["skipped"]))
    found = {int(c): set(g["element"].dropna()) for c, g in ann.groupby("component")}
    # SrTiO3 holds Ti and O but no Mn or La; LaMnO3 the reverse for Ti; the interface all four
    sets = sorted(found.values(), key=len)
    assert {"Ti", "O"} in sets and {"O", "Mn", "La"} in sets and {"Ti", "O", "Mn", "La"} in sets


def test_cits_gap_is_annotated(cits_fcls):
    ann = cits_fcls.annotations
    if not len(ann):
        pytest.skip("annotate_cits not available yet")
    gaps = ann[(ann["feature"] == "gap") & (ann["width_v"] > 0)]
    assert len(gaps) == 1  # only the semiconductor has a gap: half-gap 0.3 V in the simulation
    assert abs(float(gaps["width_v"].iloc[0]) - 0.6) < 0.08


def test_result_folder_round_trips(eels_fcls, tmp_path):
    out = eels_fcls.save(tmp_path / "unmix")
    names = {p.name for p in out.iterdir()}
    assert {"result.zarr", "summary.json", "provenance.json", "annotations.csv"} <= names
    ds = xr.open_zarr(out / "result.zarr").load()
    assert ds.abundance.dims == ("component", "y", "x") and ds.abundance.attrs["units"] == "1"
    assert ds.endmember.dims == ("component", "energy") and ds.endmember.attrs["units"] == "counts"
    assert ds.energy.attrs["units"] == "eV" and ds.x.attrs["units"] == "nm"
    assert ds.residual.dims == ("y", "x") and ds.residual.attrs["units"] == "counts"
    np.testing.assert_allclose(ds.abundance.values, eels_fcls.abundance.values)
    # Poisson counts: the residual RMS per pixel is about the square root of the counts
    assert 0.7 < float(np.median(ds.residual)) / np.sqrt(float(np.median(eels_fcls.maps["endmember_counts"]))) < 1.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_components"] == 3 and summary["method"] == "fcls"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["workflow"].endswith("unmix_spectra") and "result.zarr" in prov["outputs"]
    with pytest.raises(OutputExistsError):
        eels_fcls.save(out)


def test_references_on_another_axis_are_resampled(eels):
    # the true pure spectra on a finer axis that covers the data: fcls with them as the endmembers
    T = eels.truth.maps["endmembers"]
    fine = np.arange(390.0, 910.0, 0.5)
    refs = [xr.DataArray(np.interp(fine, T.energy.values, T.isel(component=i).values), dims=("energy",),
                         coords={"energy": fine}, name=str(T.component.values[i])) for i in range(3)]
    crop = eels.data.isel(y=slice(0, 16), x=slice(0, 16))
    result = unmix_spectra(crop, method="fcls", references=refs)
    assert result.summary["n_components_chosen"] == "the number of references"
    assert len(result.summary["references"]["notes"]) == 3 and "resampled" in result.summary["references"]["notes"][0]
    truth = eels.truth.maps["abundances"].isel(y=slice(0, 16), x=slice(0, 16)).transpose("component", "y", "x")
    assert float(np.sqrt(np.mean((result.abundance.values - truth.values) ** 2))) < 0.03
    assert result.component_names == [str(c) for c in T.component.values]


def test_references_not_covering_the_axis_are_refused(eels):
    short = xr.DataArray(np.ones(100), dims=("energy",), coords={"energy": np.arange(450.0, 550.0)}, name="short")
    with pytest.raises(InputError, match="covers 450..549"):
        unmix_spectra(eels.data, references=[short])


def test_nan_channels_are_refused(eels):
    bad = eels.data.copy(data=eels.data.values.astype(float))
    bad[..., 10] = np.nan
    with pytest.raises(InputError, match="NaN"):
        unmix_spectra(bad)
    assert np.isnan(bad.values[..., 10]).all()  # the input is not modified


def test_non_monotonic_energy_axis_is_refused(eels):
    e = eels.data.energy.values.copy()
    e[100], e[101] = e[101], e[100]
    with pytest.raises(CalibrationError, match="monotonic"):
        unmix_spectra(eels.data.assign_coords(energy=e))


def test_fewer_pixels_than_components_is_refused(cits):
    with pytest.raises(InputError, match="pixels"):
        unmix_spectra(cits.data.isel(y=slice(0, 1), x=slice(0, 2)), n_components=3)


@pytest.mark.parametrize("bad", ["image", "method", "background"])
def test_wrong_inputs_say_what_is_wrong(cits, bad):
    if bad == "image":
        with pytest.raises(InputError, match="dims"):
            unmix_spectra(cits.data.isel(bias=0))
    elif bad == "method":
        with pytest.raises(InputError, match="unknown method"):
            unmix_spectra(cits.data, method="ica")
    else:
        with pytest.raises(InputError, match="EELS"):
            unmix_spectra(cits.data, background="pixel")


def _estimator(name):
    try:
        import atomine.unmix as unmix

        return getattr(unmix, name)
    except (ImportError, AttributeError):
        pytest.skip("not built yet")


@pytest.mark.parametrize("which", ["eels", "cits"])
def test_mcr_meets_the_targets(which, eels, cits):
    _estimator("MCRALS")
    sim = eels if which == "eels" else cits
    _meets_targets(unmix_spectra(sim.data, method="mcr", n_components=3), sim)


@pytest.mark.slow
def test_bayes_gives_posterior_means_inside_their_credible_intervals(cits):
    """Bayesian unmixing through the workflow: targets met, and intervals that bracket the posterior means.

    Interval calibration itself is checked on the estimator (tests/unmix/test_bayes_unmixing.py)
    and over seeds in ``make validate``. On these presets every pixel holds >= ~2 % of each phase, so
    the pure spectra are not identifiable: coverage of the true abundances is far below the 90-98 %
    target (0.2-0.6), coverage against the data hull's vertices 0.7-0.93 (benchmarks/VALIDATION.md).
    """
    _estimator("BayesianUnmixing")
    result = unmix_spectra(cits.data, method="bayes", n_components=3)
    s = _meets_targets(result, cits)
    assert 0.0 < s["coverage"] <= 1.0 and s["coverage_hull"] > s["coverage"]
    assert {"abundance_lo", "abundance_hi", "endmember_lo", "endmember_hi"} <= set(result.maps.data_vars)
    lo, hi, mean = (result.maps[v].values for v in ("abundance_lo", "abundance_hi", "abundance"))
    assert np.all(lo <= mean + 1e-12) and np.all(mean <= hi + 1e-12)
    assert 0.0 < np.median(hi - lo) < 0.2  # informative, not degenerate
