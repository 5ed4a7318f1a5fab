"""Neighbour vectors and vector pair distribution functions, against exact lattice geometry."""

import numpy as np
import pandas as pd
import pytest

from atomine.atoms.vector_pdf import median_nn_distance, neighbour_vectors, vector_pdf
from atomine.errors import InputError

A = 0.3905  # SrTiO3 lattice parameter, nm


def perovskite(n: int = 12, a: float = A) -> pd.DataFrame:
    """Perovskite [001] projection: A (0, 0), B (1/2, 1/2), O (1/2, 0) and (0, 1/2), sublattices 0..3."""
    motif = np.array([[0.0, 0.0], [0.5, 0.5], [0.5, 0.0], [0.0, 0.5]])
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    rows = []
    for s, (u, v) in enumerate(motif):
        rows.append(pd.DataFrame({"x": (j.ravel() + u) * a, "y": (i.ravel() + v) * a, "sublattice": s}))
    return pd.concat(rows, ignore_index=True)


def square(n: int, a: float) -> np.ndarray:
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return np.column_stack([j.ravel() * a, i.ravel() * a])


def test_square_lattice_vectors_are_the_four_translations():
    xy = square(20, 0.3)
    vec, i, j = neighbour_vectors(xy, 0.35, return_pairs=True)
    np.testing.assert_allclose(vec, xy[j] - xy[i])
    # Every vector is one of +-a x, +-a y, and each ordered pair appears once with its opposite.
    lengths = np.hypot(vec[:, 0], vec[:, 1])
    np.testing.assert_allclose(lengths, 0.3, atol=1e-12)
    assert len(vec) == 2 * (2 * 20 * 19)  # 2 directions x (horizontal + vertical bonds)
    np.testing.assert_allclose(np.sort(vec[:, 0]), np.sort(-vec[:, 0]), atol=1e-12)
    # Interior atoms have exactly four neighbours.
    counts = np.bincount(i, minlength=len(xy)).reshape(20, 20)
    assert np.all(counts[1:-1, 1:-1] == 4) and counts[0, 0] == 2


def test_cross_sublattice_vectors_a_to_b_are_the_cube_diagonals():
    t = perovskite()
    vec = neighbour_vectors(t, 0.3, pairs_of=(0, 1))  # A -> B
    np.testing.assert_allclose(np.abs(vec), A / 2, atol=1e-12)
    assert len(vec) == 4 * 11 * 11 + 2 * 2 * 11 + 1  # interior, edge rows and the corner atom
    same = neighbour_vectors(t, 0.3, pairs_of=(0, 0))  # A -> A: only the a translations
    np.testing.assert_allclose(np.sort(np.hypot(*same.T)), A, atol=1e-12)
    mask = t["sublattice"].to_numpy() == 0
    np.testing.assert_allclose(neighbour_vectors(t, 0.3, pairs_of=(mask, np.flatnonzero(~mask))).shape, (
        len(neighbour_vectors(t, 0.3, pairs_of=(0, 1))) + len(neighbour_vectors(t, 0.3, pairs_of=(0, 2)))
        + len(neighbour_vectors(t, 0.3, pairs_of=(0, 3))), 2))


def test_vector_pdf_is_normalised_per_atom_and_peaks_at_lattice_vectors():
    xy = square(30, 0.3)
    pdf = vector_pdf(xy, 0.45, bin_nm=0.01)
    assert pdf.dims == ("dy", "dx") and pdf.coords["dx"].attrs["units"] == "nm"
    # Sum = mean number of neighbours within the radius (4 bonds + 4 diagonals, minus edges).
    n_pairs = len(neighbour_vectors(xy, 0.45))
    assert float(pdf.sum()) == pytest.approx(n_pairs / len(xy), rel=1e-12)
    assert float(pdf.sel(dx=0.3, dy=0.0)) == pytest.approx(29 / 30, rel=1e-12)  # all but the last column
    assert float(pdf.sel(dx=0.3, dy=0.3)) == pytest.approx((29 / 30) ** 2, rel=1e-12)
    assert float(pdf.sel(dx=0.15, dy=0.0)) == 0.0
    # Default bin: 1/20 of the nearest-neighbour distance.
    assert vector_pdf(xy, 0.45).attrs["bin_nm"] == pytest.approx(0.3 / 20)


def test_vector_pdf_peak_position_follows_picometre_shifts():
    """A 3 pm shift of the B sublattice moves the A->B peak centroid by 3 pm."""
    t = perovskite(16)
    t.loc[t["sublattice"] == 1, "x"] += 0.003
    pdf = vector_pdf(t, 0.3, bin_nm=0.001, pairs_of=(0, 1))
    win = pdf.sel(dx=slice(0.15, 0.25), dy=slice(0.15, 0.25))
    cx = float((win * win.dx).sum() / win.sum())
    assert cx == pytest.approx(A / 2 + 0.003, abs=5e-4)


def test_vector_pdf_by_sublattice_separates_pairs():
    t = perovskite()
    pdf = vector_pdf(t, 0.45, bin_nm=0.01, by="sublattice")
    assert pdf.dims == ("from_sublattice", "to_sublattice", "dy", "dx")
    near = dict(dx=A / 2, dy=A / 2, method="nearest")
    assert float(pdf.sel(from_sublattice=0, to_sublattice=1).sel(**near)) > 0.9  # A -> B at (a/2, a/2)
    assert float(pdf.sel(from_sublattice=0, to_sublattice=0).sel(**near)) == 0.0  # never A -> A
    assert float(pdf.sel(from_sublattice=0, to_sublattice=0).sel(dx=A, dy=0, method="nearest")) > 0.9
    # Normalised per atom of the origin sublattice: summing over targets gives its neighbour count.
    total = pdf.sum(dim=("to_sublattice", "dy", "dx"))
    n_pairs = len(neighbour_vectors(t, 0.45, pairs_of=(0, np.arange(len(t)))))
    assert float(total.sel(from_sublattice=0)) == pytest.approx(n_pairs / 144, rel=1e-12)


def test_median_nn_distance():
    assert median_nn_distance(square(10, 0.25)) == pytest.approx(0.25)
    assert median_nn_distance(perovskite()) == pytest.approx(A / 2)


def test_bad_input():
    xy = square(5, 0.3)
    with pytest.raises(InputError, match="NaN"):
        neighbour_vectors(np.vstack([xy, [np.nan, 0.0]]), 0.4)
    with pytest.raises(InputError, match="empty"):
        vector_pdf(np.zeros((0, 2)), 0.4)
    with pytest.raises(InputError, match="shape"):
        neighbour_vectors(np.zeros((4, 3)), 0.4)
    with pytest.raises(InputError, match="radius_nm"):
        neighbour_vectors(xy, -1.0)
    with pytest.raises(InputError, match="no column"):
        vector_pdf(pd.DataFrame({"x": [0.0, 1.0]}), 0.4)
    with pytest.raises(InputError, match="sublattice"):
        vector_pdf(xy, 0.4, by="sublattice")
    with pytest.raises(InputError, match="by must be"):
        vector_pdf(perovskite(), 0.4, by="species")
    with pytest.raises(InputError, match="bins per axis"):
        vector_pdf(xy, 10.0, bin_nm=1e-4)
    with pytest.raises(InputError, match="pairs_of"):
        neighbour_vectors(xy, 0.4, pairs_of=(0,))
    t = perovskite(3)
    before = t.copy()
    vector_pdf(t, 0.4, by="sublattice")
    pd.testing.assert_frame_equal(t, before)
