"""Optional preprocessing steps of :func:`~.unmix.unmix_spectra`: the low-loss companion and EDS lines.

* ``lowloss_step``: zero-loss alignment of the core loss on a simultaneous low-loss SI and the
  t/lambda map.
* ``eds_step``: EDS axis in eV, the zero-energy noise peak cut, the elements of the summed
  spectrum identified and their principal lines mapped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError

EDS_LOW_KEV = 0.15  # the zero-energy noise peak lies below (identify_lines' default search floor)


def pixel_map(values, si: xr.DataArray, name: str, units: str, long_name: str) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=np.float32), dims=("y", "x"),
                        coords={d: si.coords[d] for d in ("y", "x") if d in si.coords}, name=name,
                        attrs={"units": units, "long_name": long_name})


def lowloss_step(si: xr.DataArray, lowloss, info: dict, maps: dict) -> xr.DataArray:
    """Zero-loss alignment of the core loss on the low loss, and the t/lambda map (recorded, not divided out)."""
    from ..spectra import align_zero_loss, t_over_lambda

    if not isinstance(lowloss, xr.DataArray) or lowloss.dims[-1] != "energy" or lowloss.shape[:2] != si.shape[:2]:
        raise InputError("lowloss must be a ('y', 'x', 'energy') low-loss spectrum image of the same pixels as the "
                         "core loss")
    aligned = align_zero_loss(lowloss, si)
    maps["zlp_shift"] = pixel_map(aligned.shifts.values, si, "zlp_shift", "eV", "zero-loss position before alignment")
    maps["t_over_lambda"] = pixel_map(t_over_lambda(aligned.lowloss).values, si, "t_over_lambda", "1",
                                       "relative thickness t/lambda (log-ratio)")
    info["lowloss"] = {"zero_loss_alignment": "core loss shifted per pixel by the low-loss ZLP position "
                                              "(atomine.spectra.align_zero_loss, axis cropped to the common range)",
                       "offset_ev": aligned.offset_ev,
                       "deconvolution": "none: plural scattering is left in; t/lambda is mapped so thick regions "
                                        "can be judged. Fourier-ratio deconvolution of the raw core loss before "
                                        "unmixing (atomine.spectra.fourier_ratio) raised the abundance error on "
                                        "a plural-scattering test (0.098 against 0.067), so it is not applied"}
    core = aligned.coreloss
    return core.copy(data=np.asarray(core.data, dtype=np.float64))


def eds_step(si: xr.DataArray, info: dict, maps: dict) -> xr.DataArray:
    """EDS: axis in eV, zero-energy noise peak cut, elements of the summed spectrum and their line maps."""
    import warnings

    from ..spectra import elemental_maps, energy_axis_ev, identify_lines, main_line

    try:
        _, e_ev = energy_axis_ev(si, "the EDS spectrum image")
    except InputError as exc:  # an uncalibrated axis ('px'): unmixable, but no line can be named
        info["eds"] = {"skipped": f"no X-ray lines identified or mapped and nothing cut: {exc}"}
        return si
    keep = e_ev >= EDS_LOW_KEV * 1000
    if keep.sum() < 8:
        raise InputError(f"fewer than 8 EDS channels lie above {EDS_LOW_KEV:g} keV (the zero-energy noise peak is "
                         "cut); give a spectrum image that covers the X-ray lines")
    total = float(si.values.sum())
    attrs = {**si.coords["energy"].attrs, "units": "eV"}
    out = si.isel(energy=np.flatnonzero(keep)).assign_coords(energy=("energy", e_ev[keep], attrs))
    table, elements = identify_lines(out)
    found = table[table["origin"].isin(["specimen", "grid/holder"])]
    record: dict[str, Any] = {
        "cut_below_kev": EDS_LOW_KEV,
        "counts_cut_fraction": float(1.0 - out.values.sum() / total) if total > 0 else 0.0,
        "identification": "atomine.spectra.identify_lines on the summed spectrum (min_snr 5)",
        "elements": list(elements), "artefacts": sorted(set(found.loc[found["origin"] != "specimen", "element"])),
        # annotate components only with what the summed spectrum holds: noise on a faint component
        # must not be named after an element the specimen lacks
        "candidates": sorted(set(found["element"])), "lines_mapped": {}, "lines_not_mapped": {},
    }
    labels = {}
    for el in elements:
        name = main_line(el, e_min_keV=e_ev[keep][0] / 1000, e_max_keV=e_ev[-1] / 1000)
        if name is None:
            record["lines_not_mapped"][el] = "no principal line (Ka, La, Ma) on the axis"
        else:
            labels[f"{el}_{name}"] = f"{el} {name}"

    def line_maps(lines):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = elemental_maps(out, elements=record["candidates"], lines=lines)
        return ds, [str(w.message) for w in caught]

    try:  # one matrix product over the energy axis for all lines; line by line only if one cannot be mapped
        parts = [line_maps(list(labels))] if labels else []
    except InputError:
        parts = []
        for label in labels:
            try:
                parts.append(line_maps([label]))
            except InputError as exc:
                record["lines_not_mapped"][label] = str(exc)
    for ds, caught in parts:
        for label in ds.data_vars:
            em = ds[label]
            maps[f"eds_{label}"] = pixel_map(em.values, out, f"eds_{label}", "counts",
                                              f"{labels[label]} net counts ({em.attrs['background']} background)")
            record["lines_mapped"][label] = {k: em.attrs[k] for k in ("line_keV", "window_ev", "background",
                                                                       "background_windows_ev")}
            warned = [w for w in caught if w.startswith(f"{label}:")]
            if warned:
                record["lines_mapped"][label]["warning"] = warned[0]
    info["eds"] = record
    return out
