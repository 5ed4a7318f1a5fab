"""Nanonis ``.3ds`` grid spectroscopy (CITS) files, read from the published format description.

Layout: ``Key=value`` header lines (CRLF; values may be quoted) until ``:HEADER_END:``; the
binary block follows the end line: big-endian float32, for each grid point in row-major
order (``Grid dim`` = "Nx x Ny", x fastest) the ``# Parameters (4 byte)`` values (fixed
parameters such as ``Sweep Start;Sweep End``, then experiment parameters such as
``X (m);Y (m);Z (m)``), then ``Points`` values per channel of ``Channels``.

What the reader returns:

* one CITS grid per channel (dims ``y, x, bias``; bias in V, ascending -- a downward sweep is
  reversed, so index 0 is always the most negative bias), named after the channel
  (``Current``, ``LI_Demod_1_X``, ``Current_bwd`` for ``Current [bwd] (A)``), values in the
  channel's unit (A for currents; metres become nm);
* a ``Z`` topography image (nm) from the per-point ``Z (m)`` parameter when present;
* a summary (min / max / mean) of every per-point parameter in ``original_metadata``.

The bias axis is ``linspace(Sweep Start, Sweep End, Points)`` of the first measured point;
when other points disagree a NanonisWarning says so. A sweep signal that is not a voltage
(e.g. ``Z (m)``) gives dims ``y, x, sweep`` in its own unit (lengths in nm).

Geometry: ``Grid settings`` = centre x; centre y; width; height; angle (m, m, m, m, deg), with
atomine's y convention (``y = -y_instrument``, see :mod:`._nanonis_header`). Where the file
has the per-point ``X (m)`` / ``Y (m)`` parameters, they decide the orientation (whether the
first stored row is the bottom or the top of the frame, the x direction) and whether the
outer points sit on the frame edge (step = width / (Nx - 1)) or are pixel centres (width / Nx).
Without them the first stored row is taken as the bottom (as nanonispy and SpmGrids.jl
assume) and points as pixel centres. nanonispy returns the stored order, so
``atomine == nanonispy[::-1]`` for bottom-first grids (and ``[..., ::-1]`` for downward sweeps).

Incomplete grids: an aborted measurement ends the file after the last measured point, or
leaves unmeasured points NaN. Both load, padded with NaN, with an IncompleteDataWarning that
counts the points whose first or last sample of any channel is NaN. A file that ends inside
a point is truncated: CorruptFileError with expected and found bytes.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np

from ..data import bias_factor_to_v, cits_grid, explicit_coord, generic, image, linear_coord
from ..errors import CalibrationError, CorruptFileError
from ._nanonis_header import (
    ContentHash,
    IncompleteDataWarning,
    NanonisWarning,
    decode,
    frame_axes,
    iso_datetime,
    lazy_native,
    load_step,
    memmap_token,
    name_and_unit,
    read_file,
    read_head,
    safe_name,
    to_float,
    to_int,
    to_native,
    unique_names,
    value_scale,
)

_END = b":HEADER_END:"
_CHUNK_BYTES = 64 << 20


def read_3ds(path: str, lazy: bool = False) -> list:
    """Every channel of a Nanonis ``.3ds`` grid as CITS DataArrays, plus the ``Z`` image.

    Parameters
    ----------
    path : str
        The ``.3ds`` file (never modified).
    lazy : bool
        Memory-map the binary block and wrap it in dask instead of reading it; the small
        per-point parameters are read either way.

    Returns
    -------
    list of xarray.DataArray
        CITS grids ``(y, x, bias)`` (nm, nm, V) in ``Channels`` order, then ``Z`` ``(y, x)`` in nm.
    """
    head = read_head(path, _END, ".3ds")
    end = head.find(_END)
    eol = head.find(b"\n", end)
    if eol < 0:
        raise CorruptFileError(f"{path}: not a Nanonis .3ds file (nothing after the header end marker)")
    data_start = eol + 1
    hdr = _parse_header(decode(head[:end]))
    lay = _layout(hdr, path)
    nx, ny, npar, npts, nch = lay["nx"], lay["ny"], lay["n_params"], lay["points"], len(lay["channels"])
    n_total, plen = nx * ny, lay["point_len"]
    found = os.path.getsize(path) - data_start
    if found < n_total * plen * 4 and (found <= 0 or found % (plen * 4)):
        raise CorruptFileError(
            f"{path}: file is truncated -- the header promises {n_total * plen * 4} bytes of data after byte {data_start} "
            f"({n_total} points of {plen * 4} bytes), found {max(found, 0)}"
            f"{', which ends inside a point' if found > 0 else ''}; re-copy the file from the instrument PC")
    n_present = min(n_total, found // (plen * 4))
    if lazy:
        digest = ContentHash(path=path)
        mm = np.memmap(path, dtype=">f4", mode="r", offset=data_start, shape=(n_present, plen))
    else:
        raw = read_file(path)
        digest = ContentHash(raw)  # hashes the bytes just read, alongside the decoding below
        mm = np.frombuffer(raw, dtype=">f4", count=n_present * plen, offset=data_start).reshape(n_present, plen)

    params = np.full((n_total, npar), np.nan)
    params[:n_present] = mm[:, :npar]
    # First and last sample of every channel: NaN there marks a point never (or not fully) measured.
    edge_cols = [i for c in range(nch) for i in (npar + c * npts, npar + (c + 1) * npts - 1)]
    edges = np.full((n_total, len(edge_cols)), np.nan, dtype=np.float32)
    edges[:n_present] = mm[:, edge_cols]
    incomplete = np.isnan(edges).any(axis=1)
    if incomplete.all():
        raise CorruptFileError(f"{path}: no grid point was measured (every point is NaN or missing)")
    if incomplete.any():
        warnings.warn(f"{path}: grid incomplete -- {int(incomplete.sum())} of {n_total} points were not (fully) "
                      f"measured and hold NaN ({n_total - n_present} missing from the end of the file)",
                      IncompleteDataWarning, stacklevel=3)

    orient = _orientation(params, lay, path)
    bias, reverse, sweep_unit = _sweep_axis(params, lay, path)
    if lay["size"] is not None:
        pixel_size, origin = frame_axes(lay["centre"], lay["size"], (nx, ny), path, orient["edge"])
    else:
        pixel_size, origin = None, None
    meta = _metadata(hdr, lay, orient, int(incomplete.sum()))
    original = {"header": hdr, "parameters": _param_summary(params, lay["param_names"])}
    block = _Block(path, data_start, lay, mm, lazy)

    out = []
    names = unique_names([safe_name(name) for _, name, _ in lay["channels"]])
    for c, ((label, _, unit), name) in enumerate(zip(lay["channels"], names)):
        factor, units = value_scale(unit)
        cube = block.channel(c, orient, reverse, factor)
        md = dict(meta, channel=label)
        common = dict(name=name, value_units=units, metadata=md, original_metadata=original)
        if sweep_unit == "V":
            out.append(cits_grid(cube, pixel_size=pixel_size, bias=bias, origin=origin, allow_nan=True, **common))
        else:
            out.append(_sweep_cube(cube, bias, sweep_unit, pixel_size, origin, common))
    z = _param_index(lay, "Z (m)")
    if z is not None:
        zimg = _orient(params[:, z].reshape(ny, nx).astype(np.float32), orient) * np.float32(1e9)
        out.append(image(zimg, pixel_size=pixel_size, origin=origin, signal="STM", value_units="nm", name="Z", allow_nan=True,
                         metadata=dict(meta, channel="Z (m)"), original_metadata=original))
    # Waited for last, so that the hash runs while the grids are decoded and wrapped.
    prov = [load_step(path, "Nanonis 3ds", lazy, digest.result())]
    for arr in out:
        arr.attrs["provenance"] = list(prov)
    return out


def _parse_header(text: str) -> dict:
    """``{key: value}`` with surrounding quotes removed; values are kept as text."""
    hdr = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        hdr[key.strip()] = value
    return hdr


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(";") if v.strip()]


def _layout(hdr: dict, path: str) -> dict:
    """Grid size, channels, parameters and bytes per point from the header; CorruptFileError naming a bad key."""
    for key in ("Grid dim", "Points", "Channels"):
        if not hdr.get(key, "").strip():
            raise CorruptFileError(f"{path}: header key {key!r} is missing; the file is damaged or not a grid")
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", hdr["Grid dim"])
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise CorruptFileError(f"{path}: header value 'Grid dim'={hdr['Grid dim']!r} is not 'Nx x Ny'; the header is damaged")
    points = to_int(hdr["Points"], "Points", path)
    channels = [(label, *name_and_unit(label)) for label in _split(hdr["Channels"])]
    names = _split(hdr.get("Fixed parameters", "")) + _split(hdr.get("Experiment parameters", ""))
    n_params = len(names)
    if hdr.get("# Parameters (4 byte)", "").strip():
        n_params = int(to_float(hdr["# Parameters (4 byte)"], "# Parameters (4 byte)", path))
        if n_params < 0:
            raise CorruptFileError(f"{path}: header value '# Parameters (4 byte)' is negative")
    names = (names + [f"parameter {i}" for i in range(len(names), n_params)])[:n_params]
    if hdr.get("Experiment size (bytes)", "").strip():
        size = to_float(hdr["Experiment size (bytes)"], "Experiment size (bytes)", path)
        if size != points * len(channels) * 4:
            raise CorruptFileError(f"{path}: header says 'Experiment size (bytes)'={size:g} but Points x Channels x 4 = "
                                   f"{points * len(channels) * 4}; the header is inconsistent")
    centre = size_m = None
    angle = 0.0
    if hdr.get("Grid settings", "").strip():
        vals = [to_float(v, "Grid settings", path) for v in hdr["Grid settings"].split(";")]
        if len(vals) < 4:
            raise CorruptFileError(f"{path}: header value 'Grid settings' has {len(vals)} numbers, expected 5 "
                                   "(centre x; centre y; width; height; angle)")
        centre, size_m, angle = (vals[0], vals[1]), (vals[2], vals[3]), (vals[4] if len(vals) > 4 else 0.0)
    return {"nx": int(m.group(1)), "ny": int(m.group(2)), "points": points, "channels": channels,
            "param_names": names, "n_params": n_params, "point_len": n_params + points * len(channels),
            "centre": centre, "size": size_m, "angle": angle, "sweep": name_and_unit(hdr.get("Sweep Signal", ""))}


def _param_index(lay: dict, name: str) -> int | None:
    lowered = [n.lower() for n in lay["param_names"]]
    return lowered.index(name.lower()) if name.lower() in lowered else None


class _Block:
    """The spectra of each channel as (ny, nx, Points) native float32 in display order, NaN where not measured.

    ``records`` is the stored (points present, values per point) big-endian array: read from the
    file (eager) or a memory map (lazy).
    """

    def __init__(self, path, offset, lay, records, lazy):
        self.path, self.offset, self.lay, self.records, self.lazy = path, offset, lay, records, lazy

    def channel(self, c: int, orient: dict, reverse: bool, factor: float):
        """Channel ``c`` oriented for display, sweep reversed if asked, times ``factor``."""
        lay = self.lay
        sl = slice(lay["n_params"] + c * lay["points"], lay["n_params"] + (c + 1) * lay["points"])
        if self.lazy:
            return self._lazy(c, sl, orient, reverse, factor)
        nx, ny, npts = lay["nx"], lay["ny"], lay["points"]
        src = self.records[:, sl]
        if src.shape[0] < nx * ny:
            # Aborted grid: pad the points missing from the end of the file (rare, so one extra copy).
            padded = np.full((nx * ny, npts), np.nan, dtype=np.float32)
            padded[: src.shape[0]] = src
            src = padded
        # Flips and the sweep reversal are views; to_native converts, orders and scales in one pass.
        return to_native(_display(src.reshape(ny, nx, npts), orient, reverse), factor)

    def _lazy(self, c: int, sl: slice, orient: dict, reverse: bool, factor: float):
        """Dask over the memory map: complete rows, the row the measurement stopped in, NaN rows never reached.

        Each part is oriented on its own (a row flip also reverses the order of the parts), so a
        complete grid is a single from_array layer with no concatenation.
        """
        import dask.array as da

        lay = self.lay
        nx, ny, npts, mm = lay["nx"], lay["ny"], lay["points"], self.records
        n_present = mm.shape[0]
        rows, rem = divmod(n_present, nx)
        parts = []
        if rows:
            view = _display(mm[: rows * nx].reshape(rows, nx, lay["point_len"])[:, :, sl], orient, reverse)
            per_chunk = max(1, _CHUNK_BYTES // (nx * npts * 4))
            name = "nanonis-3ds-" + memmap_token(self.path, self.offset, n_present, lay["point_len"], c, factor,
                                                  orient["flip_rows"], orient["flip_cols"], reverse)
            parts.append(lazy_native(view, factor, (per_chunk, nx, npts), name))
        if rem:
            # The row the measurement stopped in: small, read now.
            row = np.full((1, nx, npts), np.nan, dtype=np.float32)
            row[0, :rem] = mm[rows * nx: n_present, sl]
            parts.append(da.from_array(to_native(_display(row, orient, reverse), factor)))
        missing = ny - rows - (1 if rem else 0)
        if missing:
            parts.append(da.full((missing, nx, npts), np.nan, dtype=np.float32))
        if orient["flip_rows"]:
            parts = parts[::-1]
        return da.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def _display(cube, orient: dict, reverse: bool):
    """Stored (rows, nx, points) -> display order, as views: row/column flips and the sweep reversal."""
    cube = _orient(cube, orient)
    return cube[:, :, ::-1] if reverse else cube


def _orientation(params: np.ndarray, lay: dict, path: str) -> dict:
    """Row/column order and point spacing, from the per-point X/Y positions where the file has them."""
    default = {"flip_rows": True, "flip_cols": False, "edge": (False, False), "source": "default (first row at the bottom)"}
    ix, iy = _param_index(lay, "X (m)"), _param_index(lay, "Y (m)")
    nx, ny = lay["nx"], lay["ny"]
    if ix is None or iy is None or lay["size"] is None or nx * ny < 2:
        return default
    cols, rows = np.tile(np.arange(nx), ny), np.repeat(np.arange(ny), nx)
    ok = np.isfinite(params[:, ix]) & np.isfinite(params[:, iy])
    if len(np.unique(cols[ok])) < min(nx, 2) or len(np.unique(rows[ok])) < min(ny, 2):
        return default
    dx = params[ok, ix] - lay["centre"][0]
    dy = params[ok, iy] - lay["centre"][1]
    best = None
    # The sign convention of the frame angle is not documented: keep the one under which the
    # positions lie on a regular grid (they coincide for angle 0).
    for sign in (1.0, -1.0):
        a = np.deg2rad(sign * lay["angle"])
        u = dx * np.cos(a) + dy * np.sin(a)
        v = -dx * np.sin(a) + dy * np.cos(a)
        fu = _line_fit(cols[ok], u)
        fv = _line_fit(rows[ok], v)
        resid = fu[2] + fv[2]
        if best is None or resid < best[0]:
            best = (resid, fu, fv)
    _, (su, _, ru), (sv, _, rv) = best
    w, h = lay["size"]
    pitch = min(w / nx if nx > 1 else np.inf, h / ny if ny > 1 else np.inf)
    if max(ru, rv) > 0.25 * pitch:
        warnings.warn(f"{path}: the per-point X/Y positions do not form the regular grid of 'Grid settings'; "
                      "assuming the first stored row is the bottom one", NanonisWarning, stacklevel=4)
        return default

    def on_edge(step, size, n):
        return n > 1 and abs(abs(step) - size / (n - 1)) < abs(abs(step) - size / n)

    return {"flip_rows": bool(sv > 0) if ny > 1 else False, "flip_cols": bool(su < 0) if nx > 1 else False,
            "edge": (on_edge(su, w, nx), on_edge(sv, h, ny)), "source": "per-point X/Y parameters"}


def _line_fit(index: np.ndarray, value: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, rms residual) of value against index; a single index value gives slope 0."""
    if np.ptp(index) == 0:
        return 0.0, float(value.mean()), float(value.std())
    slope, intercept = np.polyfit(index.astype(np.float64), value, 1)
    return float(slope), float(intercept), float(np.sqrt(np.mean((value - (slope * index + intercept)) ** 2)))


