"""Pieces shared by the Nanonis ``.sxm`` and ``.3ds`` readers.

Reading the text header up to its end marker, number/unit parsing, channel names,
dates, the scan-frame geometry (with atomine's y sign convention) and building a
DataArray whose values may hold NaN for points the instrument never measured.

Frame convention (both readers): x is the instrument's x; y is the instrument's y
*negated* (``y = -y_instrument``), so that y grows downward as displayed (row 0 at
the top) with a positive step, while positions from different files of the same
session stay comparable. A frame centred at instrument (cx, cy) therefore has its
centre at (cx, -cy) in atomine coordinates. A frame rotation angle is recorded in
the metadata; the data are not resampled.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import mmap
import os
import re
import threading
from typing import Any

import numpy as np

from ..data import step
from ..errors import CalibrationError, CorruptFileError

_HEAD_BLOCK = 1 << 16
_HEAD_LIMIT = 64 << 20  # no real header is this long; stop searching instead of reading a huge file


class NanonisWarning(UserWarning):
    """Something in a Nanonis file is unusual but the data can still be used."""


class IncompleteDataWarning(NanonisWarning):
    """An aborted scan was cropped, or grid points that were never measured are NaN."""


def read_head(path: str, marker: bytes, what: str) -> bytes:
    """Bytes of ``path`` from the start up to and including the first line holding ``marker`` (plus what follows).

    Reads in blocks, so a large file is not read whole; raises CorruptFileError when the
    marker is absent (the file is then not a Nanonis file of this kind).
    """
    buf = b""
    with open(path, "rb") as f:
        while len(buf) < _HEAD_LIMIT:
            block = f.read(_HEAD_BLOCK)
            if not block:
                break
            buf += block
            # A few bytes past the marker are needed to find the data start behind it.
            if buf.find(marker) >= 0 and len(buf) - buf.find(marker) > len(marker) + 16:
                return buf
    if buf.find(marker) >= 0:
        return buf
    raise CorruptFileError(f"{path}: not a Nanonis {what} file (header end marker {marker.decode()} missing)")


def decode(raw: bytes) -> str:
    """Header bytes as text: UTF-8 where valid, else Latin-1 (older Nanonis versions write Windows code pages)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def to_float(text: str, key: str, path: str) -> float:
    """``float(text)`` or CorruptFileError naming the header key."""
    try:
        return float(text.strip())
    except (ValueError, AttributeError):
        raise CorruptFileError(f"{path}: header value {key}={text!r} is not a number; the header is damaged") from None


def to_int(text: str, key: str, path: str) -> int:
    """A positive integer from the header, or CorruptFileError naming the key."""
    value = to_float(text, key, path)
    if not value.is_integer() or value < 1:
        raise CorruptFileError(f"{path}: header value {key}={text!r} is not a positive whole number; the header is damaged")
    return int(value)


