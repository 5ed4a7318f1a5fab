"""Local-configuration classes, histograms and effective sample size against exact results.

Ground truth used here, computed independently of the code under test:
- class counts by Burnside's lemma (cycle structure of the point-group operations);
- for independent sites with dopant fraction c, P(class) = multiplicity c^k (1 - c)^(n - k);
- exact invariance of histograms under the lattice point group (rotated / mirrored grids);
- the true design effect of overlapping neighbourhoods from many independent lattices.
"""

from math import gcd

import numpy as np
import pytest
from scipy import stats

from atomine.errors import InputError
from atomine.thermo.configurations import (descriptor, effective_sample_size, pool_classes,
                                           statistical_distance)
from atomine.thermo.lattice import Lattice

DESCRIPTORS = [(k, n) for k in ("square", "triangular") for n in ("nn", "nnn", "plaquette", "shell_counts")]


def iid(shape, c, seed):
    return np.where(np.random.default_rng(seed).random(shape) < c, 1, -1).astype(np.int8)


# --- class enumeration ------------------------------------------------------------------


def burnside_ring(n_ring: int, rotations_only=False) -> int:
    """2-colourings of an n-gon ring under its dihedral group (Burnside's lemma)."""
    fixed = sum(2 ** gcd(k, n_ring) for k in range(n_ring))
    if not rotations_only:  # n even: n/2 mirrors through two beads, n/2 through two edges
        fixed += n_ring // 2 * 2 ** (n_ring // 2 + 1) + n_ring // 2 * 2 ** (n_ring // 2)
    return fixed // (n_ring if rotations_only else 2 * n_ring)


def test_nn_class_counts_match_burnside():
    # centre (2 states) x ring colourings under D4 (square) / D6 (hexagon)
    assert descriptor("square", "nn").n_classes == 2 * burnside_ring(4) == 12
    assert descriptor("triangular", "nn").n_classes == 2 * burnside_ring(6) == 26


def test_square_3x3_block_class_count_matches_burnside():
    # D4 on the 3x3 block: identity 2^9; rotations 90/270: centre + two 4-cycles -> 2^3;
    # rotation 180: centre + four 2-cycles -> 2^5; four mirrors: 3 fixed + three 2-cycles -> 2^6
    expected = (2**9 + 2 * 2**3 + 2**5 + 4 * 2**6) // 8
    assert descriptor("square", "nnn").n_classes == expected == 102
    assert descriptor("square", "plaquette").n_classes == expected


def test_shell_counts_class_numbers():
    assert descriptor("square", "shell_counts").n_classes == 2 * 5**3
    assert descriptor("triangular", "shell_counts").n_classes == 2 * 7**3
    assert descriptor("square", "shell_counts", n_shells=1).n_classes == 10


@pytest.mark.parametrize("kind,name", DESCRIPTORS)
def test_multiplicities_partition_all_configurations(kind, name):
    d = descriptor(kind, name)
    n = len(d.offsets)
    assert d.multiplicity().sum() == 2**n
    assert len(d.labels) == len(set(d.labels)) == d.n_classes
    assert tuple(d.offsets[0]) == (0, 0)


@pytest.mark.parametrize("kind,name", DESCRIPTORS)
def test_each_representative_classifies_as_its_own_class(kind, name):
    d = descriptor(kind, name)
    r = d.reach
    reps = d.representatives()
    n = len(reps)
    # every class on its own patch of a host background, patches 2r+1 apart
    size = 2 * r + 1
    grid = -np.ones((n * size, size), dtype=np.int8)
    centres = np.arange(n) * size + r
    for k in range(n):
        grid[centres[k] + d.offsets[:, 0], r + d.offsets[:, 1]] = reps[k]
    cls = d.classify(grid)
    np.testing.assert_array_equal(cls[centres, r], np.arange(n))


