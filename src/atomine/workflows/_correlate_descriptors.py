"""Descriptor maps on the spectral grid for :func:`~atomine.workflows.correlate.correlate`.

Structural (from the image frame, through the registration's transform): ``dopant_fraction``,
``vacancy_fraction``, ``strain_exx``, ``strain_eyy``, ``strain_exy``, ``strain_trace`` (areal
dilatation exx + eyy), ``rotation`` (deg), ``polarization_dx``, ``polarization_dy``,
``polarization_magnitude`` (pm), ``sro_alpha1``, ``phase_abundance_<k>``; ``image_intensity`` only
when nothing else is available (no atom columns, no segmentation), since the Z-contrast of the image
would otherwise echo the dopant density.

Spectral (on the spectral grid already): ``abundance_<component>``, EELS ``edge_onset_<edge>`` (eV) and
``edge_intensity_<edge>`` (counts), EDS ``eds_<El>_<line>`` (net counts), CITS ``gap`` and
``gap_centre`` (V), and the thickness ``t_over_lambda`` where the unmixing measured it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

from ..correlate import atoms_to_grid, map_to_grid, sro_to_grid
from ..errors import InputError

MIN_VACANCIES = 10      # fewer empty sites make a map of isolated ones, not a descriptor
SRO_SITES = 9           # sites of the dopant sublattice per local SRO window (at least)


def slug(name) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "unnamed"


def plain(da: xr.DataArray, grid: xr.DataArray, name: str, long_name: str, units: str, source: str) -> xr.DataArray:
    """``da`` as a (y, x) map with exactly the grid's coordinates and the descriptor's attributes."""
    values = np.asarray(da.values if isinstance(da, xr.DataArray) else da, dtype=np.float64)
    if values.shape != grid.shape:
        raise InputError(f"descriptor {name} is {values.shape} but the spectral grid is {grid.shape}")
    coords = {d: (d, grid[d].values, dict(grid[d].attrs)) for d in ("y", "x")}
    return xr.DataArray(values, dims=("y", "x"), coords=coords, name=name,
                        attrs={"long_name": long_name, "units": units, "source": source})


def _area_grid(table, columns, grid, transform) -> xr.Dataset:
    try:
        return atoms_to_grid(table, columns, grid, transform, weighting="area")
    except TypeError:  # an atoms_to_grid without area weighting: footprint counts
        return atoms_to_grid(table, columns, grid, transform)


def _dopant_sublattice(atoms: pd.DataFrame):
    if "sublattice" not in atoms or not (atoms["cls"] == "dopant").any():
        return None
    counts = atoms[atoms["cls"] == "dopant"].groupby("sublattice").size()
    return counts.idxmax()


def _lattice_spacing_nm(table: pd.DataFrame) -> float:
    from scipy.spatial import cKDTree

    xy = table[["x", "y"]].to_numpy(dtype=float)
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 3:
        return float("nan")
    d, _ = cKDTree(xy).query(xy, k=2)
    return float(np.median(d[:, 1]))


def _pixel_nm(grid: xr.DataArray, transform) -> float:
    """Spectral pixel pitch in the image frame (nm), from the transform's area scale."""
    dx = float(abs(grid["x"].values[1] - grid["x"].values[0])) if grid.sizes["x"] > 1 else 1.0
    dy = float(abs(grid["y"].values[1] - grid["y"].values[0])) if grid.sizes["y"] > 1 else dx
    det = abs(np.linalg.det(np.asarray(transform.matrix)[:2, :2])) if transform is not None else 1.0
    return float(np.sqrt(dx * dy * det))


def atom_descriptors(tables: dict[str, pd.DataFrame], grid, transform, notes: list[str]) -> dict[str, xr.DataArray]:
    out: dict[str, xr.DataArray] = {}
    atoms = tables.get("atoms")
    if atoms is not None and len(atoms):
        sub_id = _dopant_sublattice(atoms)
        if sub_id is None:
            notes.append("no dopant columns in the atom table: no dopant_fraction or sro_alpha1")
        else:
            sub = atoms[atoms["sublattice"] == sub_id]
            filled = sub[sub["cls"].isin(["host", "dopant"])]
            ds = _area_grid(filled, {"dopant_fraction": lambda t: (t["cls"] == "dopant").astype(float)}, grid,
                            transform)
            out["dopant_fraction"] = plain(ds["dopant_fraction"], grid, "dopant_fraction",
                                           f"dopant fraction of sublattice {sub_id}", "1", "atoms")
            n_vac = int((sub["cls"] == "vacancy").sum())
            if n_vac >= MIN_VACANCIES:
                sites = sub[sub["cls"].isin(["host", "dopant", "vacancy"])]
                ds = _area_grid(sites, {"v": lambda t: (t["cls"] == "vacancy").astype(float)}, grid, transform)
                out["vacancy_fraction"] = plain(ds["v"], grid, "vacancy_fraction",
                                                f"vacant-site fraction of sublattice {sub_id}", "1", "atoms")
            if {"site_i", "site_j"} <= set(atoms.columns):
                a = _lattice_spacing_nm(filled)
                w = int(np.ceil(np.sqrt(SRO_SITES) * a / _pixel_nm(grid, transform))) if np.isfinite(a) else 1
                w = max(1, w + (w % 2 == 0))
                sro = sro_to_grid(atoms, grid, transform, shell=1, window_px=w)
                out["sro_alpha1"] = plain(sro, grid, "sro_alpha1",
                                          f"local Warren-Cowley alpha_1 of dopants ({w} x {w} px window)", "1", "atoms")
    strain = tables.get("strain")
    if strain is not None and len(strain):
        ok = strain[strain["ok"].astype(bool)] if "ok" in strain else strain
        cols = {"strain_exx": ("exx", "strain e_xx", "1"), "strain_eyy": ("eyy", "strain e_yy", "1"),
                "strain_exy": ("exy", "shear strain e_xy", "1"),
                "strain_trace": (lambda t: t["exx"] + t["eyy"], "areal dilatation e_xx + e_yy", "1"),
                "rotation": ("rotation", "lattice rotation (counter-clockwise as displayed)", "deg")}
        ds = _area_grid(ok, {k: v[0] for k, v in cols.items()}, grid, transform)
        for k, (_, long_name, units) in cols.items():
            out[k] = plain(ds[k], grid, k, long_name, units, "atoms")
    pol = tables.get("polarisation")
    if pol is not None and len(pol) and {"dx_pm", "dy_pm"} <= set(pol.columns):
        ok = pol[pol["ok"].astype(bool)] if "ok" in pol else pol
        cols = {"polarization_dx": ("dx_pm", "off-centre displacement x"),
                "polarization_dy": ("dy_pm", "off-centre displacement y"),
                "polarization_magnitude": (lambda t: np.hypot(t["dx_pm"], t["dy_pm"]), "off-centre displacement |d|")}
        ds = _area_grid(ok, {k: v[0] for k, v in cols.items()}, grid, transform)
        for k, (_, long_name) in cols.items():
            out[k] = plain(ds[k], grid, k, long_name, "pm", "atoms")
    return out