_VALUE_UNIT = re.compile(r"^\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


def value_and_unit(text: str) -> tuple[float | None, str]:
    """``"1.000E-10 A"`` -> ``(1e-10, "A")``; ``(None, text)`` when there is no leading number."""
    m = _VALUE_UNIT.match(text or "")
    if not m:
        return None, (text or "").strip()
    return float(m.group(1)), m.group(2)


_NAME_UNIT = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


def name_and_unit(label: str) -> tuple[str, str]:
    """``"LI Demod 1 X (A)"`` -> ``("LI Demod 1 X", "A")``; no parenthesis -> unit ``""``."""
    m = _NAME_UNIT.match(label.strip())
    if not m:
        return label.strip(), ""
    return m.group(1).strip(), m.group(2).strip()


def safe_name(label: str) -> str:
    """A short identifier from a channel label: ``"Current [bwd]"`` -> ``"Current_bwd"``."""
    name = re.sub(r"[^0-9A-Za-z]+", "_", label).strip("_")
    return name or "channel"


def unique_names(names: list[str]) -> list[str]:
    """Append ``_2``, ``_3``... to repeated names so every signal in a file has its own."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def value_scale(unit: str) -> tuple[float, str]:
    """(factor, atomine unit) for channel values: metres become nm, every other unit stays as recorded.

    Only ``"m"`` is converted: Nanonis writes SI base units, and ``"A"`` there is the ampere,
    not the angstrom that a generic length-unit table would take it for.
    """
    if unit.strip() == "m":
        return 1e9, "nm"
    return 1.0, unit.strip()


def iso_datetime(date: str | None, time: str | None = None) -> str | None:
    """Nanonis ``dd.mm.yyyy`` (+ ``hh:mm:ss``) as ISO 8601; None when it does not parse."""
    if not date:
        return None
    text = date.strip() + (" " + time.strip() if time and time.strip() else "")
    for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
        try:
            return _dt.datetime.strptime(text, fmt).isoformat()
        except ValueError:
            continue
    return None


def frame_axes(centre_m, size_m, n, path: str, edge: tuple[bool, bool] = (False, False)):
    """Pixel size and top-left pixel position, in nm, of a scan frame in atomine's convention.

    Parameters
    ----------
    centre_m : (float, float)
        Frame centre (x, y) in the instrument frame, m.
    size_m : (float, float)
        Frame width and height, m; must be finite and positive.
    n : (int, int)
        Points along x and y.
    edge : (bool, bool)
        Per axis, True when the outer points sit on the frame edge (step = size / (n - 1));
        False (default) when points are pixel centres (step = size / n).

    Returns
    -------
    pixel_size : (float, float)
        (y, x) step in nm, positive.
    origin : (float, float)
        (y, x) of pixel (0, 0)'s centre in nm, with y = -y_instrument.
    """
    (cx, cy), (w, h), (nx, ny) = centre_m, size_m, n
    for label, v in (("width", w), ("height", h)):
        if not np.isfinite(v) or v <= 0:
            raise CalibrationError(f"{path}: scan frame {label} is {v!r} m; it must be positive -- the file's calibration is unusable")
    for label, v in (("x", cx), ("y", cy)):
        if not np.isfinite(v):
            raise CalibrationError(f"{path}: scan frame centre {label} is {v!r}; it must be finite")

    def axis(c, size, count, on_edge):
        if on_edge and count > 1:
            step_ = size / (count - 1)
            return step_, c - size / 2
        step_ = size / count
        return step_, c - size / 2 + step_ / 2

    sx, x0 = axis(cx, w, nx, edge[0])
    # Row 0 is the top of the frame: instrument y = cy + h/2 (minus half a step), negated.
    sy, top = axis(-cy, h, ny, edge[1])
    return (sy * 1e9, sx * 1e9), (top * 1e9, x0 * 1e9)


def memmap_token(path: str, offset: int, *extra) -> str:
    """A dask name for an array over ``path``'s bytes: from the file's identity, not its contents.

    Without it dask would hash the whole memory-mapped block to name the array, reading the file.
    """
    from dask.base import tokenize

    st = os.stat(path)
    return tokenize(os.path.abspath(path), st.st_size, st.st_mtime_ns, offset, *extra)


def to_native(stored: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Native float32 times ``factor`` of a stored big-endian view, in one pass.

    ``stored`` may be any view of the file's values (flips and strides included): the copy
    converts the byte order, puts the values in the view's order and scales them at once,
    into a new C-contiguous array. The product is computed in float32.
    """
    out = np.empty(stored.shape, dtype=np.float32)
    if factor != 1.0:
        np.multiply(stored, np.float32(factor), out=out)
    else:
        np.copyto(out, stored)
    return out


class NativeView:
    """A read-only array-like over a stored view whose slices come out as native float32 (times ``factor``).

    Handed to ``dask.array.from_array``, it gives a one-layer graph: each chunk is read from the
    memory map and converted by :func:`to_native` when computed, instead of separate astype,
    flip and multiply layers that cost more to build and to schedule than the conversion itself.
    """

    def __init__(self, stored: np.ndarray, factor: float = 1.0):
        self.stored, self.factor = stored, factor
        self.shape, self.ndim, self.dtype = stored.shape, stored.ndim, np.dtype(np.float32)

    def __getitem__(self, key) -> np.ndarray:
        return to_native(self.stored[key], self.factor)


def lazy_native(stored: np.ndarray, factor: float, chunks, name: str):
    """A dask array of :class:`NativeView` ``(stored, factor)``; ``name`` keeps dask from hashing the data."""
    import dask.array as da

    return da.from_array(NativeView(stored, factor), chunks=chunks, name=name,
                         meta=np.empty((0,) * stored.ndim, dtype=np.float32))


def load_step(path: str, fmt: str, lazy: bool, input_hash: str) -> dict[str, Any]:
    """The provenance record of reading ``path``; ``input_hash`` from :class:`ContentHash`."""
    return step("load", {"format": fmt, "file": os.path.basename(path), "lazy": bool(lazy)}, input_hash)


def read_file(path: str) -> np.ndarray:
    """The whole file as a uint8 array, read straight into it (no intermediate bytes object).

    The readers decode their data from this one copy and hash the same bytes, so the file
    is read once instead of once for the data and once for the provenance hash.
    """
    buf = np.empty(os.path.getsize(path), dtype=np.uint8)
    view = memoryview(buf)
    filled = 0
    with open(path, "rb", buffering=0) as f:
        # A raw read may return less than asked (large files); loop until full or EOF.
        while filled < len(buf):
            n = f.readinto(view[filled:])
            if not n:
                break
            filled += n
    return buf[:filled]


class ContentHash:
    """SHA-256 of a file's bytes, computed on a worker thread while the reader decodes the data.

    hashlib releases the GIL while digesting a large buffer, and numpy releases it while
    converting arrays, so on two or more cores the hash (about 1.5 GB/s) overlaps the decoding
    instead of adding to it. The digest is the same string as :func:`atomine.data.file_hash`.

    Parameters
    ----------
    data : bytes-like, optional
        The file's complete bytes, already in memory (eager readers).
    path : str, optional
        Hash the file itself through a memory map (lazy readers, which do not read the data).
    """

    def __init__(self, data=None, path: str | None = None):
        self._digest: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(data, path), daemon=True)
        self._thread.start()

    def _run(self, data, path) -> None:
        try:
            if data is None:
                with open(path, "rb") as f:
                    if os.fstat(f.fileno()).st_size == 0:
                        digest = hashlib.sha256()  # mmap refuses empty files
                    else:
                        # One update over the mapping: no read copies, and the GIL is released throughout.
                        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                            digest = hashlib.sha256(mm)
            else:
                digest = hashlib.sha256(data)
            self._digest = "sha256:" + digest.hexdigest()
        except BaseException as exc:  # handed to the reader's thread by result()
            self._error = exc

    def result(self) -> str:
        """``"sha256:<hex>"`` once the worker is done (waits for it)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest


def check_size(path: str, data_start: int, expected: int) -> int:
    """Bytes present after the header; CorruptFileError (expected vs found) when fewer than ``expected``."""
    found = os.path.getsize(path) - data_start
    if found < expected:
        raise CorruptFileError(
            f"{path}: file is truncated -- the header promises {expected} bytes of data after byte {data_start}, "
            f"found {max(found, 0)}; re-copy the file from the instrument PC")
    return found
