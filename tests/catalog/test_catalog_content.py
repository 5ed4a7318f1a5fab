"""Content search ("more like this") on simulated STEM images: precision@5 and rotation/dose invariance.

Images are simulated from structures turned by a random in-plane angle, at a random dose
factor and pixel size, written with atomine.io.save and ingested for real; the full-size
version of this check is ``benchmarks/validate_catalog.py``. A turned or dosed image must
retrieve like the original (its class in the top 5, its unrotated sibling among them), not
necessarily beat equally similar images of its class; the vector ignores the pixel size.
"""

from __future__ import annotations

import numpy as np
import pytest

import atomine.io as aio
from atomine.catalog import Catalog
from atomine.catalog import descriptors as D
from atomine.catalog.ingest import ingest
from atomine.simulate import crystal, defects
from atomine.simulate.stem import simulate_stem

CLASSES = ("MoS2", "NiO", "STO+NiO", "STO tricrystal")
SIDE = 256
SCAN = {"line_jitter_px": 0.15, "drift_px_per_line": (0.002, 0.001), "detector_noise_counts": 0.5,
        "probe_fwhm_nm": 0.09, "probe_tail_fraction": 0.05, "probe_tail_fwhm_nm": 0.3}


def _turn(points, theta, centre):
    p = np.asarray(points, float) - centre
    return p @ crystal.rotation_matrix(theta).T + centre


def _image(cls, theta, dose, px, seed, dislocations=False):
    fov = SIDE * px
    c = np.array([fov / 2, fov / 2])
    sto = crystal.perovskite_cell(0.3905, thickness_cells=10)
    nio = crystal.rocksalt_cell(0.4177, thickness_cells=10)
    extra = {}
    if cls == "MoS2":
        s = crystal.lattice(crystal.mos2_cell(0.316), fov_nm=fov, rotation_deg=theta)
        vac = defects.random_occupancy(defects.occupancy_grid(s, "X2").shape, vacancy_fraction=0.05, seed=seed)
        s, nominal, extra = defects.substitute(s, vac, site="X2"), 1e5, {"background_fraction": 0.002}
    elif cls == "NiO":
        s, nominal = crystal.lattice(nio, fov_nm=fov, rotation_deg=theta), 2e4
    elif cls == "STO":
        s, nominal = crystal.lattice(sto, fov_nm=fov, rotation_deg=theta), 2e4
        if dislocations:  # two edge dislocations, Burgers vectors a along the turned axes
            core = _turn([(0.35 * fov, 0.49 * fov), (0.69 * fov, 0.52 * fov)], theta, c)
            b = _turn([(0.3905, 0.0), (0.0, 0.3905)], theta, np.zeros(2))
            s = defects.add_dislocations(s, [defects.EdgeDislocation(*core[k], tuple(b[k]), 0.3) for k in (0, 1)])
    elif cls == "STO+NiO":
        centres = _turn(np.array([(0.31, 0.33), (0.70, 0.67)]) * fov, theta, c)
        s = crystal.phases(sto, nio, centres_nm=centres, radii_nm=(0.17 * fov, 0.22 * fov), fov_nm=fov,
                           host_rotation_deg=theta, inclusion_rotation_deg=theta + 12.0)
        nominal = 2e4
    else:
        seeds = _turn(np.array([(0.23, 0.27), (0.78, 0.31), (0.5, 0.82)]) * fov, theta, c)
        s = crystal.grains(sto, seeds_nm=seeds, rotations_deg=[theta, theta + 27.0, theta - 18.0], fov_nm=fov)
        nominal = 2e4
    return simulate_stem(s, pixel_size_nm=px, dose_e_per_A2=nominal * dose, seed=seed, **SCAN, **extra).data


def _draw(ci, i):
    rng = np.random.default_rng([ci, i])
    return {"theta": float(rng.uniform(0, 180)), "dose": float(np.exp(rng.uniform(np.log(0.25), np.log(4.0)))),
            "px": float(rng.uniform(0.02, 0.04)), "seed": 100 * ci + i}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("content")
    (root / "img").mkdir()
    labels = {}
    for ci, cls in enumerate(CLASSES):
        for i in range(6):
            name = f"c{ci}_{i}.nc"
            aio.save(_image(cls, **_draw(ci, i)), root / "img" / name)
            labels[name] = ci
    cat = Catalog(root / "cat.sqlite")
    report = ingest(cat, [root / "img"])
    assert report.added == len(labels) and not report.failed
    ids = {h["id"]: labels[h["path"].replace("\\", "/").rsplit("/", 1)[-1]] for h in cat.search("", limit=100)}
    yield cat, ids
    cat.close()


