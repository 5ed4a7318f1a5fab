"""Column intensities, neighbour normalisation and host/dopant/vacancy classes against ground truth.

Atom positions are the simulators' truth positions inside the field of view (what a fit
returns to within picometres); intensities are measured in the noisy simulated image.
The dopant-vs-host separation of the per-atom statistic is measured from the truth
classes, in units of the statistic's standard deviation, and the F1 criterion of the
issue (F1 >= 0.95 wherever the separation is >= 5) is asserted where it applies.
"""

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from atomine.atoms.classify import classify_atoms, expected_ratios
from atomine.atoms.intensity import column_intensity, normalise_by_neighbours
from atomine.errors import InputError
from atomine.simulate import make
from atomine.simulate.stm import random_occupancy, simulate_stm


def _in_view(table, shape):
    ny, nx = shape
    keep = (table.x_px > -0.5) & (table.x_px < nx - 0.5) & (table.y_px > -0.5) & (table.y_px < ny - 0.5)
    return table[keep].reset_index(drop=True).rename(columns={"cls": "true"})


def _f1(out, cls="dopant"):
    tp = int(((out.cls == cls) & (out.true == cls)).sum())
    fp = int(((out.cls == cls) & (out.true != cls)).sum())
    fn = int(((out.cls != cls) & (out.true == cls)).sum())
    return 2 * tp / (2 * tp + fp + fn)


def _separation(table, column="intensity_norm", cls="dopant"):
    st = table.groupby("true")[column].agg(["mean", "std"])
    pooled = np.sqrt((st.loc[cls, "std"] ** 2 + st.loc["host", "std"] ** 2) / 2)
    return abs(st.loc[cls, "mean"] - st.loc["host", "mean"]) / pooled


@pytest.fixture(scope="module", params=["haadf-perovskite", "haadf-mos2"])
def stem(request):
    sim = make(request.param, seed=0)
    atoms = _in_view(sim.truth.tables["atoms"], sim.data.shape)
    table = normalise_by_neighbours(column_intensity(sim.data, atoms), "intensity")
    return request.param, sim, table, classify_atoms(table)


def test_stem_dopants_and_vacancies_found(stem):
    name, sim, table, out = stem
    dop_sub = int(table.loc[table.true == "dopant", "sublattice"].iloc[0])
    on = table.sublattice == dop_sub
    sep = _separation(table[on])
    assert sep >= 5, f"{name}: separation {sep:.1f} sd; the preset should make dopants visible"
    assert _f1(out[on]) >= 0.95
    # vacancies (near-background columns) on whichever sublattice holds them
    vac = out.true == "vacancy"
    assert (out.cls[vac] == "vacancy").mean() >= 0.95
    assert ((out.cls == "vacancy") & ~vac).sum() <= 0.002 * len(out)


def test_sublattices_without_dopants_stay_host(stem):
    """BIC must not split a dopant-free sublattice into two classes."""
    _, _, table, out = stem
    for sub, g in out.groupby("sublattice"):
        if (g.true == "host").all():
            assert (g.cls == "host").mean() >= 0.99, sub
            assert out.attrs["classification"][int(sub)]["model"] == ["host"]


def test_mixture_means_match_truth_intensity_ratio(stem):
    """Fitted component means equal the class means of the statistic grouped by the truth classes.

    On the perovskite (columns 0.28 nm apart) the measured dopant/host ratio is also the
    simulator's true column-intensity ratio; in MoS2 the S2 columns 0.18 nm away add probe
    tails to every disk, which compresses the measured ratio, so only the first check applies.
    """
    name, sim, table, out = stem
    sub = int(table.loc[table.true == "dopant", "sublattice"].iloc[0])
    info = out.attrs["classification"][sub]
    by_truth = table[table.sublattice == sub].groupby("true")["intensity_norm"].mean()
    for cls in ("host", "dopant"):
        assert info["means"][info["model"].index(cls)] == pytest.approx(by_truth[cls], rel=0.01)
    if name == "haadf-perovskite":
        atoms = sim.truth.tables["atoms"]
        true_ratio = atoms.query("cls == 'dopant'")["intensity"].mean() / atoms.query(
            "cls == 'host' and sublattice == @sub")["intensity"].mean()
        fitted = info["means"][info["model"].index("dopant")] / info["means"][info["model"].index("host")]
        assert fitted == pytest.approx(true_ratio, rel=0.03)


