"""Test-side writer of Nanonis ``.sxm`` and ``.3ds`` files, built byte by byte from the format description.

It shares no code with atomine's readers. The tip path is modelled as the instrument
acquires: an ``.sxm`` scan line runs left to right (forward) or right to left (backward);
lines are acquired top to bottom (``SCAN_DIR down``) or bottom to top (``up``), and stored in
acquisition order. A ``.3ds`` grid stores points row by row, x fastest. The values written
are a known function of the instrument position (x, y in metres), so a test can check that
every value lands where the tip measured it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

SXM_END = b":SCANIT_END:\n\n\n\x1a\x04"  # as Nanonis writes it: end tag, two line feeds, then 0x1A 0x04


# ----------------------------------------------------------------------------- .sxm


def sxm_tip_positions(pixels, range_m, offset_m, scan_dir: str, direction: str):
    """Instrument (x, y) in m of every stored value of one image, shape (lines, pixels) each.

    Stored line k is the k-th acquired line; stored value p is the p-th value along the tip's travel.
    """
    nx, ny = pixels
    (rx, ry), (ox, oy) = range_m, offset_m
    dx, dy = rx / nx, ry / ny
    p = np.arange(nx) + 0.5
    k = np.arange(ny) + 0.5
    x_fwd = ox - rx / 2 + p * dx
    x = x_fwd if direction == "forward" else x_fwd[::-1]
    y = (oy + ry / 2 - k * dy) if scan_dir == "down" else (oy - ry / 2 + k * dy)
    return np.broadcast_to(x, (ny, nx)), np.broadcast_to(y[:, None], (ny, nx))


def _fmt(v: float) -> str:
    return f"{v:.6E}"


def write_sxm(
    path,
    channels: Sequence[dict],
    *,
    pixels=(16, 12),
    range_m=(20e-9, 15e-9),
    offset_m=(3e-9, -2e-9),
    angle_deg=0.0,
    scan_dir="down",
    bias_v=-0.5,
    setpoint="1.000E-10 A",
    rec_date="13.01.2020",
    rec_time="14:05:07",
    acq_time=120.5,
    scan_time=(0.2, 0.2),
    comment="test scan",
    extra_tags: Sequence[tuple[str, str]] = (),
    drop_tags: Sequence[str] = (),
    end: bytes = SXM_END,
    truncate: int = 0,
    aborted_lines: int = 0,
    byteorder: str = ">",
    scanit_type: str = "FLOAT MSBFIRST",
):
    """Write an ``.sxm`` file; return the stored frames, ``{(name, 'forward'|'backward'): (ny, nx) array}``.

    Parameters
    ----------
    channels : list of dict
        ``name``, ``unit``, ``direction`` ("both", "forward" or "backward") and ``surface``, a
        function ``f(x_m, y_m) -> value`` in the channel's unit evaluated at the tip position.
    aborted_lines : int
        The last acquired lines are NaN in every image (the scan was stopped).
    truncate : int
        Drop this many bytes from the end of the file.
    """
    nx, ny = pixels
    tags: list[tuple[str, str]] = [
        ("NANONIS_VERSION", "2"),
        ("SCANIT_TYPE", f"              {scanit_type.split()[0]}            {scanit_type.split()[1]}"),
        ("REC_DATE", f" {rec_date}"),
        ("REC_TIME", rec_time),
        ("REC_TEMP", "      290.0000000000"),
        ("ACQ_TIME", f"       {acq_time:.1f}"),
        ("SCAN_PIXELS", f"       {nx}       {ny}"),
        ("SCAN_FILE", r"C:\Users\stm\Data\img001.sxm"),
        ("SCAN_TIME", f"             {scan_time[0]:.3E}             {scan_time[1]:.3E}"),
        ("SCAN_RANGE", f"           {_fmt(range_m[0])}           {_fmt(range_m[1])}"),
        ("SCAN_OFFSET", f"             {_fmt(offset_m[0])}         {_fmt(offset_m[1])}"),
        ("SCAN_ANGLE", f"            {angle_deg:.3E}"),
        ("SCAN_DIR", scan_dir),
        ("BIAS", f"            {bias_v:.3E}"),
        ("Z-CONTROLLER", "\tName\ton\tSetpoint\tP-gain\tI-gain\tT-const\n"
                         f"\tlog Current\t1\t{setpoint}\t1.000E-12 m\t1.000E-9 m/s\t1.000E-3 s"),
        ("COMMENT", comment),
        ("Bias>Bias (V)", f"{bias_v:.3E}"),
        *extra_tags,
    ]
    info = "\tChannel\tName\tUnit\tDirection\tCalibration\tOffset\n" + "\n".join(
        f"\t{14 if ch['name'] == 'Z' else i}\t{ch['name']}\t{ch['unit']}\t{ch['direction']}\t1.000E+0\t0.000E+0"
        for i, ch in enumerate(channels)) + "\n"
    tags.append(("DATA_INFO", info))
    text = "".join(f":{tag}:\n{value}\n" for tag, value in tags if tag not in drop_tags)
    header = text.encode("latin-1") + end

    frames = {}
    body = bytearray()
    for ch in channels:
        dirs = {"both": ("forward", "backward"), "forward": ("forward",), "backward": ("backward",)}[ch["direction"]]
        for d in dirs:
            x, y = sxm_tip_positions(pixels, range_m, offset_m, scan_dir, d)
            frame = np.asarray(ch["surface"](x, y), dtype=np.float64) * np.ones((ny, nx))
            if aborted_lines:
                frame[ny - aborted_lines:] = np.nan
            frames[(ch["name"], d)] = frame.astype(np.float32)
            body += frame.astype(f"{byteorder}f4").tobytes()
    raw = header + bytes(body)
    if truncate:
        raw = raw[:-truncate]
    with open(path, "wb") as f:
        f.write(raw)
    return frames


# ----------------------------------------------------------------------------- .3ds


DEFAULT_EXPERIMENT_PARAMS = ("X (m)", "Y (m)", "Z (m)", "Z offset (m)", "Settling time (s)",
                             "Integration time (s)", "Z-Ctrl hold", "Final Z (m)")


def grid_positions(dim, centre_m, size_m, angle_deg=0.0, rows="bottom-first", spacing="centre"):
    """Instrument (x, y) in m of every stored grid point, arrays of shape (ny * nx,), x fastest."""
    nx, ny = dim
    (cx, cy), (w, h) = centre_m, size_m

    def along(n, size):
        if spacing == "edge" and n > 1:
            return -size / 2 + np.arange(n) * size / (n - 1)
        return -size / 2 + (np.arange(n) + 0.5) * size / n

    u = along(nx, w)
    v = along(ny, h)  # increasing: bottom to top of the frame
    if rows == "top-first":
        v = v[::-1]
    uu, vv = np.tile(u, ny), np.repeat(v, nx)
    a = np.deg2rad(angle_deg)
    return cx + uu * np.cos(a) - vv * np.sin(a), cy + uu * np.sin(a) + vv * np.cos(a)


def write_3ds(
    path,
    channels: Sequence[tuple[str, Callable]],
    *,
    dim=(8, 6),
    centre_m=(2e-9, -1e-9),
    size_m=(16e-9, 12e-9),
    angle_deg=0.0,
    points=21,
    sweep=(-1.0, 1.0),
    sweep_signal="Bias (V)",
    rows="bottom-first",
    spacing="centre",
    fixed_params=("Sweep Start", "Sweep End"),
    experiment_params: Sequence[str] = DEFAULT_EXPERIMENT_PARAMS,
    z_surface: Callable = lambda x, y: 1e-10 * np.sin(x * 3e8) + 0.5e-10 * np.cos(y * 2e8),
    point_sweep: Callable | None = None,
    n_written: int | None = None,
    nan_points: Sequence[int] = (),
    truncate: int = 0,
    drop_keys: Sequence[str] = (),
    override: dict | None = None,
    newline: str = "\r\n",
):
    """Write a ``.3ds`` grid; return ``(values, params)`` as written, shapes (n_points, n_channels, points) and (n_points, n_params).

    Parameters
    ----------
    channels : list of (label, f)
        ``label`` like ``"Current (A)"``; ``f(x_m, y_m, sweep_values) -> values`` per point.
    point_sweep : callable, optional
        ``k -> (start, end)`` to give point ``k`` its own sweep range (default: ``sweep`` everywhere).
    n_written : int, optional
        Write only the first points (an aborted measurement ends the file early).
    nan_points : indices of points written as NaN (never measured).
    """
    nx, ny = dim
    n = nx * ny
    X, Y = grid_positions(dim, centre_m, size_m, angle_deg, rows, spacing)
    n_par = len(fixed_params) + len(experiment_params)
    values = np.zeros((n, len(channels), points))
    params = np.zeros((n, n_par))
    for k in range(n):
        s0, s1 = point_sweep(k) if point_sweep else sweep
        v = np.linspace(s0, s1, points)
        fixed = {"Sweep Start": s0, "Sweep End": s1}
        exp = {"X (m)": X[k], "Y (m)": Y[k], "Z (m)": z_surface(X[k], Y[k]), "Final Z (m)": z_surface(X[k], Y[k]),
               "Settling time (s)": 1e-3, "Integration time (s)": 2e-3}
        params[k] = [fixed.get(p, 0.0) for p in fixed_params] + [exp.get(p, 0.0) for p in experiment_params]
        for c, (_, f) in enumerate(channels):
            values[k, c] = f(X[k], Y[k], v)
    values[list(nan_points)] = np.nan
    params[list(nan_points)] = np.nan

    keys = [
        ("Grid dim", f'"{nx} x {ny}"'),
        ("Grid settings", ";".join(f"{v:.6E}" for v in (*centre_m, *size_m, angle_deg))),
        ("Filetype", "Linear"),
        ("Sweep Signal", f'"{sweep_signal}"'),
        ("Fixed parameters", '"' + ";".join(fixed_params) + '"'),
        ("Experiment parameters", '"' + ";".join(experiment_params) + '"'),
        ("# Parameters (4 byte)", str(n_par)),
        ("Experiment size (bytes)", str(points * len(channels) * 4)),
        ("Points", str(points)),
        ("Channels", '"' + ";".join(label for label, _ in channels) + '"'),
        ("Delay before measuring (s)", "1.000000E-3"),
        ("Experiment", '"Grid Spectroscopy"'),
        ("Start time", '"27.02.2017 16:44:06"'),
        ("End time", '"27.02.2017 18:11:31"'),
        ("User", "alice"),
        ("Comment", "grid over a step edge"),
        ("Bias>Bias (V)", "-5E-1"),
        ("Z-Controller>Setpoint", "1E-10"),
        ("Z-Controller>Setpoint unit", "A"),
    ]
    override = dict(override or {})
    lines = []
    for key, value in keys:
        if key in drop_keys:
            continue
        lines.append(f"{key}={override.pop(key, value)}")
    lines += [f"{k}={v}" for k, v in override.items()]
    header = (newline.join(lines) + newline + ":HEADER_END:" + newline).encode("latin-1")

    block = np.concatenate([params, values.reshape(n, -1)], axis=1)
    if n_written is not None:
        block = block[:n_written]
    raw = header + block.astype(">f4").tobytes()
    if truncate:
        raw = raw[:-truncate]
    with open(path, "wb") as f:
        f.write(raw)
    return values.astype(np.float32), params.astype(np.float32)
