"""Warren-Cowley order, pair correlation, clusters and composition profiles against ground truth.

Tables are the simulators' truth sites (STM A sites with their true classes) or
occupancy arrays of :mod:`atomine.simulate.stm` (random, Kawasaki-clustered, ordered)
laid on a lattice: exactly what a correct classification delivers. Exact references:
the simulator's own alpha_1 (``warren_cowley_alpha1``), checkerboard and stripe
arrangements, and identities between g(r) and alpha. The interval coverage over many
seeds is in ``benchmarks/validate_sro.py``.
"""

import numpy as np
import pandas as pd
import pytest

from atomine.atoms.segregation import cluster_sizes, composition_profile, pair_correlation, warren_cowley
from atomine.errors import InputError
from atomine.simulate import make
from atomine.simulate.stm import random_occupancy, segregated_occupancy, warren_cowley_alpha1

A = 0.4  # nm


def occ_table(occ, a=A):
    i, j = np.indices(occ.shape)
    names = np.array(["vacancy", "host", "dopant"])
    return pd.DataFrame({"x": j.ravel() * a, "y": i.ravel() * a, "x_px": j.ravel() * a / 0.02,
                         "y_px": i.ravel() * a / 0.02, "site_i": i.ravel(), "site_j": j.ravel(),
                         "cls": names[np.asarray(occ).ravel() + 1], "sublattice": 0})


@pytest.fixture(scope="module", params=["stm-lcmo", "stm-lcmo-segregated"])
def stm_sites(request):
    sim = make(request.param, seed=0)
    sites = sim.truth.tables["sites"]
    return request.param, sim, sites[sites.in_image].reset_index(drop=True)


def test_alpha1_equals_the_simulators_truth(stm_sites):
    name, sim, sites = stm_sites
    w = warren_cowley(sites, n_boot=200, n_perm=200)
    assert w.alpha.iloc[0] == pytest.approx(sim.truth.parameters["alpha1_in_image"], abs=1e-12)
    assert w.distance_nm.tolist() == pytest.approx([0.388, 0.388 * np.sqrt(2), 0.776], rel=1e-6)
    by_dist = warren_cowley(sites, by="distance", n_boot=200, n_perm=0)
    np.testing.assert_allclose(by_dist.alpha, w.alpha, atol=1e-12)
    assert (by_dist.n_pairs == w.n_pairs).all()
    if name == "stm-lcmo-segregated":
        assert (w.ci_low > 0).all() and (w.p_random < 0.01).all()  # clustered: positive, not chance
    else:
        assert (w.ci_low < 0).all() and (w.ci_high > 0).all()  # random: 0 inside every interval


def test_random_arrangements_cover_zero():
    """alpha_m of random arrangements is 0 within its 95 % interval in most seeds; reference spread ~ 1/sqrt(N)."""
    inside, sds = [], []
    for seed in range(20):
        w = warren_cowley(occ_table(random_occupancy((40, 40), 3 / 8, seed=seed)), n_boot=300, n_perm=100,
                          random_state=seed)
        inside.append(((w.ci_low <= 0) & (w.ci_high >= 0)).to_numpy())
        sds.append(w.random_sd.iloc[0] * np.sqrt(w.n_pairs.iloc[0]))
    assert np.mean(inside) >= 0.85  # binomial at 0.95: P(< 0.85 of 60) < 0.5 %
    assert np.mean(sds) == pytest.approx(1.0, abs=0.15)  # sd of alpha_1 for random = 1 / sqrt(N_pairs)


@pytest.mark.parametrize("j_nn, sign", [(-0.8, +1), (+0.8, -1)])
def test_clustered_and_ordered_arrangements_have_the_right_sign(j_nn, sign):
    occ = segregated_occupancy((40, 40), 0.5, j_nn=j_nn, sweeps=100, seed=3)
    w = warren_cowley(occ_table(occ), shells=(1,), n_boot=300, n_perm=100)
    assert w.alpha.iloc[0] == pytest.approx(warren_cowley_alpha1(occ), abs=1e-12)
    assert sign * w.ci_low.iloc[0] > 0 and sign * w.ci_high.iloc[0] > 0
    assert w.p_random.iloc[0] < 0.01


def test_checkerboard_exact_values():
    i, j = np.indices((20, 20))
    occ = ((i + j) % 2).astype(np.int8)
    w = warren_cowley(occ_table(occ), n_boot=100, n_perm=20)
    np.testing.assert_allclose(w.alpha, [-1.0, 1.0, 1.0], atol=1e-12)  # nn unlike; diagonals, 2nd nn like
    cl = cluster_sizes(occ_table(occ), n_perm=10)
    assert cl.loc[cl["count"] > 0, "size"].tolist() == [1] and cl["count"].sum() == 200


def test_hexagonal_site_shells_mos2():
    """Hexagonal M sublattice of MoS2: shells at a, sqrt(3) a, 2 a from the site lattice, as from distances."""
    sim = make("haadf-mos2", seed=0)
    t = sim.truth.tables["atoms"]
    ny, nx = sim.data.shape
    t = t[(t.sublattice == 0) & t.x_px.between(-0.5, nx - 0.5) & t.y_px.between(-0.5, ny - 0.5)]
    w = warren_cowley(t, n_boot=100, n_perm=0)
    np.testing.assert_allclose(w.distance_nm, 0.316 * np.array([1, np.sqrt(3), 2]), rtol=1e-6)
    d = warren_cowley(t, by="distance", n_boot=100, n_perm=0)
    np.testing.assert_allclose(d.alpha, w.alpha, atol=1e-12)