def test_z_prior_ratio_is_the_simulators_z_n_law():
    """3 La in a 10-atom Sr column at n = 1.7: the simulator's own truth intensities give the same ratio."""
    r = expected_ratios({"host": [38] * 10, "dopant": [57] * 3 + [38] * 7}, exponent=1.7)
    atoms = make("haadf-perovskite", seed=0).truth.tables["atoms"]
    truth = (atoms.loc[atoms.species == "La3Sr7", "intensity"].iloc[0]
             / atoms.loc[atoms.species == "Sr10", "intensity"].iloc[0])
    assert r["dopant"] == pytest.approx(truth, rel=1e-6)
    assert r["host"] == 1.0


def test_z_prior_initialises_the_right_component(stem):
    name, _, table, _ = stem
    prior = ({0: {"host": [38] * 10, "dopant": [57] * 3 + [38] * 7}} if name == "haadf-perovskite"
             else {0: {"host": [42], "dopant": [74]}})
    out = classify_atoms(table, z_prior=prior, sublattices=[0])
    assert _f1(out[out.sublattice == 0]) >= 0.95
    assert set(out.loc[out.sublattice != 0, "cls"]) == {"unknown"}  # not analysed, no class of ours


def test_stm_subsurface_dopants_f1_vs_separation():
    """STM: sub-surface dopants at the A (hollow) sites, apparent-height statistic, F1 >= 0.95 where sep >= 5."""
    occ = random_occupancy((40, 40), 3 / 8, vacancy_fraction=0.01, seed=4)
    rows = []
    for snr in (0.5, 4.0):
        sim = simulate_stm(occ, shape=(352, 352), rotation_deg=3.0, snr=snr, seed=5)
        sites = sim.truth.tables["sites"]
        sites = sites[sites.in_image].reset_index(drop=True).rename(columns={"cls": "true"}).assign(sublattice=2)
        # A sites sit in surface hollows, not on features: the statistic is the dopant bump's height.
        t = column_intensity(sim.data, sites, radius_nm=0.1, background=None, polarity="bright")
        t = normalise_by_neighbours(t, "intensity", how="difference")
        out = classify_atoms(t, vacancy_level=None)
        rows.append((snr, _separation(t), _f1(out)))
    for snr, sep, f1 in rows:
        if sep >= 5:
            assert f1 >= 0.95, (snr, sep, f1)
    assert rows[-1][1] >= 5  # the preset's SNR 4 is in the asserted regime
    assert rows[0][2] < rows[-1][2]  # and F1 falls with the separation


@pytest.mark.parametrize("sep", [3.0, 5.0, 8.0])
def test_f1_against_separation_on_a_pure_mixture(sep):
    """5 % dopants at +sep sd from the host: mean F1 over seeds >= 0.95 from 5 sd up (the issue's criterion).

    The Bayes-optimal F1 for this mixture is about 0.98 at 5 sd and 0.9 at 3 sd.
    """
    f1s = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        n = 3000
        true = np.where(rng.random(n) < 0.05, "dopant", "host")
        stat = 1.0 + 0.03 * rng.standard_normal(n) + 0.03 * sep * (true == "dopant")
        table = pd.DataFrame({"intensity_norm": stat, "sublattice": 0, "true": true})
        out = classify_atoms(table, vacancy=False)
        f1s.append(_f1(out))
        # posteriors are calibrated: atoms called with p >= 0.99 are right >= 98 % of the time
        sure = out.p_cls >= 0.99
        assert (out.cls[sure] == out.true[sure]).mean() >= 0.98
    if sep >= 5:
        assert np.mean(f1s) >= 0.95
    else:
        assert np.mean(f1s) < 0.95  # honest: 3 sd is not enough for every atom


def test_ambiguous_atoms_are_unknown():
    rng = np.random.default_rng(1)
    host = 1 + 0.1 * rng.standard_normal(1200)
    dop = 1.4 + 0.1 * rng.standard_normal(800)
    # the posterior is 1/2 at 1.2 + 0.1^2 ln(60/40) / 0.4 = 1.210 (host 60 %, dopant 40 %)
    mid = np.array([1.205, 1.21, 1.215])
    table = pd.DataFrame({"intensity_norm": np.r_[host, dop, mid, np.nan], "sublattice": 0})
    out = classify_atoms(table, vacancy=False)
    assert (out.cls.iloc[-4:-1] == "unknown").all()
    assert out.p_cls.iloc[-4:-1].between(0.5, 0.6).all()
    assert out.cls.iloc[-1] == "unknown" and np.isnan(out.p_cls.iloc[-1])
    assert (out.cls.iloc[:1200] == "host").mean() > 0.9 and (out.cls.iloc[1200:2000] == "dopant").mean() > 0.9


