"""Ground-truth tables and derived parameters of a simulated STM topograph."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ._spm_noise import apparent_positions
from ._stm_lattice import SurfaceLattice, blurred, render
from ._stm_occupancy import DOPANT, HOST, VACANCY, warren_cowley_alpha1

CLASS_NAMES = {HOST: "host", DOPANT: "dopant", VACANCY: "vacancy"}
# A sites adjacent to the surface feature of cell (i, j), as (di, dj) index offsets.
_A_NEIGHBOURS = {"O1": ((-1, 0), (0, 0)), "O2": ((0, -1), (0, 0)), "Mn": ((-1, -1), (-1, 0), (0, -1), (0, 0))}


def sublattice_order(families) -> dict[str, int]:
    """Sublattice index per imaged species: 0 = highest set apparent height (ties keep O1, O2, Mn order)."""
    ranked = sorted(range(len(families)), key=lambda k: -families[k][1])
    return {families[k][0]: rank for rank, k in enumerate(ranked)}


def _inside(x_px, y_px, shape) -> np.ndarray:
    ny, nx = shape
    return (x_px >= -0.5) & (x_px < nx - 0.5) & (y_px >= -0.5) & (y_px < ny - 0.5)


def _neighbour_counts(occ, name, i, j):
    n_i, n_j = occ.shape
    n_dop = np.zeros(i.shape, dtype=np.int64)
    n_vac = np.zeros(i.shape, dtype=np.int64)
    for di, dj in _A_NEIGHBOURS[name]:
        ii, jj = i + di, j + dj
        ok = (ii >= 0) & (ii < n_i) & (jj >= 0) & (jj < n_j)
        val = np.where(ok, occ[np.clip(ii, 0, n_i - 1), np.clip(jj, 0, n_j - 1)], HOST)
        n_dop += val == DOPANT
        n_vac += val == VACANCY
    return n_dop, n_vac


def truth_tables(occ, lattice: SurfaceLattice, families, defects, tip, px, shape, drift, creep, tau):
    """(atoms, sites) DataFrames; heights are the noiseless tip-blurred topograph at the true positions."""
    def height(u, v, fams):
        return sum((render(u, v, lattice, n, *blurred(h, s, tip)) for n, h, s in fams), np.zeros(np.shape(u)))

    order = sublattice_order(families)
    frames = []
    for name, h, _ in families:
        i, j, x, y = lattice.positions(name)
        xp, yp = apparent_positions(x, y, px, shape, drift, creep, tau)
        keep = _inside(xp, yp, shape)
        i, j, x, y, xp, yp = (c[keep] for c in (i, j, x, y, xp, yp))
        n_dop, n_vac = _neighbour_counts(occ, name, i, j)
        frames.append(pd.DataFrame({
            "x": x, "y": y, "x_px": xp, "y_px": yp,
            "sublattice": np.full(x.size, order[name], dtype=np.int64), "species": name,
            "site_i": i.astype(np.int64), "site_j": j.astype(np.int64),
            "height_nm": height(*lattice.to_frac(x, y), families + defects),
            "base_height_nm": np.full(x.size, h), "n_dopant_nn": n_dop, "n_vacancy_nn": n_vac, "cls": "host",
        }))
    atoms = pd.concat(frames, ignore_index=True).sort_values(["sublattice", "site_i", "site_j"], kind="stable")
    atoms = atoms.reset_index(drop=True)

    i, j, x, y = lattice.positions("A")
    xp, yp = apparent_positions(x, y, px, shape, drift, creep, tau)
    u, v = lattice.to_frac(x, y)
    cls = occ[i, j]
    sites = pd.DataFrame({
        "site_i": i.astype(np.int64), "site_j": j.astype(np.int64), "x": x, "y": y, "x_px": xp, "y_px": yp,
        "cls": pd.Series(cls).map(CLASS_NAMES).to_numpy(), "in_image": _inside(xp, yp, shape),
        "height_nm": height(u, v, families + defects), "dopant_nm": height(u, v, defects),
    })
    return atoms, sites


def _alpha(occ, **kw):
    try:
        return warren_cowley_alpha1(occ, **kw)
    except InputError:  # a single species or no bonds: alpha_1 is undefined, not zero
        return None


def derived_parameters(occ, lattice: SurfaceLattice, sites: pd.DataFrame, signal_std, noise, families) -> dict:
    """Lattice geometry, composition, Warren-Cowley alpha_1 and the realised SNR, JSON-ready."""
    in_image = sites["in_image"].to_numpy().reshape(occ.shape)
    noise_std = float(noise.std())
    n_dop, n_vac = int((occ == DOPANT).sum()), int((occ == VACANCY).sum())
    return {
        "a1_nm": lattice.a1.tolist(), "a2_nm": lattice.a2.tolist(), "origin_nm": list(lattice.origin),
        "occupancy_shape": list(occ.shape), "n_dopant": n_dop, "n_vacancy": n_vac,
        "n_host": int(occ.size - n_dop - n_vac), "dopant_fraction": n_dop / occ.size,
        "n_dopant_in_image": int(((occ == DOPANT) & in_image).sum()),
        "alpha1_periodic": _alpha(occ, periodic=True), "alpha1_open": _alpha(occ, periodic=False),
        "alpha1_in_image": _alpha(occ, periodic=False, mask=in_image),
        "signal_std_nm": signal_std, "noise_std_nm": noise_std,
        "snr_realised": signal_std / noise_std if noise_std > 0 else None,
        "sublattices": sublattice_order(families),
    }
