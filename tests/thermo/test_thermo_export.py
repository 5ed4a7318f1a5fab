"""Most probable local configurations written as extended XYZ and read back with ASE."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.thermo.configurations import descriptor
from atomine.thermo.export import write_configurations
from atomine.thermo.lattice import cartesian

ase_io = pytest.importorskip("ase.io")

A = 0.387  # nm


@pytest.mark.parametrize("kind,name", [("square", "nn"), ("triangular", "nnn"), ("square", "shell_counts")])
def test_round_trip_through_ase(tmp_path, kind, name):
    d = descriptor(kind, name)
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50, d.n_classes).astype(float)
    counts[rng.random(d.n_classes) < 0.3] = 0
    path = tmp_path / "configs.xyz"
    out = write_configurations(path, d, counts, a_nm=A, top=7, lattice_name="LCMO A site")
    frames = ase_io.read(path, index=":")
    assert len(frames) == len(out) == 7

    p = counts / counts.sum()
    order = np.argsort(-p, kind="stable")[:7]
    assert [o["class_index"] for o in out] == order.tolist()
    reps, mult = d.representatives(), d.multiplicity()
    ideal = cartesian(kind, d.offsets) * A * 10  # Angstrom
    for atoms, row, k in zip(frames, out, order):
        assert atoms.info["class_index"] == k
        assert atoms.info["probability"] == pytest.approx(p[k], rel=1e-12) == row["probability"]
        assert atoms.info["multiplicity"] == mult[k] == row["multiplicity"]
        assert atoms.info["label"] == d.labels[k] == row["label"]
        assert atoms.info["lattice"] == "LCMO A site"
        want = np.where(reps[k] > 0, "Ca", "La")
        assert atoms.get_chemical_symbols() == want.tolist()
        pos = atoms.get_positions()
        np.testing.assert_allclose(pos[:, :2] - pos[0, :2], ideal[:, :2] - ideal[0, :2], atol=1e-6)
        assert np.ptp(pos[:, 2]) == 0
        # the structure sits inside a vacuum box, >= 3 a from every face, no periodicity
        assert not atoms.pbc.any()
        assert (pos >= 3 * A * 10 - 1e-6).all() and (atoms.cell.lengths() - pos >= 3 * A * 10 - 1e-5).all()


def test_nearest_neighbour_distances_are_the_lattice_constant(tmp_path):
    d = descriptor("triangular", "nn")
    write_configurations(tmp_path / "t.xyz", d, np.ones(d.n_classes), a_nm=A, top=1, species=("Sr", "La"))
    atoms = ase_io.read(tmp_path / "t.xyz", index=0)
    dist = atoms.get_distances(0, range(1, 7))
    np.testing.assert_allclose(dist, 10 * A, rtol=1e-7)


def test_zero_probability_classes_are_skipped_and_nothing_left_behind(tmp_path):
    d = descriptor("square", "nn")
    p = np.zeros(d.n_classes)
    p[[3, 5]] = [1, 3]
    out = write_configurations(tmp_path / "c.xyz", d, p, a_nm=A)
    assert [o["class_index"] for o in out] == [5, 3]
    assert [o["probability"] for o in out] == [0.75, 0.25]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.xyz"]


def test_export_errors(tmp_path):
    d = descriptor("square", "nn")
    p = np.ones(d.n_classes)
    with pytest.raises(InputError, match="one entry per class"):
        write_configurations(tmp_path / "x.xyz", d, p[:-1], a_nm=A)
    with pytest.raises(InputError, match=">= 0"):
        write_configurations(tmp_path / "x.xyz", d, -p, a_nm=A)
    with pytest.raises(InputError, match="a_nm"):
        write_configurations(tmp_path / "x.xyz", d, p, a_nm=0)
    with pytest.raises(InputError, match="species"):
        write_configurations(tmp_path / "x.xyz", d, p, a_nm=A, species=("Ca",))
    with pytest.raises(InputError, match="top"):
        write_configurations(tmp_path / "x.xyz", d, p, a_nm=A, top=0)
    with pytest.raises(InputError, match="does not exist"):
        write_configurations(tmp_path / "missing" / "x.xyz", d, p, a_nm=A)
    assert not list(tmp_path.iterdir())