def _orient(arr, orient: dict):
    """Stored order -> display order (row 0 at the top, x to the right)."""
    if orient["flip_rows"]:
        arr = arr[::-1]
    if orient["flip_cols"]:
        arr = arr[:, ::-1]
    return arr


def _sweep_axis(params: np.ndarray, lay: dict, path: str):
    """(ascending sweep values, whether to reverse, unit) from the points' Sweep Start / Sweep End."""
    i0, i1 = _param_index(lay, "Sweep Start"), _param_index(lay, "Sweep End")
    if i0 is None or i1 is None:
        raise CorruptFileError(f"{path}: the points carry no 'Sweep Start'/'Sweep End' parameters; cannot build the sweep axis")
    start, stop = params[:, i0], params[:, i1]
    ok = np.isfinite(start) & np.isfinite(stop)
    if not ok.any():
        raise CorruptFileError(f"{path}: no grid point has a finite sweep range")
    s0, s1 = float(start[ok][0]), float(stop[ok][0])
    tol = 1e-5 * max(abs(s0), abs(s1), 1e-30)
    if np.abs(start[ok] - s0).max() > tol or np.abs(stop[ok] - s1).max() > tol:
        warnings.warn(f"{path}: the sweep range differs between grid points (start {start[ok].min():.6g}..{start[ok].max():.6g}, "
                      f"end {stop[ok].min():.6g}..{stop[ok].max():.6g}); using the first point's {s0:.6g}..{s1:.6g}",
                      NanonisWarning, stacklevel=3)
    values = np.linspace(s0, s1, lay["points"])
    if lay["points"] > 1 and s0 == s1:
        raise CalibrationError(f"{path}: sweep start and end are both {s0:g}; the sweep axis is unusable")
    name, unit = lay["sweep"]
    try:
        factor, unit = bias_factor_to_v(unit), "V"
    except CalibrationError:
        factor, unit = value_scale(unit)
    reverse = lay["points"] > 1 and s1 < s0
    return (values[::-1] if reverse else values) * factor, reverse, unit


