"""Pure helpers of benchmarks/validate_atoms_abtem.py, checked against answers known by construction."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

MODULE = Path(__file__).resolve().parents[2] / "benchmarks" / "validate_atoms_abtem.py"
A = 3.905


@pytest.fixture(scope="module")
def v():
    spec = importlib.util.spec_from_file_location("atomine_validate_atoms_abtem", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # abTEM is imported only inside run(), so this needs no abTEM
    return module


def _all_sites(n):
    u, v = np.meshgrid(np.arange(2 * n), np.arange(2 * n), indexing="ij")
    return u.ravel() * A / 2, v.ravel() * A / 2


def test_match_to_sites_keeps_each_site_of_a_periodically_extended_image_once(v):
    n = 3
    x, y = _all_sites(n)
    rng = np.random.default_rng(0)
    dx, dy = rng.uniform(-0.3, 0.3, x.size), rng.uniform(-0.3, 0.3, x.size)
    # the same displaced columns in the period and in its 8 periodic copies (a larger scan)
    shifts = [(i * n * A, j * n * A) for i in (-1, 0, 1) for j in (-1, 0, 1)]
    xs = np.concatenate([x + dx + sx for sx, _ in shifts])
    ys = np.concatenate([y + dy + sy for _, sy in shifts])
    m = v.match_to_sites(xs, ys, A, n)
    hit = m[m.matched]
    assert len(hit) == x.size and not hit.duplicated(["u", "v"]).any()
    assert hit.site.value_counts().to_dict() == {"O": 2 * n * n, "Sr": n * n, "TiO": n * n}
    own = m.iloc[4 * x.size:5 * x.size]  # the unshifted copy is the one inside the period
    assert own.matched.all()
    np.testing.assert_allclose(own.dx, dx, atol=1e-12)
    np.testing.assert_allclose(own.dy, dy, atol=1e-12)


def test_match_to_sites_names_perovskite_columns_and_rejects_far_positions(v):
    # the last point is a/4 - 0.05 A from the nearest grid line in x and y: 1.31 A > a/4 from every site
    m = v.match_to_sites([0.0, A / 2, A / 2, 0.0, A / 4 - 0.05], [0.0, A / 2, 0.0, A / 2, A / 4 - 0.05], A, 2)
    assert m.site.tolist()[:4] == ["Sr", "TiO", "O", "O"]
    assert m.matched.tolist() == [True, True, True, True, False]  # more than a/4 from every site


def test_choose_la_columns_is_seeded_and_respects_fraction_and_counts(v):
    a = v.choose_la_columns(6, 0.15, (2, 3), seed=5)
    assert a == v.choose_la_columns(6, 0.15, (2, 3), seed=5)
    assert len(a) == round(0.15 * 36)
    assert set(a.values()) <= {2, 3}
    assert all(0 <= i < 6 and 0 <= j < 6 for i, j in a)


def test_detection_scores_from_known_counts(v):
    pred = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    truth = np.array([1, 1, 0, 1, 0, 0, 0], bool)  # tp 2, fp 1, fn 1
    s = v.detection_scores(pred, truth)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 / 3)
    assert np.isnan(v.detection_scores([False, False], [False, False])["f1"])


def test_separation_sd_in_host_standard_deviations(v):
    host = np.array([0.9, 1.0, 1.1, 1.0])
    x = np.r_[host, 1.5, 1.7]
    d = np.r_[np.zeros(4, bool), True, True]
    assert v.separation_sd(x, d) == pytest.approx((1.6 - 1.0) / host.std(ddof=1))


def test_column_offsets_are_weighted_means_over_atoms_and_configurations(v):
    ideal = np.array([[0.0, 0.0], [0.0, 0.0], [A / 2, A / 2]])
    c1 = ideal + [[0.1, 0.0], [-0.1, 0.2], [0.05, 0.0]]
    c2 = ideal + [[0.1, 0.0], [-0.1, 0.0], [-0.05, 0.02]]
    off = v.column_offsets(ideal, [c1, c2], np.array([1.0, 3.0, 1.0]), A, 2).set_index(["u", "v"])
    # column (0, 0): x (1 * 0.1 + 3 * -0.1) / 4, y (3 * 0.1) / 4
    assert off.loc[(0, 0), "ox"] == pytest.approx(-0.05) and off.loc[(0, 0), "oy"] == pytest.approx(0.075)
    assert off.loc[(1, 1), "ox"] == pytest.approx(0.0) and off.loc[(1, 1), "oy"] == pytest.approx(0.01)


def test_pad_periodic_is_a_larger_scan_of_the_same_periodic_image(v):
    period, n, pad = 2.0, 40, 7
    f = lambda x, y: np.cos(2 * np.pi * x / period) + 0.5 * np.sin(4 * np.pi * y / period)  # noqa: E731
    k = np.arange(n) * period / n
    y, x = np.meshgrid(k, k, indexing="ij")
    kk = np.arange(-pad, n + pad) * period / n
    yy, xx = np.meshgrid(kk, kk, indexing="ij")
    np.testing.assert_allclose(v.pad_periodic(f(x, y), pad), f(xx, yy), atol=1e-12)
