"""Validation of catalog content search ("more like this") on simulated STEM images (``make validate``).

Classes are material x phase (x detector for SrTiO3): SrTiO3 [001] HAADF (perfect doped
crystals and crystals with two edge dislocations: defects make no new material or phase),
SrTiO3 [001] ABF, MoS2 monolayer, NiO [001], BaTiO3 [001] with polar domains, SrTiO3 with NiO
inclusions, an SrTiO3 tricrystal and Au [110] (fcc metal, centred rectangular projection).
Every image is simulated by :func:`atomine.simulate.stem.simulate_stem` from a structure built
with a random in-plane rotation (0..180 deg, the whole structure: lattice, grain seeds,
inclusion centres, domain walls, Burgers vectors), a dose factor 0.25..4 around the class's
nominal dose, its own seed (dopants, vacancies, scan jitter, shot noise) and a pixel size
drawn from 0.02..0.04 nm/px. The images are written with :func:`atomine.io.save`, ingested
into a fresh SQLite catalog by :func:`atomine.catalog.ingest.ingest` (full ingest), and every
image is used as a "more like this" query (:meth:`Catalog.similar`, k = 5): precision@5 is the
fraction of the 5 nearest that share its class (target: mean >= 0.9; every class >= 0.8 is
reported as a secondary check). The same files are also scored with ``image_radial_v1``
(before/after). Invariance: image 0 of each generator is re-simulated with the same
structure and seed but rotated by 0/15/30/45/90 deg or dosed x0.25/x4 and queried by vector:
it must retrieve like the original (precision@5 >= 0.9 per transform) and stay far closer to
its unrotated sibling than to any other class (distance ratio < 0.1); it need not beat
equally similar images of its class, so whether the sibling is in the top 5 and top 1 is
reported for information. ``n_phases``
is scored against the truth (single-phase classes 1, phases/grains >= 2; reported, no target).

Runnable alone: ``python benchmarks/validate_catalog.py [--n N]``.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

N_PER_CLASS = 8
PX_RANGE_NM = (0.02, 0.04)
SIDE_PX = 320
DOSE_RANGE = (0.25, 4.0)
VARIANTS = (("rot 0", 0.0, 1.0), ("rot 15", 15.0, 1.0), ("rot 30", 30.0, 1.0), ("rot 45", 45.0, 1.0),
            ("rot 90", 90.0, 1.0), ("dose x0.25", 0.0, 0.25), ("dose x4", 0.0, 4.0))
SCAN = {"line_jitter_px": 0.15, "drift_px_per_line": (0.002, 0.001), "detector_noise_counts": 0.5,
        "probe_fwhm_nm": 0.09, "probe_tail_fraction": 0.05, "probe_tail_fwhm_nm": 0.3}
MULTI_PHASE = ("STO+NiO phases", "STO tricrystal")


def _rot(points, theta_deg: float, centre) -> np.ndarray:
    """Points (x, y) rotated counter-clockwise as displayed (y down) about ``centre``."""
    from atomine.simulate.crystal import rotation_matrix

    p = np.atleast_2d(np.asarray(points, float)) - centre
    return p @ rotation_matrix(theta_deg).T + centre


def _sto(thickness: int = 10):
    from atomine.simulate import crystal
    return crystal.perovskite_cell(0.3905, A="Sr", B="Ti", X="O", thickness_cells=thickness)


def _doped(cell, theta, fov, seed, site="A", dopant="La", per_column=3, dop=0.05, vac=0.02):
    from atomine.simulate import crystal, defects
    s = crystal.lattice(cell, fov_nm=fov, rotation_deg=theta)
    occ = defects.random_occupancy(defects.occupancy_grid(s, site).shape, dopant_fraction=dop,
                                   vacancy_fraction=vac, seed=seed)
    return defects.substitute(s, occ, site=site, dopant=dopant, atoms_per_column=per_column)


def structure(cls: str, theta: float, fov: float, seed: int):
    """(Structure, detector, nominal dose e/A^2, extra simulate_stem options) of one class."""
    from atomine.simulate import crystal, defects, regions

    c = np.array([fov / 2, fov / 2])
    if cls == "STO HAADF":
        return _doped(_sto(), theta, fov, seed), "HAADF", 2e4, {}
    if cls == "STO ABF":
        return _doped(_sto(), theta, fov, seed), "ABF", 2e4, {}
    if cls == "MoS2":
        s = crystal.lattice(crystal.mos2_cell(0.316), fov_nm=fov, rotation_deg=theta)
        vac = defects.random_occupancy(defects.occupancy_grid(s, "X2").shape, vacancy_fraction=0.05, seed=seed)
        s = defects.substitute(s, vac, site="X2")
        dop = defects.random_occupancy(defects.occupancy_grid(s, "M").shape, dopant_fraction=0.03, seed=seed + 1)
        return defects.substitute(s, dop, site="M", dopant="W"), "HAADF", 1e5, {"background_fraction": 0.002}
    if cls == "NiO":
        cell = crystal.rocksalt_cell(0.4177, cation="Ni", anion="O", thickness_cells=10)
        s = crystal.lattice(cell, fov_nm=fov, rotation_deg=theta)
        vac = defects.random_occupancy(defects.occupancy_grid(s, "MX").shape, vacancy_fraction=0.02, seed=seed)
        return defects.substitute(s, vac, site="MX"), "HAADF", 2e4, {}
    if cls == "BaTiO3 polar":
        cell = crystal.perovskite_cell(0.400, A="Ba", B="Ti", X="O", thickness_cells=10)
        s = crystal.lattice(cell, fov_nm=fov, rotation_deg=theta)
        walls = regions.Voronoi(_rot([(fov / 4, fov / 2), (3 * fov / 4, fov / 2)], theta, c))
        disp = _rot([(0.0, -15.0), (0.0, 15.0)], theta, np.zeros(2))
        return defects.polar_displacement(s, site="B", displacement_pm=disp, domains=walls), "HAADF", 2e4, {}
    if cls == "STO+NiO phases":
        nio = crystal.rocksalt_cell(0.4177, cation="Ni", anion="O", thickness_cells=10)
        centres = _rot(np.array([(0.31, 0.33), (0.70, 0.67)]) * fov, theta, c)
        s = crystal.phases(_sto(), nio, centres_nm=centres, radii_nm=(0.17 * fov, 0.22 * fov), fov_nm=fov,
                           host_rotation_deg=theta, inclusion_rotation_deg=theta + 12.0)
        return s, "HAADF", 2e4, {}
    if cls == "STO tricrystal":
        seeds = _rot(np.array([(0.23, 0.27), (0.78, 0.31), (0.5, 0.82)]) * fov, theta, c)
        s = crystal.grains(_sto(8), seeds_nm=seeds, rotations_deg=[theta, theta + 27.0, theta - 18.0], fov_nm=fov)
        return s, "HAADF", 2e4, {}
    if cls == "STO dislocations":
        a = 0.3905
        s = crystal.lattice(_sto(), fov_nm=fov, rotation_deg=theta)
        cores = _rot([(0.35 * fov, 0.49 * fov), (0.69 * fov, 0.52 * fov)], theta, c)
        b = _rot([(a, 0.0), (0.0, a)], theta, np.zeros(2))
        return defects.add_dislocations(s, [defects.EdgeDislocation(cores[0][0], cores[0][1], tuple(b[0]), 0.3),
                                            defects.EdgeDislocation(cores[1][0], cores[1][1], tuple(b[1]), 0.3)]), \
            "HAADF", 2e4, {}
    if cls == "Au [110]":
        s = crystal.lattice(_fcc110(0.4078, "Au", 20), fov_nm=fov, rotation_deg=theta)
        vac = defects.random_occupancy(defects.occupancy_grid(s, "C1").shape, vacancy_fraction=0.02, seed=seed)
        return defects.substitute(s, vac, site="C1"), "HAADF", 2e4, {}
    raise ValueError(cls)


def _fcc110(a: float, el: str, thickness: int):
    """An fcc metal viewed along [110]: a centred rectangular cell a/sqrt(2) x a, one element."""
    from atomine.simulate.crystal import UnitCell

    return UnitCell(name=f"{el} [110]", a1_nm=(a / math.sqrt(2), 0.0), a2_nm=(0.0, a), sites=("C1", "C2"),
                    fractional=((0.0, 0.0), (0.5, 0.5)), composition=(((el, thickness),), ((el, thickness),)),
                    host=(el, el), material=el)


# image generators (their index seeds the draws) and the class (material x phase x contrast) of each:
# dislocated SrTiO3 is still SrTiO3 [001] HAADF, so its images share that class with the perfect ones
GENERATORS = ("STO HAADF", "STO ABF", "MoS2", "NiO", "BaTiO3 polar", "STO+NiO phases", "STO tricrystal",
              "STO dislocations", "Au [110]")
CLASS_OF = {"STO HAADF": "SrTiO3 [001] HAADF", "STO dislocations": "SrTiO3 [001] HAADF",
            "STO ABF": "SrTiO3 [001] ABF", "MoS2": "MoS2 monolayer", "NiO": "NiO [001]",
            "BaTiO3 polar": "BaTiO3 [001] polar domains", "STO+NiO phases": "SrTiO3 + NiO inclusions",
            "STO tricrystal": "SrTiO3 tricrystal", "Au [110]": "Au [110]"}
CLASSES = GENERATORS  # kept for callers of draw()/simulate() by generator name


def draw(cls: str, index: int, seed0: int = 0) -> dict:
    """The random draw (rotation, dose factor, pixel size, seed) of image ``index`` of a class."""
    rng = np.random.default_rng([seed0, CLASSES.index(cls), index])
    return {"theta": float(rng.uniform(0, 180)), "dose": float(math.exp(rng.uniform(*np.log(DOSE_RANGE)))),
            "px": float(rng.uniform(*PX_RANGE_NM)), "seed": int(1000 * CLASSES.index(cls) + index + 7919 * seed0)}


def simulate(cls: str, *, theta: float, dose: float, px: float, seed: int, side: int = SIDE_PX):
    """A simulated image (xarray, nm) of class ``cls``."""
    from atomine.simulate.stem import simulate_stem

    fov = side * px
    s, detector, nominal, extra = structure(cls, theta, fov, seed)
    return simulate_stem(s, pixel_size_nm=px, detector=detector, dose_e_per_A2=nominal * dose, seed=seed,
                         title=f"{cls} #{seed}", **SCAN, **extra).data


def precision_at(hits_classes, cls, k=5) -> float:
    return float(np.mean([c == cls for c in hits_classes[:k]]))


def _nearest(X: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, cosine distance) of the rows of X to v: the exact scan Catalog.similar does."""
    def unit(a):
        n = np.linalg.norm(a, axis=-1, keepdims=True)
        return a / np.where(n > 0, n, 1.0)
    d = 1.0 - unit(X) @ unit(v)
    return np.argsort(d, kind="stable"), d