def test_hand_built_square_neighbourhoods():
    d = descriptor("square", "nn")
    lab = {s: k for k, s in enumerate(d.labels)}
    s = -np.ones((5, 5), dtype=np.int8)
    s[2, 2] = 1
    s[1, 2] = s[3, 2] = 1  # opposite neighbours of the centre
    s[2, 4] = 0  # a masked site
    cls = d.classify(s)
    assert cls[2, 2] == lab["c=1 n1=2 (dopant pairs at 2 a)"]
    assert cls[1, 1] == lab["c=0 n1=1"]  # (1,2) is its only dopant neighbour
    assert cls[1, 2] == lab["c=1 n1=1"]
    assert cls[2, 3] == -1  # a neighbour is masked
    assert (cls[0] == -1).all() and (cls[:, 0] == -1).all()  # open edges
    s[3, 2], s[2, 1] = -1, 1  # now adjacent (90 degrees)
    assert d.classify(s)[2, 2] == lab["c=1 n1=2 (dopant pairs at 1.41 a)"]
    # the histogram of the 3x3 interior, counted by hand: (1,1) c0 n1=2 adjacent, (1,2) c1n1,
    # (1,3) c0n1, (2,1) c1n1, (2,2) c1 n1=2 adjacent, (2,3) masked neighbour, (3,1) c0n1,
    # (3,2) c0n1, (3,3) c0n0
    h = d.histogram(s)
    assert h.sum() == 8
    assert h[lab["c=0 n1=1"]] == 3 and h[lab["c=1 n1=1"]] == 2 and h[lab["c=0 n1=0"]] == 1
    assert h[lab["c=1 n1=2 (dopant pairs at 1.41 a)"]] == 1 and h[lab["c=0 n1=2 (dopant pairs at 1.41 a)"]] == 1


def test_shell_counts_index_formula():
    d = descriptor("square", "shell_counts")
    s = -np.ones((7, 7), dtype=np.int8)
    s[3, 3] = 1
    s[3, 4] = 1  # shell 1
    s[2, 2] = s[4, 4] = s[2, 4] = 1  # shell 2
    s[5, 3] = 1  # shell 3
    assert d.classify(s)[3, 3] == 1 * 125 + 1 * 25 + 3 * 5 + 1
    assert d.labels[1 * 125 + 1 * 25 + 3 * 5 + 1] == "c=1 n1=1 n2=3 n3=1"


def test_triangular_nn_uses_the_sixty_degree_neighbours():
    d = descriptor("triangular", "nn")
    s = -np.ones((5, 5), dtype=np.int8)
    s[3, 1] = 1  # offset (1, -1) of (2, 2): a first neighbour on the 60-degree basis
    s[3, 3] = 1  # offset (1, 1): second shell, not in "nn"
    assert d.labels[d.classify(s)[2, 2]] == "c=0 n1=1"


def test_plaquette_equals_nnn_on_the_square_lattice():
    s = iid((40, 40), 0.4, 3)
    a = descriptor("square", "plaquette").classify(s, periodic=True).ravel()
    b = descriptor("square", "nnn").classify(s, periodic=True).ravel()
    pairs = set(zip(a.tolist(), b.tolist()))
    assert len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))  # a bijection of classes


def test_shell_counts_aggregates_nn_classes():
    s = iid((50, 50), 0.35, 4)
    nn, sc = descriptor("triangular", "nn"), descriptor("triangular", "shell_counts", n_shells=1)
    h_nn, h_sc = nn.histogram(s), sc.histogram(s)
    pooled = np.zeros(sc.n_classes, dtype=np.int64)
    for k, lab in enumerate(nn.labels):
        key = lab.split(" (")[0]
        pooled[sc.labels.index(key)] += h_nn[k]
    np.testing.assert_array_equal(pooled, h_sc)


# --- histograms against i.i.d. probabilities ------------------------------------------------


def iid_probabilities(d, c):
    k = (d.representatives() > 0).sum(axis=1)
    n = len(d.offsets)
    return d.multiplicity() * c**k * (1 - c) ** (n - k)


@pytest.mark.parametrize("kind,name,spacing", [("square", "nn", 3), ("triangular", "nn", 3),
                                               ("square", "shell_counts", 5), ("triangular", "nnn", 5)])
def test_independent_neighbourhoods_follow_the_iid_class_probabilities(kind, name, spacing):
    # centres on a sparse sub-grid: neighbourhoods do not overlap, counts are exactly multinomial
    d = descriptor(kind, name)
    c = 0.3
    s = iid((400, 400), c, 11)
    i, j = np.indices(s.shape)
    h = d.histogram(s, mask=(i % spacing == 0) & (j % spacing == 0))
    p = iid_probabilities(d, c)
    assert np.isclose(p.sum(), 1.0)
    expected = h.sum() * p
    bins = pool_classes(expected, 5.0)
    obs, exp = np.bincount(bins, weights=h), np.bincount(bins, weights=expected)
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert stats.chi2.sf(chi2, len(obs) - 1) > 1e-4


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_overlapping_histogram_matches_iid_within_its_effective_sample_size(kind):
    d = descriptor(kind, "nn")
    c = 0.25
    s = iid((256, 256), c, 12)
    h = d.histogram(s, periodic=True)
    n_eff, deff = effective_sample_size(s, d, periodic=True)
    assert deff > 1.1  # overlapping neighbourhoods: positively correlated counts
    dist = statistical_distance(h, iid_probabilities(d, c))
    assert 4 * n_eff * dist**2 < stats.chi2.ppf(0.9999, d.n_classes - 1)