def _gauss_image(shape=(200, 240), spacing=20, sigma=2.0, volume=1000.0, bg=5.0, gradient=0.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    img = np.full(shape, bg)
    ys, xs = np.mgrid[spacing: shape[0] - spacing + 1: spacing, spacing: shape[1] - spacing + 1: spacing]
    ys = ys.ravel() + 0.3
    xs = xs.ravel() - 0.2
    vols = volume * (1 + gradient * xs / shape[1])
    for y, x, v in zip(ys, xs, vols):
        img += v / (2 * np.pi * sigma**2) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    return img, pd.DataFrame({"x_px": xs, "y_px": ys, "x": xs, "y": ys, "sublattice": 0}), vols


def test_disk_intensity_is_the_enclosed_gaussian_volume():
    img, table, vols = _gauss_image()
    r = 6.0
    out = column_intensity(img, table, radius_nm=r, background=5.0)
    enclosed = vols * (1 - np.exp(-r**2 / (2 * 2.0**2)))
    np.testing.assert_allclose(out["intensity"], enclosed, rtol=0.01)
    ring = column_intensity(img, table, radius_nm=r)  # background from the ring between columns
    np.testing.assert_allclose(ring["intensity_background"], 5.0, atol=0.05)
    np.testing.assert_allclose(ring["intensity"], enclosed, rtol=0.02)


def test_dark_columns_give_the_same_intensity():
    """ABF-like polarity: an inverted image yields the same integrated column signal."""
    img, table, vols = _gauss_image()
    bright = column_intensity(img, table, radius_nm=6.0)
    dark = column_intensity(100.0 - img, table, radius_nm=6.0)  # polarity detected from the contrast
    np.testing.assert_allclose(dark["intensity"], bright["intensity"], rtol=1e-6)
    np.testing.assert_allclose(dark["intensity_background"], 95.0, atol=0.05)


def test_abf_vacancies_found_and_dopant_contrast_measured():
    """ABF: dark columns; empty columns stand out, La on Sr barely changes ABF contrast (no F1 claim)."""
    sim = make("abf-perovskite", seed=0)
    atoms = _in_view(sim.truth.tables["atoms"], sim.data.shape)
    table = normalise_by_neighbours(column_intensity(sim.data, atoms), "intensity")
    assert (table.groupby("sublattice")["intensity"].median() > 0).all()  # dips integrated as positive signal
    out = classify_atoms(table)
    vac = out.true == "vacancy"
    assert (out.cls[vac] != "host").all() and (out.cls[vac] == "vacancy").sum() >= vac.sum() // 2
    assert ((out.cls == "vacancy") & ~vac).sum() == 0
    dop_sub = table.loc[table.true == "dopant", "sublattice"].iloc[0]
    assert _separation(table[table.sublattice == dop_sub]) < 5  # below the F1 regime


def test_calibrated_and_dask_images_agree():
    img, table, vols = _gauss_image()
    import xarray as xr
    px = 0.02
    da_img = xr.DataArray(img, dims=("y", "x"), coords={"y": np.arange(img.shape[0]) * px,
                                                        "x": np.arange(img.shape[1]) * px})
    plain = column_intensity(img, table, radius_nm=6.0)
    cal = column_intensity(da_img, table, radius_nm=6.0 * px)
    np.testing.assert_allclose(cal["intensity"], plain["intensity"] * px**2, rtol=1e-9)  # value x nm^2
    lazy = column_intensity(da.from_array(img, chunks=64), table, radius_nm=6.0)
    np.testing.assert_allclose(lazy["intensity"], plain["intensity"], rtol=1e-12)


def test_gaussian_volume_and_failed_fits():
    t = pd.DataFrame({"x_px": [1.0, 2.0], "y_px": [1.0, 2.0], "amplitude": [10.0, 10.0], "sigma_x": [0.05, 0.05],
                      "sigma_y": [0.04, 0.04], "fit_ok": [True, False]})
    out = column_intensity(None, t)
    assert out["intensity"].iloc[0] == pytest.approx(2 * np.pi * 10 * 0.05 * 0.04)
    assert np.isnan(out["intensity"].iloc[1])  # flagged, not replaced


def test_neighbour_normalisation_cancels_a_thickness_gradient():
    img, table, vols = _gauss_image(gradient=0.8)
    raw = column_intensity(img, table, radius_nm=6.0, background=5.0)
    assert raw["intensity"].max() / raw["intensity"].min() > 1.5
    norm = normalise_by_neighbours(raw, "intensity", radius_nm=45.0)
    inner = (table.x_px > 50) & (table.x_px < 190)
    np.testing.assert_allclose(norm.loc[inner, "intensity_norm"], 1.0, atol=0.03)


def test_inputs_not_modified_and_edges_nan():
    img, table, _ = _gauss_image()
    table = pd.concat([table, pd.DataFrame({"x_px": [0.5], "y_px": [100.0], "x": [0.5], "y": [100.0],
                                            "sublattice": [0]})], ignore_index=True)
    before_t, before_i = table.copy(), img.copy()
    out = column_intensity(img, table, radius_nm=6.0)
    assert np.isnan(out["intensity"].iloc[-1])  # disk cut by the edge: not a false vacancy
    pd.testing.assert_frame_equal(table, before_t)
    np.testing.assert_array_equal(img, before_i)


@pytest.mark.parametrize("call, match", [
    (lambda t, i: column_intensity(i, t.iloc[:0]), "empty"),
    (lambda t, i: column_intensity(i, t.drop(columns="x_px")), "x_px"),
    (lambda t, i: column_intensity(i, t.assign(x_px=np.nan)), "NaN"),
    (lambda t, i: column_intensity(i, t, radius_nm=-1), "radius"),
    (lambda t, i: column_intensity(np.where(i > 20, np.nan, i), t, radius_nm=6.0), "NaN"),
    (lambda t, i: column_intensity(i, t, method="peak"), "method"),
    (lambda t, i: normalise_by_neighbours(t, "nope"), "no column"),
    (lambda t, i: normalise_by_neighbours(t.assign(v=1.0), "v", how="log"), "how"),
    (lambda t, i: classify_atoms(t.assign(intensity_norm=1.0), classes=("dopant",)), "classes"),
    (lambda t, i: classify_atoms(t.assign(intensity_norm=1.0), min_probability=1.5), "min_probability"),
    (lambda t, i: classify_atoms(t), "intensity_norm"),
    (lambda t, i: expected_ratios({"dopant": 57}), "host"),
])
def test_bad_input_is_a_clear_error(call, match):
    img, table, _ = _gauss_image()
    with pytest.raises(InputError, match=match):
        call(table, img)


def _clustered_table(seed: int):
    """A 60 x 60 lattice, 35 % dopants in compact clusters, on a smooth additive background."""
    rng = np.random.default_rng(seed)
    n = 60
    j, i = np.meshgrid(np.arange(n), np.arange(n))
    field = rng.standard_normal((n, n))
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(field, 1.5, mode="wrap")
    dopant = field > np.quantile(field, 0.65)
    background = 0.5 * np.sin(j / 17.0) + 0.3 * i / n  # slower than the clusters, 5x the noise
    stat = background + 0.1 * rng.standard_normal((n, n)) + 1.0 * dopant
    return pd.DataFrame({"x": 0.4 * j.ravel(), "y": 0.4 * i.ravel(), "intensity": stat.ravel(), "sublattice": 0,
                         "true": np.where(dopant.ravel(), "dopant", "host")})


@pytest.mark.parametrize("seed", [0, 1])
def test_host_referenced_normalisation_finds_dopants_inside_clusters(seed):
    """Against the plain neighbour median a cluster is its own reference and hides; host neighbours reveal it."""
    from atomine.atoms.classify import classify_host_referenced

    table = _clustered_table(seed)
    plain = classify_atoms(normalise_by_neighbours(table, "intensity", how="difference"), vacancy=False)
    refined = classify_host_referenced(table, "intensity", how="difference", vacancy=False)
    assert _f1(refined) > _f1(plain) + 0.1  # each pass frees the dopants at the clusters' rims
    # where the background varies less than the contrast, a global first pass gets them all
    first_global = classify_host_referenced(table, "intensity", how="difference", vacancy=False, start="global")
    assert _f1(first_global) >= 0.97
    assert 1 <= refined.attrs["reference_passes"] <= 10
    with pytest.raises(InputError, match="start"):
        classify_host_referenced(table, "intensity", start="median")


def test_a_skewed_host_is_one_class():
    """A sparse, broad one-sided tail of one species (ABF dips of columns fitted at the width cap)
    is not a dopant class: a second species images like the host, as narrow a distribution."""
    rng = np.random.default_rng(3)
    stat = 1.0 + 0.3 * rng.standard_normal(2000)
    tail = rng.random(2000) < 0.08
    stat[tail] += np.abs(1.2 * rng.standard_normal(tail.sum()))
    out = classify_atoms(pd.DataFrame({"intensity_norm": stat, "sublattice": 0}), vacancy=False)
    assert out.attrs["classification"][0]["model"] == ["host"]
    assert (out.cls == "host").mean() >= 0.99


def test_reference_mask_must_fit_the_table():
    table = _clustered_table(0)
    with pytest.raises(InputError, match="reference"):
        normalise_by_neighbours(table, "intensity", reference=np.ones(3, bool))
