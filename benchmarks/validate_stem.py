"""Statistical acceptance checks of the STEM simulator over many seeds.

Run ``python benchmarks/validate_stem.py`` (or through ``benchmarks/validate.py``);
:func:`run` returns a Markdown section for ``benchmarks/VALIDATION.md``.

Checks, each over ``N_SEEDS`` independent seeds:

1. HAADF A/B integrated intensity ratio of SrTiO3 [001] measured from the noisy image
   (disk sums around the true positions, background removed) against the Z^1.7 rule
   38^1.7 / (22^1.7 + 8^1.7): bias and spread, and the spread against the Poisson
   prediction.
2. Dose recovered from the image: mean counts / (pixel area x mean detected fraction)
   against the requested dose.
3. Shot noise: variance / mean in a vacuum region (Poisson: 1).
4. Burgers circuit around an edge dislocation placed at a random position with a random
   lattice Burgers vector: closure failure = b in every seed, both on the true positions
   and on column positions measured from the noisy image; a circuit away from the core
   closes.
5. Polar displacement of a random vector (5..20 pm) recovered from image centroids of
   the B columns.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.spatial import cKDTree

from atomine.simulate import crystal, defects
from atomine.simulate.stem import simulate_stem

N_SEEDS = 50
A_NM = 0.3905
PX = 0.02
RULE = 38**1.7 / (22**1.7 + 8**1.7)


# --- measurement helpers (independent of the simulator's internals) --------------------------
def _disk_sums(img, x_px, y_px, radius_px):
    r = int(np.ceil(radius_px)) + 1
    off = np.arange(-r, r + 1)
    xx = np.rint(x_px)[:, None, None].astype(int) + off[None, None, :]
    yy = np.rint(y_px)[:, None, None].astype(int) + off[None, :, None]
    inside = ((xx - x_px[:, None, None]) ** 2 + (yy - y_px[:, None, None]) ** 2 <= radius_px**2)
    inside &= (xx >= 0) & (xx < img.shape[1]) & (yy >= 0) & (yy < img.shape[0])
    vals = img[np.clip(yy, 0, img.shape[0] - 1), np.clip(xx, 0, img.shape[1] - 1)]
    return (vals * inside).sum(axis=(1, 2)), inside.sum(axis=(1, 2))


def _centroids(img, x_px, y_px, radius_px, background, iterations=4):
    x, y = np.asarray(x_px, float).copy(), np.asarray(y_px, float).copy()
    off = np.arange(-int(np.ceil(radius_px)) - 2, int(np.ceil(radius_px)) + 3)
    for _ in range(iterations):
        xx = np.rint(x)[:, None, None].astype(int) + off[None, None, :]
        yy = np.rint(y)[:, None, None].astype(int) + off[None, :, None]
        w = img[np.clip(yy, 0, img.shape[0] - 1), np.clip(xx, 0, img.shape[1] - 1)] - background
        w = w * (((xx - x[:, None, None]) ** 2 + (yy - y[:, None, None]) ** 2) <= radius_px**2)
        total = w.sum(axis=(1, 2))
        x, y = (w * xx).sum(axis=(1, 2)) / total, (w * yy).sum(axis=(1, 2)) / total
    return x, y


def _interior(atoms, shape, margin):
    return ((atoms.x_px > margin) & (atoms.x_px < shape[1] - 1 - margin)
            & (atoms.y_px > margin) & (atoms.y_px < shape[0] - 1 - margin)).values


def _burgers(x, y, site_i, site_j, start_xy, n):
    """Clockwise circuit n a1, n a2, -n a1, -n a2 by nearest-neighbour steps; closure (di, dj) or None."""
    pos = np.column_stack([x, y])
    tree = cKDTree(pos)
    steps = [(A_NM, 0.0)] * n + [(0.0, A_NM)] * n + [(-A_NM, 0.0)] * n + [(0.0, -A_NM)] * n
    start = current = tree.query(start_xy)[1]
    for step in steps:
        dist, current = tree.query(pos[current] + np.array(step))
        if dist > 0.3 * A_NM:
            return None
    return int(site_i[current] - site_i[start]), int(site_j[current] - site_j[start])


# --- the checks --------------------------------------------------------------------------------
def _ratio_and_dose(seed: int, sto) -> dict:
    sim = simulate_stem(sto, pixel_size_nm=PX, dose_e_per_A2=2e4, line_jitter_px=0.15, detector_noise_counts=0.5,
                        seed=seed)
    p = sim.truth.parameters
    img = sim.data.values.astype(float)
    expected = sim.truth.maps["expected"].values.astype(float)
    atoms = sim.truth.tables["atoms"]
    keep = _interior(atoms, img.shape, 10) & (atoms.cls == "host").values
    sums, npix = _disk_sums(img, atoms.x_px.values[keep], atoms.y_px.values[keep], 0.09 / PX)
    signal = sums - npix * p["incident_e_per_px"] * p["background_fraction"]
    site = atoms.site.values[keep]
    a, b = signal[site == "A"], signal[site == "B"]
    ratio = a.mean() / b.mean()
    # Poisson prediction of the ratio's error from the expected counts in each disk
    var_a, var_b = (_disk_sums(expected, atoms.x_px.values[keep][site == s], atoms.y_px.values[keep][site == s],
                               0.09 / PX)[0] + 0.25 * npix[site == s] for s in ("A", "B"))
    pred = ratio * np.sqrt(var_a.sum() / a.sum() ** 2 + var_b.sum() / b.sum() ** 2)
    mean_fraction = expected.mean() / p["incident_e_per_px"]
    dose = img.mean() / ((PX * 10) ** 2 * mean_fraction)
    dose_err = np.sqrt(expected.sum() + 0.25 * img.size) / img.size / ((PX * 10) ** 2 * mean_fraction)
    return {"ratio": ratio, "ratio_pred_err": pred, "dose": dose, "dose_err": dose_err}


def _vacuum_fano(seed: int, half) -> float:
    sim = simulate_stem(half, pixel_size_nm=PX, dose_e_per_A2=1e4, seed=seed)
    flat = sim.data.values[:, 150:].astype(float)
    return flat.var() / flat.mean()


def _burgers_check(seed: int, cell) -> dict:
    rng = np.random.default_rng(10_000 + seed)
    fov = 6.0
    base = crystal.lattice(cell, fov_nm=fov)
    core = rng.uniform(2.4, 3.6, size=2)
    b = [(A_NM, 0.0), (-A_NM, 0.0), (0.0, A_NM), (0.0, -A_NM)][rng.integers(4)]
    s = defects.add_dislocations(base, defects.EdgeDislocation(core[0], core[1], b, poisson_ratio=rng.uniform(0.2, 0.4)))
    sim = simulate_stem(s, pixel_size_nm=PX, dose_e_per_A2=2e4, line_jitter_px=0.1, seed=seed)
    atoms = sim.truth.tables["atoms"]
    a = (atoms.site == "A").values
    start = (core[0] - 3 * A_NM, core[1] - 3 * A_NM)
    i, j = atoms.site_i.values[a], atoms.site_j.values[a]
    truth = _burgers(atoms.x.values[a], atoms.y.values[a], i, j, start, 6)
    p = sim.truth.parameters
    seen = _interior(atoms, sim.data.shape, 6)[a]  # columns fully inside the image can be measured
    cx, cy = _centroids(sim.data.values.astype(float), atoms.x_px.values[a][seen], atoms.y_px.values[a][seen], 4.0,
                        p["incident_e_per_px"] * p["background_fraction"])
    measured = _burgers(cx * PX, cy * PX, i[seen], j[seen], start, 6)
    far = _burgers(atoms.x.values[a], atoms.y.values[a], i, j, (0.3, 0.3), 3) if np.all(core > 2.0) else (0, 0)
    expect = (int(round(b[1] / A_NM)), int(round(b[0] / A_NM)))
    return {"truth_ok": truth == expect, "measured_ok": measured == expect, "far_ok": far == (0, 0)}


def _polar_check(seed: int, cell) -> dict:
    rng = np.random.default_rng(20_000 + seed)
    magnitude, angle = rng.uniform(5.0, 20.0), rng.uniform(0, 2 * np.pi)
    d = (magnitude * np.cos(angle), magnitude * np.sin(angle))
    s = defects.polar_displacement(crystal.lattice(cell, fov_nm=5.0), site="B", displacement_pm=d)
    sim = simulate_stem(s, pixel_size_nm=PX, dose_e_per_A2=2e4, seed=seed)
    atoms = sim.truth.tables["atoms"]
    p = sim.truth.parameters
    sel = _interior(atoms, sim.data.shape, 12) & (atoms.site == "B").values
    sub = atoms[sel]
    cx, cy = _centroids(sim.data.values.astype(float), sub.x0.values / PX, sub.y0.values / PX, 4.0,
                        p["incident_e_per_px"] * p["background_fraction"])
    return {"dx_err_pm": (cx - sub.x0.values / PX).mean() * PX * 1000 - d[0],
            "dy_err_pm": (cy - sub.y0.values / PX).mean() * PX * 1000 - d[1]}


def run(n_seeds: int = N_SEEDS) -> str:
    """Run every check over ``n_seeds`` seeds and return a Markdown section."""
    t0 = time.perf_counter()
    sto_cell = crystal.perovskite_cell(A_NM, thickness_cells=10)
    sto = crystal.lattice(sto_cell, fov_nm=5.0)
    half = sto.subset(sto.x_nm < 2.0)
    bto_cell = crystal.perovskite_cell(0.400, A="Ba", B="Ti", thickness_cells=10)
    seeds = range(n_seeds)
    rd = [_ratio_and_dose(s, sto) for s in seeds]
    fano = np.array([_vacuum_fano(s, half) for s in seeds])
    burg = [_burgers_check(s, sto_cell) for s in seeds]
    polar = [_polar_check(s, bto_cell) for s in seeds]

    ratio = np.array([r["ratio"] for r in rd])
    pred = np.mean([r["ratio_pred_err"] for r in rd])
    dose = np.array([r["dose"] for r in rd])
    dose_pred = np.mean([r["dose_err"] for r in rd])
    dx = np.array([p["dx_err_pm"] for p in polar])
    dy = np.array([p["dy_err_pm"] for p in polar])
    n = len(ratio)
    sem = lambda v: v.std(ddof=1) / np.sqrt(v.size)  # noqa: E731
    rows = []

    def row(check, result, criterion, ok):
        rows.append(f"| {check} | {result} | {criterion} | {'pass' if ok else 'FAIL'} |")

    bias = ratio.mean() / RULE - 1
    row("A/B HAADF ratio vs Z^1.7 rule", f"mean {ratio.mean():.4f} (rule {RULE:.4f}), bias {100 * bias:+.2f} %, "
        f"spread {ratio.std(ddof=1):.4f}", "abs(bias) < 3 SEM + 0.5 % (neighbour cross-talk)",
        abs(ratio.mean() - RULE) < 3 * sem(ratio) + 0.005 * RULE)
    row("A/B ratio spread vs Poisson prediction", f"{ratio.std(ddof=1):.4f} vs {pred:.4f}",
        "ratio within 0.7..1.5 (jitter adds a little)", 0.7 < ratio.std(ddof=1) / pred < 1.5)
    row("dose recovered", f"mean {dose.mean():.1f} e-/A^2 (true 20000), spread {dose.std(ddof=1):.1f} "
        f"(Poisson {dose_pred:.1f})", "abs(bias) < 3 SEM; spread within 0.7..1.4 x Poisson",
        abs(dose.mean() - 2e4) < 3 * sem(dose) and 0.7 < dose.std(ddof=1) / dose_pred < 1.4)
    row("shot noise var/mean in vacuum", f"{fano.mean():.4f} +- {sem(fano):.4f}", "abs(mean - 1) < 3 SEM + 0.005",
        abs(fano.mean() - 1) < 3 * sem(fano) + 0.005)
    t_ok = sum(b["truth_ok"] for b in burg)
    m_ok = sum(b["measured_ok"] for b in burg)
    f_ok = sum(b["far_ok"] for b in burg)
    row("Burgers closure = b (true positions)", f"{t_ok}/{n} seeds", "every seed", t_ok == n)
    row("Burgers closure = b (positions measured from noisy image)", f"{m_ok}/{n} seeds", "every seed", m_ok == n)
    row("circuit away from the core closes", f"{f_ok}/{n} seeds", "every seed", f_ok == n)
    row("polar displacement from B centroids", f"bias ({dx.mean():+.2f}, {dy.mean():+.2f}) pm, "
        f"spread ({dx.std(ddof=1):.2f}, {dy.std(ddof=1):.2f}) pm", "abs(bias) < 3 SEM + 0.3 pm per component",
        abs(dx.mean()) < 3 * sem(dx) + 0.3 and abs(dy.mean()) < 3 * sem(dy) + 0.3)

    elapsed = time.perf_counter() - t0
    return "\n".join([
        "## STEM simulator (`atomine.simulate.stem`)",
        "",
        f"Command: `python benchmarks/validate_stem.py` ({n} seeds, {elapsed:.0f} s).",
        "",
        "| check | result | criterion | status |",
        "|---|---|---|---|",
        *rows,
        "",
    ])


if __name__ == "__main__":
    print(run())