# --- point-group invariance ---------------------------------------------------------------


def clustered(shape, seed):
    """An anisotropic, correlated occupancy (streaks along one axis) so symmetry tests are sharp."""
    rng = np.random.default_rng(seed)
    base = rng.random(shape)
    smooth = base + np.roll(base, 1, axis=1) + np.roll(base, 2, axis=1) + 0.5 * np.roll(base, 1, axis=0)
    s = np.where(smooth > np.quantile(smooth, 0.6), 1, -1).astype(np.int8)
    s[rng.random(shape) < 0.03] = 0  # a few masked sites
    return s


@pytest.mark.parametrize("name", ["nn", "nnn", "plaquette", "shell_counts"])
@pytest.mark.parametrize("periodic", [True, False])
def test_square_histograms_are_invariant_under_d4(name, periodic):
    d = descriptor("square", name)
    s = clustered((30, 30), 5)
    ref = d.histogram(s, periodic=periodic)
    for g in (np.rot90(s), np.rot90(s, 2), np.rot90(s, 3), s.T, s[::-1], s[:, ::-1], np.rot90(s).T):
        np.testing.assert_array_equal(d.histogram(np.ascontiguousarray(g), periodic=periodic), ref)
    assert d.histogram(s[::-1], periodic=periodic).sum() > 0


def rotate60(s):
    """The 60-degree rotation a1 -> a2, a2 -> a2 - a1 on a periodic L x L triangular grid."""
    n = s.shape[0]
    i, j = np.indices(s.shape)
    out = np.empty_like(s)
    out[(-j) % n, (i + j) % n] = s[i, j]
    return out


@pytest.mark.parametrize("name", ["nn", "nnn", "shell_counts"])
def test_triangular_histograms_are_invariant_under_d6(name):
    d = descriptor("triangular", name)
    s = clustered((24, 24), 6)
    ref = d.histogram(s, periodic=True)
    g = s
    for _ in range(5):
        g = rotate60(g)
        np.testing.assert_array_equal(d.histogram(g, periodic=True), ref)
    np.testing.assert_array_equal(d.histogram(np.ascontiguousarray(s.T), periodic=True), ref)
    assert not np.array_equal(rotate60(s), s)


def test_triangular_plaquette_is_invariant_under_its_subgroup_only():
    d = descriptor("triangular", "plaquette")
    s = clustered((24, 24), 7)
    ref = d.histogram(s, periodic=True)
    np.testing.assert_array_equal(d.histogram(np.ascontiguousarray(s.T), periodic=True), ref)
    np.testing.assert_array_equal(d.histogram(np.ascontiguousarray(s[::-1, ::-1]), periodic=True), ref)
    # the block holds offsets (1, 1) and (-1, -1) but not the other second neighbours:
    # a 60-degree rotation is no symmetry of the descriptor
    assert not np.array_equal(d.histogram(rotate60(s), periodic=True), ref)


def test_histograms_of_a_stack_equal_the_single_histograms():
    d = descriptor("triangular", "nnn")
    snaps = np.stack([clustered((20, 20), k) for k in range(6)]).reshape(2, 3, 20, 20)
    h = d.histograms(snaps)
    assert h.shape == (6, d.n_classes) and h.dtype == np.int64
    for k, s in enumerate(snaps.reshape(6, 20, 20)):
        np.testing.assert_array_equal(h[k], d.histogram(s, periodic=True))
    np.testing.assert_array_equal(d.histograms(snaps, periodic=False)[4], d.histogram(snaps[1, 1]))


def test_lattice_input_and_inputs_unchanged():
    s = clustered((16, 16), 8)
    before = s.copy()
    d = descriptor("square", "nn")
    np.testing.assert_array_equal(d.classify(Lattice(s, kind="square")), d.classify(s))
    np.testing.assert_array_equal(s, before)
    with pytest.raises(InputError, match="triangular"):
        d.classify(Lattice(s, kind="triangular"))