def _sweep_cube(cube, sweep, unit, pixel_size, origin, common):
    """A grid over a sweep that is not a bias (e.g. I(z)): dims (y, x, sweep) in the sweep's own unit."""
    ny, nx = cube.shape[:2]
    (py, px), (oy, ox), units = (pixel_size, origin, "nm") if pixel_size else ((1.0, 1.0), (0.0, 0.0), "px")
    coords = {"y": linear_coord(ny, py, oy, units, "y"), "x": linear_coord(nx, px, ox, units, "x"),
              "sweep": explicit_coord(sweep, unit, "sweep")}
    return generic(cube, ("y", "x", "sweep"), coords, signal="CITS", allow_nan=True, **common)


def _metadata(hdr: dict, lay: dict, orient: dict, n_incomplete: int) -> dict:
    start = hdr.get("Start time", "").split()
    bias = hdr.get("Bias>Bias (V)")
    md = {
        "instrument": "Nanonis",
        "acquisition_date": iso_datetime(*start[:2]) if start else None,
        "operator": hdr.get("User") or None,
        "bias_v": float(bias) if bias and _is_number(bias) else None,
        "comment": hdr.get("Comment") or None,
        "experiment": hdr.get("Experiment") or None,
        "end_time": iso_datetime(*hdr.get("End time", "").split()[:2]) if hdr.get("End time") else None,
        "sweep_signal": hdr.get("Sweep Signal") or None,
        "grid_angle_deg": lay["angle"],
        "frame_centre_m": list(lay["centre"]) if lay["centre"] else None,
        "frame_size_m": list(lay["size"]) if lay["size"] else None,
        "grid_orientation": {"first_stored_row": "bottom" if orient["flip_rows"] else "top",
                             "points_on_frame_edge": list(orient["edge"]), "source": orient["source"]},
        "incomplete_points": n_incomplete,
        "y_axis": "y = -instrument y (grows downward as displayed)",
    }
    delay = hdr.get("Delay before measuring (s)")
    md["delay_before_measuring_s"] = float(delay) if delay and _is_number(delay) else None
    setpoint, unit = hdr.get("Z-Controller>Setpoint"), hdr.get("Z-Controller>Setpoint unit", "")
    if setpoint and _is_number(setpoint):
        md["setpoint_a" if unit == "A" else "setpoint"] = float(setpoint)
        if unit != "A":
            md["setpoint_unit"] = unit or None
    return md


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _param_summary(params: np.ndarray, names: list[str]) -> dict:
    """min / max / mean of each per-point parameter over the measured points."""
    out = {}
    for i, name in enumerate(names):
        col = params[:, i]
        col = col[np.isfinite(col)]
        out[name] = {"min": float(col.min()), "max": float(col.max()), "mean": float(col.mean())} if col.size else None
    return out
