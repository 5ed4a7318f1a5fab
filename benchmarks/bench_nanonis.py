"""Nanonis ``.sxm`` / ``.3ds`` loading: atomine against nanonispy on the same files (``make bench``).

The files are written by the test-side writer (``tests/io/nanonis_writer.py``, built from
the format description) into a temporary folder: a 1024 x 1024 scan with Z and Current in
both directions (32 MiB of data) and a 64 x 64 grid of 512-point spectra with two channels
(17 MiB). Reported: median wall time of repeated loads, the ratio to nanonispy, and the
largest difference between the two readers' values after atomine's documented flips
(nanonispy keeps the stored order; atomine flips backward images left-right and bottom-first
rows to the top, and converts Z to nm). atomine's time includes the SHA-256 of the file for
provenance (timed alone in its own row). ``lazy`` opens the file only (memory map + dask; the small-image NaN check of
the constructors still reads the data), ``lazy + compute`` then reads one channel.

Runnable alone: ``python benchmarks/bench_nanonis.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from atomine.data import file_hash
from atomine.io import load_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))
from nanonis_writer import write_3ds, write_sxm  # noqa: E402

REPEATS = 5


def _median_time(fn) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _nanonispy():
    """nanonispy.read on current numpy (it still uses np.float / np.int), or None when not installed."""
    try:
        import nanonispy.read as read
    except ImportError:
        return None
    if not hasattr(np, "float"):
        class _Np:
            float, int = float, int

            def __getattr__(self, name):
                return getattr(np, name)

        read.np = _Np()  # in this process only; numpy itself is untouched
    return read


def _sxm_case(folder: Path, read):
    path = folder / "big.sxm"
    n = 1024
    chans = [{"name": "Z", "unit": "m", "direction": "both", "surface": lambda x, y: 1e-10 * np.sin(x * 1e9) * np.cos(y * 7e8)},
             {"name": "Current", "unit": "A", "direction": "both", "surface": lambda x, y: 1e-10 + 1e-2 * x * y * 1e9}]
    write_sxm(path, chans, pixels=(n, n), range_m=(50e-9, 50e-9), scan_dir="up")
    rows = [("atomine eager", _median_time(lambda: load_all(path)))]
    rows.append(("atomine lazy (open)", _median_time(lambda: load_all(path, lazy=True))))
    rows.append(("atomine lazy + compute Z_fwd", _median_time(lambda: load_all(path, lazy=True)[0].values)))
    rows.append(("(of which SHA-256 of the file)", _median_time(lambda: file_hash(path))))
    diff = None
    if read is not None:
        rows.append(("nanonispy", _median_time(lambda: read.Scan(str(path)))))
        ours = {s.name: s.values for s in load_all(path)}
        ref = read.Scan(str(path)).signals
        diff = max(
            float(np.abs(ours["Z_fwd"] - ref["Z"]["forward"][::-1] * np.float32(1e9)).max()),
            float(np.abs(ours["Z_bwd"] - ref["Z"]["backward"][::-1, ::-1] * np.float32(1e9)).max()),
            float(np.abs(ours["Current_bwd"] - ref["Current"]["backward"][::-1, ::-1]).max()),
        )
    return f".sxm {n} x {n}, 2 channels x 2 directions ({path.stat().st_size / 2**20:.0f} MiB)", rows, diff, "nm (Z)"


def _3ds_case(folder: Path, read):
    path = folder / "big.3ds"
    dim, points = (64, 64), 512
    chans = [("Current (A)", lambda x, y, v: 1e-10 * v * (1 + x * 1e8)), ("LI Demod 1 X (A)", lambda x, y, v: 1e-12 * (1 + v**2) + y)]
    write_3ds(path, chans, dim=dim, points=points, size_m=(30e-9, 30e-9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [("atomine eager", _median_time(lambda: load_all(path)))]
        rows.append(("atomine lazy (open)", _median_time(lambda: load_all(path, lazy=True))))
        rows.append(("atomine lazy + compute Current", _median_time(lambda: load_all(path, lazy=True)[0].values)))
    rows.append(("(of which SHA-256 of the file)", _median_time(lambda: file_hash(path))))
    diff = None
    if read is not None:
        rows.append(("nanonispy", _median_time(lambda: read.Grid(str(path)))))
        ours = {s.name: s.values for s in load_all(path)}
        ref = read.Grid(str(path)).signals
        diff = max(float(np.abs(ours["Current"] - ref["Current (A)"][::-1]).max()),
                   float(np.abs(ours["LI_Demod_1_X"] - ref["LI Demod 1 X (A)"][::-1]).max()))
    label = f".3ds {dim[0]} x {dim[1]} x {points}, 2 channels ({path.stat().st_size / 2**20:.0f} MiB)"
    return label, rows, diff, "A"


def run() -> str:
    read = _nanonispy()
    parts = [f"Median of {REPEATS} loads per row; ratio = time / nanonispy time (lower is faster).\n"]
    if read is None:
        parts.append("nanonispy is not installed (`pip install nanonispy`): atomine timings only.\n")
    with tempfile.TemporaryDirectory() as tmp:
        for case in (_sxm_case, _3ds_case):
            label, rows, diff, unit = case(Path(tmp), read)
            ref = dict(rows).get("nanonispy")
            parts.append(f"### {label}\n\n| reader | time (ms) | ratio |\n|---|---:|---:|")
            for name, t in rows:
                ratio = f"{t / ref:.2f}" if ref else "-"
                parts.append(f"| {name} | {t * 1e3:.1f} | {ratio} |")
            if diff is not None:
                parts.append(f"\nLargest |atomine - nanonispy| after the documented flips: {diff:.3g} {unit}.\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(run())