def test_pair_correlation_identities(stm_sites):
    """g = 1 on average for random; g_dh(r_1) = (1 - alpha_1) (n - 1) / n exactly; g_dd(r_1) > 1 when clustered."""
    name, _, sites = stm_sites
    w = warren_cowley(sites, shells=(1,), n_boot=100, n_perm=0)
    g_dh = pair_correlation(sites, ("dopant", "host"))
    n = w.attrs["n_sites"]
    nn = g_dh.iloc[(g_dh.r_nm - 0.388).abs().argmin()]
    assert nn.g == pytest.approx((1 - w.alpha.iloc[0]) * (n - 1) / n, rel=1e-9)
    g_dd = pair_correlation(sites)
    filled = g_dd[g_dd.n_all > 500]
    if name == "stm-lcmo":
        assert filled.g.mean() == pytest.approx(1.0, abs=0.05)
    else:
        assert filled.g.iloc[0] > 1.5 and filled.g.iloc[-1] < filled.g.iloc[0]  # decays with distance


def test_cluster_sizes_conserve_dopants_and_detect_clustering(stm_sites):
    name, _, sites = stm_sites
    cl = cluster_sizes(sites, n_perm=30)
    assert (cl["size"] * cl["count"]).sum() == (sites.cls == "dopant").sum()
    assert (cl["size"] * cl["count_random"]).sum() == pytest.approx((sites.cls == "dopant").sum())
    ratio = cl.attrs["mean_size"] / cl.attrs["mean_size_random"]
    assert (ratio > 2) if name == "stm-lcmo-segregated" else (0.5 < ratio < 2)


def test_composition_profile_line_and_mask():
    occ = np.zeros((30, 30), dtype=np.int8)
    occ[:, :10] = 1  # dopants in the left third: an interface at x = 9.5 a
    t = occ_table(occ)
    x_if = 9.5 * A
    prof = composition_profile(t, line=((x_if, 0.0), (x_if, 1.0)), bin_nm=A)
    # line direction +y: normal (-1, 0), so the dopant (left) side is at positive distance
    assert prof.loc[prof.distance_nm > 0, "fraction"].eq(1.0).all()
    assert prof.loc[prof.distance_nm < 0, "fraction"].eq(0.0).all()
    assert prof.n_sites.sum() == 900 and (prof.n_sites == 30).all()
    mask = np.zeros((600, 600), dtype=bool)  # 0.02 nm pixels: left third of the crystal
    mask[:, : int(round(x_if / 0.02))] = True
    pm = composition_profile(t, mask=mask, pixel_size_nm=0.02, bin_nm=A)
    assert pm.loc[pm.distance_nm < 0, "fraction"].eq(1.0).all()
    assert pm.loc[pm.distance_nm > 0, "fraction"].eq(0.0).all()
    pe = composition_profile(t, mask=mask, bin_nm=A)  # pixel size from the table's x against x_px
    pd.testing.assert_frame_equal(pe, pm)


def test_vacancies_and_unknowns_are_holes_and_input_untouched():
    occ = random_occupancy((30, 30), 0.3, vacancy_fraction=0.05, seed=2)
    t = occ_table(occ)
    before = t.copy()
    w = warren_cowley(t, shells=(1,), n_boot=100, n_perm=0)
    assert w.alpha.iloc[0] == pytest.approx(warren_cowley_alpha1(occ), abs=1e-12)  # vacancies excluded alike
    pd.testing.assert_frame_equal(t, before)


@pytest.mark.parametrize("call, match", [
    (lambda t: warren_cowley(t.drop(columns="cls")), "classify"),
    (lambda t: warren_cowley(t.assign(cls="host")), "both host and dopant"),
    (lambda t: warren_cowley(pd.concat([t, t.iloc[:1]])), "share one"),
    (lambda t: warren_cowley(t, shells=(0,)), "shells"),
    (lambda t: warren_cowley(t, by="grid"), "by must"),
    (lambda t: warren_cowley(t, n_boot=3), "n_boot"),
    (lambda t: warren_cowley(t, block_size=30), "blocks"),
    (lambda t: warren_cowley(t.iloc[:0]), "empty"),
    (lambda t: warren_cowley(t.assign(x=np.nan)), "NaN"),
    (lambda t: pair_correlation(t, ("dopant", "vacancy")), "pair"),
    (lambda t: composition_profile(t), "exactly one"),
    (lambda t: composition_profile(t, line=((0, 0), (0, 0))), "distinct"),
    (lambda t: composition_profile(t, mask=np.zeros((5, 5), bool)), "both True and False"),
    (lambda t: cluster_sizes(t, cls="vacancy"), "cls"),
])
def test_bad_input_is_a_clear_error(call, match):
    t = occ_table(random_occupancy((20, 20), 0.3, seed=1))
    with pytest.raises(InputError, match=match):
        call(t)
