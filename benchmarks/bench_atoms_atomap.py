"""Atom-column fitting against atomap 0.4.2, and how the time grows with the number of atoms.

1. ``atomine.atoms.fit_gaussians`` against atomap's
   ``Sublattice.refine_atom_positions_using_2d_gaussian`` (one HyperSpy model per atom) on the
   same simulated HAADF image (``make("haadf-perovskite", seed=0)``: SrTiO3 [001], probe tails,
   scan jitter, shot noise) from the same start positions (our background-subtracted centres
   of mass). Time per atom (ours: all atoms, best of 3 after a warm-up; atomap: a subset of
   A- and B-site columns, one run) and the error against the simulation's true apparent
   positions on that same subset. atomap runs unpatched with hyperspy 2.x.
2. ``locate_atoms`` (seeds, centres of mass, joint Gaussian fits) on model images of
   10^3 .. 10^5 Gaussian columns with Poisson noise: wall time and its growth exponent.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.spatial import cKDTree

ATOMAP_ATOMS = 120
SCALING_ATOMS = (1_000, 10_000, 100_000)
SPACING_PX, SIGMA_PX = 12.0, 1.6


def _truth_error_pm(x_px, y_px, truth, px_nm):
    d, i = cKDTree(truth[["x_px", "y_px"]].to_numpy()).query(np.column_stack([x_px, y_px]))
    dx = (x_px - truth.x_px.to_numpy()[i]) * px_nm * 1000
    dy = (y_px - truth.y_px.to_numpy()[i]) * px_nm * 1000
    return float(np.sqrt(np.mean(dx ** 2 + dy ** 2) / 2)), float(np.mean(dx)), float(np.mean(dy))


def _atomap_section() -> list[str]:
    from atomine.atoms import find_seeds, fit_gaussians, refine_centroid
    from atomine.simulate import make

    sim = make("haadf-perovskite", seed=0)
    px = float(sim.data.x[1] - sim.data.x[0])
    truth = sim.truth.tables["atoms"]
    start = refine_centroid(sim.data, find_seeds(sim.data))
    fit_gaussians(sim.data, start)  # warm-up: numba compilation
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        ours = fit_gaussians(sim.data, start)
        best = min(best, time.perf_counter() - t0)
    ours_ms = best / len(start) * 1e3
    # the subset both tools are scored on: A and B columns away from the border
    _, i = cKDTree(truth[["x_px", "y_px"]].to_numpy()).query(start[["x_px", "y_px"]].to_numpy())
    heavy = truth.sublattice.to_numpy()[i] <= 1
    inner = np.minimum.reduce([start.x_px, start.y_px, 511 - start.x_px, 511 - start.y_px]) > 12
    subset = np.flatnonzero(heavy & inner)[:ATOMAP_ATOMS]
    ok = ours.fit_ok.to_numpy()[subset]
    ours_err = _truth_error_pm(ours.x_px.to_numpy()[subset][ok], ours.y_px.to_numpy()[subset][ok], truth, px)
    lines = ["## Gaussian refinement against atomap 0.4.2", "",
             f"Image: `make(\"haadf-perovskite\", seed=0)` (512 x 512 px, {px} nm/px). Start positions: our "
             f"centres of mass. Scored on {len(subset)} A/B columns away from the border, against the "
             "simulation's apparent positions.", ""]
    try:
        import atomap.api as am
    except ImportError:
        return lines + [f"atomap is not installed (`pip install atomap==0.4.2`); ours: {ours_ms:.3f} ms per atom, "
                        f"RMS error {ours_err[0]:.2f} pm."]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = np.asarray(sim.data, dtype=np.float64)
        # all seeded columns, so atomap sees the same neighbours; only the subset is refined and timed
        sub = am.Sublattice(start[["x_px", "y_px"]].to_numpy(), image=image, fix_negative_values=True)
        sub.find_nearest_neighbors()
        sub.atom_list = [sub.atom_list[k] for k in subset]
        t0 = time.perf_counter()
        sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
        theirs_s = time.perf_counter() - t0
    theirs_ms = theirs_s / len(subset) * 1e3
    tx = np.array([a.pixel_x for a in sub.atom_list])
    ty = np.array([a.pixel_y for a in sub.atom_list])
    theirs_err = _truth_error_pm(tx, ty, truth, px)
    lines += ["| tool | ms per atom | RMS error (pm) | bias x, y (pm) |", "|---|---|---|---|",
              f"| atomine `fit_gaussians` (all {len(start)} atoms, joint, Poisson) | {ours_ms:.3f} | "
              f"{ours_err[0]:.2f} | {ours_err[1]:+.2f}, {ours_err[2]:+.2f} |",
              f"| atomap `refine_atom_positions_using_2d_gaussian` ({len(subset)} atoms) | {theirs_ms:.2f} | "
              f"{theirs_err[0]:.2f} | {theirs_err[1]:+.2f}, {theirs_err[2]:+.2f} |", "",
              f"Speed ratio per atom: **{theirs_ms / ours_ms:.0f}x**."]
    return lines


def _lattice_image(n_atoms: int, seed: int = 0):
    """Square lattice of ~n_atoms Gaussian columns (1000 counts each) on 5 counts/px, Poisson."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_atoms)))
    size = int(side * SPACING_PX)
    jj, ii = np.meshgrid(np.arange(side), np.arange(side))
    x = (jj.ravel() + 0.5) * SPACING_PX + rng.uniform(-0.5, 0.5, side * side)
    y = (ii.ravel() + 0.5) * SPACING_PX + rng.uniform(-0.5, 0.5, side * side)
    image = np.full((size, size), 5.0)
    r = int(np.ceil(5 * SIGMA_PX))
    off = np.arange(-r, r + 1)
    for start in range(0, x.size, 20_000):  # bounded memory
        bx, by = x[start:start + 20_000], y[start:start + 20_000]
        cols = np.rint(bx).astype(int)[:, None, None] + off[None, None, :]
        rows = np.rint(by).astype(int)[:, None, None] + off[None, :, None]
        val = 1000 / (2 * np.pi * SIGMA_PX ** 2) * np.exp(
            -((cols - bx[:, None, None]) ** 2 + (rows - by[:, None, None]) ** 2) / (2 * SIGMA_PX ** 2))
        inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
        rr, cc = np.broadcast_arrays(rows, cols)
        np.add.at(image, (rr[inside], cc[inside]), np.broadcast_to(val, rr.shape)[inside])
    return rng.poisson(image).astype(np.float64), side * side


def _scaling_section() -> list[str]:
    from atomine.atoms import locate_atoms

    locate_atoms(_lattice_image(400)[0])  # warm-up
    lines = ["", "## Scaling with the number of atoms (`locate_atoms`, 2 cores)", "",
             "| atoms | image (px) | found | fit_ok | seconds | ms per atom |", "|---|---|---|---|---|---|"]
    counts, times = [], []
    for n in SCALING_ATOMS:
        image, n_true = _lattice_image(n)
        t0 = time.perf_counter()
        table = locate_atoms(image)
        dt = time.perf_counter() - t0
        counts.append(n_true)
        times.append(dt)
        lines.append(f"| {n_true} | {image.shape[0]} | {len(table)} | {table.fit_ok.mean():.4f} | {dt:.2f} | "
                     f"{dt / n_true * 1e3:.3f} |")
    slope = np.polyfit(np.log(counts), np.log(times), 1)[0]
    lines += ["", f"Time grows as N^{slope:.2f} (least-squares slope of log time against log atoms)."]
    return lines


def run() -> str:
    return "\n".join(_atomap_section() + _scaling_section()) + "\n"


if __name__ == "__main__":
    print(run())