def segmentation_descriptors(maps: xr.Dataset | None, grid, transform) -> dict[str, xr.DataArray]:
    if maps is None or "abundance" not in maps or maps.sizes.get("component", 0) < 2:
        return {}
    out = {}
    for k in range(maps.sizes["component"]):
        ab = maps["abundance"].isel(component=k)
        ab = ab.drop_vars([c for c in ab.coords if c not in ("y", "x")])
        name = f"phase_abundance_{k}"
        out[name] = plain(map_to_grid(ab, grid, transform), grid, name, f"sliding-FFT phase {k} abundance", "1",
                          "segmentation")
    return out


def image_descriptor(image: xr.DataArray, grid, transform) -> dict[str, xr.DataArray]:
    m = map_to_grid(image.astype(np.float64), grid, transform)
    return {"image_intensity": plain(m, grid, "image_intensity", "image intensity (footprint mean)",
                                     str(image.attrs.get("units", "counts")), "image")}


def spectral_descriptors(maps: xr.Dataset | None, si: xr.DataArray | None, annotations, grid,
                         notes: list[str]) -> dict[str, xr.DataArray]:
    out: dict[str, xr.DataArray] = {}
    if maps is not None:
        names = [str(n) for n in maps["component_name"].values] if "component_name" in maps.coords else \
            [str(k) for k in range(maps.sizes["component"])]
        keep = list(range(len(names)))
        ab = np.asarray(maps["abundance"].values, dtype=np.float64)
        if len(names) == 2 and np.nanmax(np.abs(ab.sum(axis=0) - 1.0)) < 1e-5:
            # closure makes one abundance the complement of the other: testing both doubles every test
            # (and the multiple-testing correction) for no information; keep the minority phase
            keep = [int(np.argmin(np.nanmean(ab.reshape(2, -1), axis=1)))]
            notes.append(f"abundance of {names[1 - keep[0]]} = 1 - abundance of {names[keep[0]]} (sum to one): "
                         "tested once")
        for k in keep:
            key = f"abundance_{slug(names[k])}"
            out[key] = plain(maps["abundance"].isel(component=k), grid, key, f"abundance of {names[k]}", "1",
                             "unmixing")
        for v in maps.data_vars:
            if str(v).startswith("eds_"):
                out[str(v)] = plain(maps[v], grid, str(v), f"net X-ray counts {str(v)[4:]}", "counts", "unmixing")
        if "t_over_lambda" in maps and np.isfinite(maps["t_over_lambda"].values).any():
            out["t_over_lambda"] = plain(maps["t_over_lambda"], grid, "t_over_lambda", "relative thickness t/lambda",
                                         "1", "unmixing")
    if si is not None and tuple(si.dims)[-1] == "bias":
        from ..spectra import didv, gap_map

        gaps = gap_map(didv(si))
        out["gap"] = plain(gaps["gap_v"], grid, "gap", "gap width", "V", "spectra")
        if np.isfinite(gaps["gap_centre_v"].values).mean() >= 0.5:
            out["gap_centre"] = plain(gaps["gap_centre_v"], grid, "gap_centre", "gap centre", "V", "spectra")
    elif si is not None and "eds" not in str(si.attrs.get("signal", "")).lower():
        out.update(_edge_descriptors(si, annotations, grid, notes))
    return out


def _edge_descriptors(si, annotations, grid, notes: list[str]) -> dict[str, xr.DataArray]:
    from ..spectra import edge_maps

    try:
        em = edge_maps(si, annotations if annotations is not None and len(annotations) else None)
    except InputError as exc:
        notes.append(f"no per-pixel edge maps: {exc}")
        return {}
    out = {}
    for v in em.data_vars:
        if str(v).endswith("_err"):
            continue
        da = em[v]
        out[str(v)] = plain(da, grid, str(v), str(da.attrs.get("long_name", v)), str(da.attrs.get("units", "")),
                            "spectra")
    return out


__all__ = ["atom_descriptors", "image_descriptor", "plain", "segmentation_descriptors", "slug",
           "spectral_descriptors"]