def test_more_like_this_precision_at_5(catalog):
    cat, label = catalog
    precision = {}
    for i, cls in label.items():
        hits = cat.similar(i, k=5)
        assert len(hits) == 5 and all(h["id"] != i for h in hits)
        precision.setdefault(cls, []).append(np.mean([label[h["id"]] == cls for h in hits]))
    assert {cat.get(i)["vector_kind"] for i in label} == {"image_radial_v2"}
    assert np.mean([p for v in precision.values() for p in v]) >= 0.9
    assert min(np.mean(v) for v in precision.values()) >= 0.8


@pytest.mark.parametrize("turn, dose", [(0.0, 1.0), (30.0, 1.0), (45.0, 1.0), (90.0, 1.0), (0.0, 0.25), (0.0, 4.0)])
def test_turned_or_dosed_query_retrieves_like_the_original(catalog, turn, dose):
    cat, label = catalog
    ci = CLASSES.index("NiO")
    d = _draw(ci, 0)
    sibling = next(i for i, c in sorted(label.items()) if c == ci)  # image 0 of the class: ingested first
    da = _image("NiO", **{**d, "theta": d["theta"] + turn, "dose": d["dose"] * dose})
    _, _, kind, vec = D.describe(da)
    hits = cat.similar(vec, k=len(label), kind=kind)
    assert all(label[h["id"]] == ci for h in hits[:5])
    assert sibling in [h["id"] for h in hits[:5]]
    # the sibling sits deep inside its class: far closer than any image of another class
    d_sib = next(h["distance"] for h in hits if h["id"] == sibling)
    assert d_sib < 0.2 * min(h["distance"] for h in hits if label[h["id"]] != ci)


def test_v2_vector_shape_and_rotation_dose_invariance():
    d = _draw(0, 9)
    base = D.describe(_image("MoS2", **d))
    assert base[2] == "image_radial_v2" and base[3].shape == (D.N_VECTOR_V2,) and D.N_VECTOR_V2 == 37
    assert np.linalg.norm(base[3]) == pytest.approx(1.0)
    turned = D.describe(_image("MoS2", **{**d, "theta": d["theta"] + 30}))[3]
    dosed = D.describe(_image("MoS2", **{**d, "dose": d["dose"] * 4}))[3]
    other = D.describe(_image("NiO", **d))[3]
    far = 1 - float(other @ base[3])
    assert 1 - float(turned @ base[3]) < far / 5 and 1 - float(dosed @ base[3]) < far / 5
    # magnification is an acquisition setting: the same specimen at another pixel size stays close
    zoomed = D.describe(_image("MoS2", **{**d, "px": 0.021 if d["px"] > 0.03 else 0.039}))[3]
    assert 1 - float(zoomed @ base[3]) < far / 5
    # v1 stays computable for catalogs built before v2
    s, _, kind, v1 = D.describe(_image("MoS2", **d), image_vector="image_radial_v1")
    assert kind == "image_radial_v1" and v1.shape == (D.N_RADIAL,)
    with pytest.raises(Exception, match="unknown image vector kind"):
        D.describe(_image("MoS2", **d), image_vector="v9")


def test_dislocated_crystal_stays_with_its_material():
    """Edge dislocations make no new material or phase: dislocated SrTiO3 is nearest to perfect SrTiO3."""
    d = _draw(7, 0)
    dislocated = D.describe(_image("STO", **d, dislocations=True))[3]
    perfect = D.describe(_image("STO", **{**_draw(7, 1), "seed": d["seed"] + 1}))[3]
    others = [D.describe(_image(c, **d))[3] for c in ("NiO", "MoS2", "STO+NiO")]
    assert 1 - float(perfect @ dislocated) < min(1 - float(o @ dislocated) for o in others) / 3