def _transform_stats(order, dist, labels, sib, cls) -> dict:
    top = [labels[i] for i in order[:5]]
    other = [dist[i] for i in range(len(labels)) if labels[i] != cls]
    return {"p5": precision_at(top, cls), "in5": sib in list(order[:5]), "top1": order[0] == sib,
            "ratio": float(dist[sib] / min(other)) if other and min(other) > 0 else float("inf")}


def run(n_per_class: int = N_PER_CLASS, generators=GENERATORS, phases: bool | None = True) -> str:
    import atomine.io as aio
    from atomine.catalog import Catalog
    from atomine.catalog.descriptors import describe
    from atomine.catalog.ingest import ingest

    warnings.simplefilter("ignore")
    t_start = time.perf_counter()
    cmd = "python benchmarks/validate_catalog.py" + ("" if n_per_class == N_PER_CLASS else f" --n {n_per_class}")
    classes = list(dict.fromkeys(CLASS_OF[g] for g in generators))
    multi = {CLASS_OF[g] for g in MULTI_PHASE}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        root.mkdir()
        label, t_sim = {}, 0.0
        for g in generators:
            for i in range(n_per_class):
                t = time.perf_counter()
                da = simulate(g, **draw(g, i))
                t_sim += time.perf_counter() - t
                name = f"{GENERATORS.index(g)}_{i}.nc"
                aio.save(da, root / name)
                label[name] = CLASS_OF[g]
        cat = Catalog(Path(tmp) / "cat.sqlite")
        kw = {} if phases is None else {"phases": phases}
        rep = ingest(cat, [root], **kw)
        n_img = len(label)
        ids = {h["id"]: Path(h["path"]).name for h in cat.search("", limit=10_000)}
        by_name = {v: k for k, v in ids.items()}
        prec2 = {c: [] for c in classes}
        nph = {c: [] for c in classes}
        for i, name in ids.items():
            hits = cat.similar(i, k=5)
            prec2[label[name]].append(precision_at([label[ids[h["id"]]] for h in hits], label[name]))
            nph[label[name]].append(cat.get(i)["descriptors"].get("n_phases"))
        kinds = {cat.get(i)["vector_kind"] for i in ids}
        # before: image_radial_v1 of the same saved files, exact cosine scan (what a v1 catalog returns)
        names = sorted(ids.values())
        labels = [label[n] for n in names]
        X1 = np.array([describe(aio.load(root / n), image_vector="image_radial_v1")[3] for n in names])
        prec1 = {c: [] for c in classes}
        for r, n in enumerate(names):
            order, _ = _nearest(np.delete(X1, r, 0), X1[r])
            rest = labels[:r] + labels[r + 1:]
            prec1[label[n]].append(precision_at([rest[o] for o in order], label[n]))
        # invariance: image 0 of each generator re-simulated rotated or dosed, queried by vector
        inv = {v[0]: {"v1": [], "v2": []} for v in VARIANTS}
        t_desc = []
        for g in generators:
            d = draw(g, 0)
            sib_name = f"{GENERATORS.index(g)}_0.nc"
            sib_id, sib_row = by_name[sib_name], names.index(sib_name)
            for vname, dtheta, dose in VARIANTS:
                da = simulate(g, **{**d, "theta": d["theta"] + dtheta, "dose": d["dose"] * dose})
                t = time.perf_counter()
                _, _, kind, vec = describe(da)
                t_desc.append(time.perf_counter() - t)
                hits = cat.similar(vec, k=n_img, kind=kind)
                hid = [h["id"] for h in hits]
                inv[vname]["v2"].append(_transform_stats(
                    list(range(len(hid))), np.array([h["distance"] for h in hits]),
                    [label[ids[x]] for x in hid], hid.index(sib_id), CLASS_OF[g]))
                order, dist = _nearest(X1, describe(da, image_vector="image_radial_v1")[3])
                inv[vname]["v1"].append(_transform_stats(order, dist, labels, sib_row, CLASS_OF[g]))
        cat.close()
    mean1 = float(np.mean([p for v in prec1.values() for p in v]))
    mean2 = float(np.mean([p for v in prec2.values() for p in v]))
    pc1 = {c: float(np.mean(v)) for c, v in prec1.items()}
    pc2 = {c: float(np.mean(v)) for c, v in prec2.items()}
    ok_p = mean2 >= 0.9
    ok_class = min(pc2.values()) >= 0.8
    lines = [f"Command: `{cmd}`. {len(classes)} classes (material x phase x contrast) from {len(generators)} "
             f"generators x {n_per_class} images ({SIDE_PX}^2 px, pixel size {PX_RANGE_NM[0]}-{PX_RANGE_NM[1]} nm, "
             f"rotation 0-180 deg, dose x{DOSE_RANGE[0]}-x{DOSE_RANGE[1]}, own seed each), saved with "
             f"atomine.io.save and ingested (vector kind {', '.join(sorted(kinds))}; ingest "
             f"{rep.seconds / max(n_img, 1):.2f} s/image with n_phases={phases}, describe() "
             f"{np.median(t_desc):.3f} s/image median; simulation {t_sim / n_img:.2f} s/image). v1 = "
             "image_radial_v1 of the same files (exact cosine scan), v2 = the catalog's own similar().", "",
             f"**precision@5 (more like this): v2 mean {mean2:.3f}** (target >= 0.9): {'PASS' if ok_p else 'FAIL'}; "
             f"v1 mean {mean1:.3f}. Every class >= 0.8 (secondary): {'PASS' if ok_class else 'FAIL'}.", "",
             "| class | images | v1 precision@5 | v2 precision@5 | n_phases found (truth) |", "|---|---|---|---|---|"]
    n_right = n_scored = 0
    for c in classes:
        found = nph[c]
        vals = [int(x) for x in found if x is not None]
        parts = [f"{k}: {vals.count(k)}" for k in sorted(set(vals))]
        parts += [f"absent: {sum(x is None for x in found)}"] if any(x is None for x in found) else []
        counts = ", ".join(parts)
        n_right += sum((v >= 2) == (c in multi) for v in vals)
        n_scored += len(found)
        lines.append(f"| {c} | {len(prec2[c])} | {pc1[c]:.3f} | {pc2[c]:.3f} | {counts or '-'} "
                     f"({'>= 2' if c in multi else '1'}) |")
    ng = len(generators)
    lines += ["", f"Invariance: image 0 of each of the {ng} generators re-simulated (same structure and seed) "
              "rotated or dosed and queried by vector. precision@5 of the query (mean, min over generators); "
              "unrotated sibling in the top 5; sibling distance / nearest other-class distance (max, median); "
              "top-1 (for information).", "",
              "| transform | v2 precision@5 | v2 sibling in top 5 | v2 distance ratio | v2 top-1 | "
              "v1 precision@5 | v1 sibling in top 5 | v1 top-1 |", "|---|---|---|---|---|---|---|---|"]
    ok_inv = True
    for vname, _, _ in VARIANTS:
        r2, r1 = inv[vname]["v2"], inv[vname]["v1"]
        p2 = [r["p5"] for r in r2]
        in5 = sum(r["in5"] for r in r2)
        ratio = [r["ratio"] for r in r2]
        # invariance = the turned/dosed image retrieves like the original and stays far closer to it than
        # to any other class; inside a single-crystal class every image is ~1e-4 from every other, so the
        # sibling's rank among them is noise (reported, not required)
        ok_inv &= float(np.mean(p2)) >= 0.9 and max(ratio) < 0.1
        lines.append(f"| {vname} | {np.mean(p2):.3f} (min {min(p2):.2f}) | {in5}/{ng} | {max(ratio):.3f} "
                     f"({np.median(ratio):.3f}) | {sum(r['top1'] for r in r2)}/{ng} | "
                     f"{np.mean([r['p5'] for r in r1]):.3f} | {sum(r['in5'] for r in r1)}/{ng} | "
                     f"{sum(r['top1'] for r in r1)}/{ng} |")
    lines += ["", f"Invariance (v2 precision@5 >= 0.9 for every transform and the sibling at most 0.1 of the nearest "
              f"other-class distance): {'PASS' if ok_inv else 'FAIL'}. n_phases vs truth (single phase 1, "
              f"phases/grains >= 2; no target in the issue): {n_right}/{n_scored} right. "
              f"Total {time.perf_counter() - t_start:.0f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else N_PER_CLASS
    print(run(n))