# --- effective sample size -------------------------------------------------------------------


@pytest.mark.parametrize("kind,c", [("square", 0.5), ("square", 0.25), ("triangular", 0.3)])
def test_design_effect_matches_the_brute_force_truth(kind, c):
    d = descriptor(kind, "nn")
    rng = np.random.default_rng(21)
    many = np.where(rng.random((2000, 32, 32)) < c, 1, -1).astype(np.int8)
    h = d.histograms(many, periodic=False)
    n = h.sum(axis=1)[0]
    f = h / n
    p = f.mean(axis=0)
    true_d = f.var(axis=0, ddof=1).sum() * n / (p @ (1 - p))
    assert true_d > 1.2  # the counts really are correlated
    est = np.array([effective_sample_size(many[k], d, tiles=4) for k in range(150)])
    assert abs(est[:, 1].mean() / true_d - 1) < 0.15
    np.testing.assert_allclose(est[:, 0] * est[:, 1], n)  # n_eff = N / d


def test_design_effect_grows_when_sites_come_in_correlated_blocks():
    # 2x2 blocks of equal spins: each block is one independent draw, so far fewer
    # independent neighbourhoods than on an i.i.d. lattice (averaged over seeds: one
    # 4x4-tile estimate is noisy)
    d = descriptor("square", "nn")
    d_iid = np.mean([effective_sample_size(iid((64, 64), 0.4, k), d)[1] for k in range(10)])
    d_blk = np.mean([effective_sample_size(np.kron(iid((32, 32), 0.4, k), np.ones((2, 2), np.int8)), d)[1]
                     for k in range(10)])
    assert d_blk > 1.5 * d_iid


# --- statistical distance and pooling --------------------------------------------------------


def test_statistical_distance_exact_values():
    assert statistical_distance([1, 2, 3], [10, 20, 30]) == pytest.approx(0.0, abs=1e-7)
    assert statistical_distance([1, 0], [0, 1]) == pytest.approx(np.pi / 2)
    assert statistical_distance([1, 0], [0.5, 0.5]) == pytest.approx(np.pi / 4)
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.6, 0.3])
    assert statistical_distance(p, q) == pytest.approx(np.arccos(np.sqrt(p * q).sum()))


@pytest.mark.parametrize("p,q", [([1, -1], [1, 1]), ([np.nan, 1], [1, 1]), ([], []), ([1, 2], [1, 2, 3]),
                                 ([0, 0], [1, 1])])
def test_statistical_distance_errors(p, q):
    with pytest.raises(InputError):
        statistical_distance(p, q)


def test_pool_classes():
    np.testing.assert_array_equal(pool_classes([10, 20, 30]), [0, 1, 2])
    np.testing.assert_array_equal(pool_classes([10, 2, 30, 4]), [0, 2, 1, 2])  # rare bin 6 >= 5
    np.testing.assert_array_equal(pool_classes([10, 2, 30, 1]), [0, 0, 1, 0])  # rare bin 3 joins smallest
    np.testing.assert_array_equal(pool_classes([1, 2]), [0, 0])
    with pytest.raises(InputError):
        pool_classes([1, -2])


# --- errors -------------------------------------------------------------------------------


def test_descriptor_errors():
    with pytest.raises(InputError, match="unknown descriptor"):
        descriptor("square", "hexagon")
    with pytest.raises(InputError, match="unknown lattice"):
        descriptor("kagome", "nn")
    with pytest.raises(InputError, match="n_shells"):
        descriptor("square", "shell_counts", n_shells=4)
    with pytest.raises(InputError, match="n_shells"):
        descriptor("square", "nn", n_shells=2)
    d = descriptor("square", "nnn")
    with pytest.raises(InputError, match="only"):
        d.classify(np.full((5, 5), 2))
    with pytest.raises(InputError, match="shape"):
        d.classify(np.ones((2, 5, 5), dtype=np.int8))
    with pytest.raises(InputError, match="too small"):
        d.histogram(np.ones((2, 8), dtype=np.int8), periodic=True)
    with pytest.raises(InputError, match="mask"):
        d.histogram(np.ones((5, 5), dtype=np.int8), mask=np.ones((4, 4), bool))
    with pytest.raises(InputError, match="tiles"):
        effective_sample_size(iid((16, 16), 0.5, 0), d, tiles=1)
    with pytest.raises(InputError, match="one class"):
        effective_sample_size(np.ones((16, 16), dtype=np.int8), d)
