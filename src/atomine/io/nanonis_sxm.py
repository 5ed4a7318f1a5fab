"""Nanonis ``.sxm`` topography files, read from the published format description.

Layout: an ASCII header of ``:TAG:`` lines, each followed by its value line(s), ending at
``:SCANIT_END:``; the binary block starts right after the two bytes ``\\x1a\\x04``. It holds
float32 values (big-endian, ``SCANIT_TYPE FLOAT MSBFIRST``), one image per channel of the
``DATA_INFO`` table in its order, forward then (Direction ``both``) backward, each stored as
``(lines, pixels)`` with ``SCAN_PIXELS`` = pixels (x) then lines (y). Values are already in the
channel's physical unit (the DATA_INFO calibration is the hardware one, kept in the metadata).

Orientation (atomine: row 0 at the top, x to the right, as displayed):

* the file stores lines in acquisition order; ``SCAN_DIR up`` means the first stored line is
  the bottom one, so those images are flipped vertically (``down``: kept);
* backward images are stored in the tip's direction of travel, right to left, so they are
  flipped left-right.

Gwyddion's reader applies the same two flips; nanonispy returns the stored order unflipped,
so ``atomine == nanonispy[::-1]`` (up) and ``[:, ::-1]`` (backward).

Coordinates are pixel centres in nm: ``x = cx - w/2 + (j + 1/2) w/nx``; y follows the
convention of :mod:`._nanonis_header` (``y = -y_instrument``, growing downward, frame centre
at ``-cy``). A nonzero ``SCAN_ANGLE`` is recorded, not resampled. Values: metres become nm
(``Z``); every other unit (A for current, V, Hz...) stays as recorded, in ``attrs["units"]``.

An aborted scan has NaN in its last acquired lines: those lines are cropped from every
image (the kept lines keep their full-frame coordinates) with an IncompleteDataWarning;
an image without any complete line is a CorruptFileError.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..data import image
from ..errors import CorruptFileError
from ._nanonis_header import (
    ContentHash,
    IncompleteDataWarning,
    check_size,
    decode,
    frame_axes,
    iso_datetime,
    lazy_native,
    load_step,
    memmap_token,
    read_file,
    read_head,
    safe_name,
    to_float,
    to_int,
    to_native,
    unique_names,
    value_and_unit,
    value_scale,
)

_END = b":SCANIT_END:"
_DATA_MARK = b"\x1a\x04"
_DIRECTIONS = {"both": ("fwd", "bwd"), "forward": ("fwd",), "fwd": ("fwd",), "backward": ("bwd",), "bwd": ("bwd",)}
_TABLE_TAGS = {"DATA_INFO", "Z-CONTROLLER", "Multipass-Config"}


@dataclass
class _Image:
    """One image in the binary block: which channel, which direction, where."""

    index: int
    channel: dict
    direction: str  # "fwd" or "bwd"


def read_sxm(path: str, lazy: bool = False) -> list:
    """Every channel and scan direction of a Nanonis ``.sxm`` file as calibrated STM images.

    Parameters
    ----------
    path : str
        The ``.sxm`` file (never modified).
    lazy : bool
        Memory-map the binary block and wrap it in dask instead of reading it.

    Returns
    -------
    list of xarray.DataArray
        Dims ``("y", "x")`` in nm, named ``<channel>_fwd`` / ``<channel>_bwd`` in DATA_INFO order,
        signal ``"STM"``, values in ``attrs["units"]`` (nm for Z, A for current).
    """
    head = read_head(path, _END, ".sxm")
    end = head.find(_END)
    mark = head.find(_DATA_MARK, end)
    # Only line breaks may separate the end tag from the data marker.
    if mark < 0 or head[end + len(_END):mark].strip(b"\r\n\t ") != b"":
        raise CorruptFileError(f"{path}: not a Nanonis .sxm file (header end marker \\x1a\\x04 missing after :SCANIT_END:)")
    data_start = mark + len(_DATA_MARK)
    tags = _parse_tags(decode(head[:end]))
    geo = _geometry(tags, path)
    images = _images(tags, path)
    nx, ny = geo["pixels"]
    pixel_size, origin = frame_axes(geo["offset"], geo["range"], geo["pixels"], path)
    check_size(path, data_start, len(images) * nx * ny * 4)
    shape, dtype = (len(images), ny, nx), _dtype(tags)
    if lazy:
        digest = ContentHash(path=path)
        stored = np.memmap(path, dtype=dtype, mode="r", offset=data_start, shape=shape)
    else:
        raw = read_file(path)
        digest = ContentHash(raw)  # hashes the bytes just read, alongside the decoding below
        stored = np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape)), offset=data_start).reshape(shape)

    n_keep = _complete_lines(stored, path)
    up = tags.get("SCAN_DIR", "down").strip().lower() == "up"
    if up:
        # Flipped images: the missing lines (last acquired) are the top rows.
        origin = (origin[0] + (ny - n_keep) * pixel_size[0], origin[1])
    meta = _metadata(tags, geo)
    original = dict(tags)
    names = unique_names([f"{safe_name(im.channel['Name'])}_{im.direction}" for im in images])
    token = memmap_token(path, data_start, shape, dtype.str) if lazy else None

    out = []
    for im, name in zip(images, names):
        data = stored[im.index]
        if im.direction == "bwd":
            data = data[:, ::-1]
        data = data[:n_keep]
        if up:
            data = data[::-1]
        # Flips and the crop are views of the stored block; one conversion pass follows.
        factor, units = value_scale(im.channel["Unit"])
        if lazy:
            data = lazy_native(data, factor, data.shape, f"nanonis-sxm-{token}-{im.index}-{n_keep}")
        else:
            data = to_native(data, factor)
        md = dict(meta, channel=im.channel["Name"], direction="forward" if im.direction == "fwd" else "backward",
                  channel_calibration=im.channel.get("Calibration"), channel_offset=im.channel.get("Offset"))
        out.append(image(data, pixel_size, origin=origin, units="nm", signal="STM", value_units=units,
                         name=name, allow_nan=True, metadata=md, original_metadata=original))
    # Waited for last, so that the hash runs while the images are decoded and wrapped.
    prov = [load_step(path, "Nanonis sxm", lazy, digest.result())]
    for arr in out:
        arr.attrs["provenance"] = list(prov)
    return out


def _parse_tags(text: str) -> dict:
    """``{tag: value}``: one value line as a string, several joined with newlines, tables as row dicts."""
    tags: dict = {}
    current, lines = None, []

    def flush():
        if current is None:
            return
        body = list(lines)
        while body and not body[-1].strip():
            body.pop()
        if current in _TABLE_TAGS or (len(body) > 1 and all(ln.startswith("\t") for ln in body if ln.strip())):
            tags[current] = _table(body)
        else:
            tags[current] = "\n".join(ln.strip() for ln in body)

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        s = raw.strip()
        if len(s) >= 3 and s.startswith(":") and s.endswith(":"):
            flush()
            current, lines = s[1:-1], []
        elif current is not None:
            lines.append(raw.rstrip())
    flush()
    return tags


def _table(lines: list[str]) -> list[dict]:
    """A tab-separated table (header row, then value rows) as a list of row dicts."""
    rows = [ln.strip("\t ").split("\t") for ln in lines if ln.strip()]
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    if len(header) == 1 and len(rows) > 1 and len(rows[1]) > 1:
        header = header[0].split()  # some versions separate the column names by spaces
    return [dict(zip(header, (c.strip() for c in row))) for row in rows[1:]]


def _numbers(tags: dict, key: str, path: str, count: int = 2) -> list[str]:
    if key not in tags or not isinstance(tags[key], str) or not tags[key].strip():
        raise CorruptFileError(f"{path}: header tag :{key}: is missing; the file is damaged or not a scan")
    parts = tags[key].split()
    if len(parts) < count:
        raise CorruptFileError(f"{path}: header tag :{key}: has {len(parts)} value(s), expected {count}")
    return parts[:count]


def _geometry(tags: dict, path: str) -> dict:
    nx, ny = (to_int(v, "SCAN_PIXELS", path) for v in _numbers(tags, "SCAN_PIXELS", path))
    rx, ry = (to_float(v, "SCAN_RANGE", path) for v in _numbers(tags, "SCAN_RANGE", path))
    if "SCAN_OFFSET" in tags:
        ox, oy = (to_float(v, "SCAN_OFFSET", path) for v in _numbers(tags, "SCAN_OFFSET", path))
    else:
        ox = oy = 0.0
    angle = to_float(tags["SCAN_ANGLE"], "SCAN_ANGLE", path) if tags.get("SCAN_ANGLE", "").strip() else 0.0
    return {"pixels": (nx, ny), "range": (rx, ry), "offset": (ox, oy), "angle": angle}


def _images(tags: dict, path: str) -> list[_Image]:
    table = tags.get("DATA_INFO")
    if not isinstance(table, list) or not table:
        raise CorruptFileError(f"{path}: header has no :DATA_INFO: channel table; cannot tell which images the file holds")
    out = []
    for row in table:
        if "Name" not in row or "Direction" not in row:
            raise CorruptFileError(f"{path}: :DATA_INFO: row {row} lacks the Name or Direction column")
        dirs = _DIRECTIONS.get(row["Direction"].strip().lower())
        if dirs is None:
            raise CorruptFileError(f"{path}: channel {row['Name']!r} has unknown Direction {row['Direction']!r} (expected both, forward or backward)")
        row.setdefault("Unit", "")
        for d in dirs:
            out.append(_Image(len(out), row, d))
    return out


def _dtype(tags: dict) -> np.dtype:
    # Nanonis writes FLOAT MSBFIRST (big-endian); honour an explicit LSBFIRST.
    kind = str(tags.get("SCANIT_TYPE", "")).upper()
    return np.dtype("<f4") if "LSBFIRST" in kind else np.dtype(">f4")


def _complete_lines(block, path: str) -> int:
    """Lines (in acquisition order) before the trailing run of lines with NaN in any image.

    ``block`` is the stored (n, ny, nx) numpy array or memory map. Reads from the last line
    backwards, so a complete scan costs one line per image (and a lazy open reads no more).
    """
    n_img, ny, _ = block.shape
    bad = 0
    while bad < ny:
        line = np.asarray(block[:, ny - 1 - bad, :])
        if np.isfinite(line).all():
            break
        bad += 1
    if bad == ny:
        raise CorruptFileError(f"{path}: no complete scan line -- every line holds NaN (scan aborted at the start?)")
    if bad:
        warnings.warn(f"{path}: scan was aborted -- kept {ny - bad} of {ny} lines; the {bad} unfinished line(s) "
                      f"(NaN) were cropped, coordinates of the kept lines are unchanged", IncompleteDataWarning, stacklevel=4)
    return ny - bad


def _metadata(tags: dict, geo: dict) -> dict:
    """Normalised metadata keys (plus scan-specific extras) from the header tags."""
    nx, _ = geo["pixels"]
    md: dict = {"instrument": "Nanonis", "acquisition_date": iso_datetime(tags.get("REC_DATE"), tags.get("REC_TIME"))}
    bias, _ = value_and_unit(tags.get("BIAS", ""))
    md["bias_v"] = bias
    zc = tags.get("Z-CONTROLLER")
    if isinstance(zc, list) and zc:
        setpoint, unit = value_and_unit(zc[0].get("Setpoint", ""))
        if setpoint is not None and unit == "A":
            md["setpoint_a"] = setpoint
        elif setpoint is not None:
            md["setpoint"], md["setpoint_unit"] = setpoint, unit
        md["z_controller"] = zc[0].get("Name")
        md["feedback_on"] = zc[0].get("on") == "1" if "on" in zc[0] else None
    scan_time = tags.get("SCAN_TIME", "").split()
    try:
        md["dwell_time_s"] = float(scan_time[0]) / nx if scan_time else None
    except ValueError:
        pass
    acq, _ = value_and_unit(tags.get("ACQ_TIME", ""))
    md.update({
        "title": tags.get("SCAN_FILE") or None,
        "comment": tags.get("COMMENT") or None,
        "acquisition_time_s": acq,
        "scan_angle_deg": geo["angle"],
        "scan_direction": tags.get("SCAN_DIR", "").strip() or None,
        "frame_centre_m": list(geo["offset"]),
        "frame_size_m": list(geo["range"]),
        "y_axis": "y = -instrument y (grows downward as displayed)",
    })
    return md
