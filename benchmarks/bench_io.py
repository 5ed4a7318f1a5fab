"""Loading real EM files: ``atomine.io.load_all`` against ``hyperspy.api.load``, eager and lazy.

Both go through rosettasciio's readers, so the difference is what each adds on top:
atomine converts units, builds xarray coordinates, normalises metadata and hashes
the file for provenance (SHA-256 of every byte, included in its time);
HyperSpy builds its signal classes and metadata trees. Files are HyperSpy 1.7.6's
test data, fetched like the tests do (``tests/realdata.py``). Each timing is the
median of several repeats after one warm-up call (the warm-up absorbs imports and
numba compilation in the Velox stream reader). "same data" says whether both
give identical arrays for every signal.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

from atomine.errors import AtomineError

REPEATS = 7
ROOT = Path(__file__).resolve().parents[1]


def _realdata():
    spec = importlib.util.spec_from_file_location("atomine_tests_realdata", ROOT / "tests" / "realdata.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(rd) -> list[tuple[str, Path]]:
    io = rd.hyperspy_io()
    velox = rd.velox_dir()
    return [
        ("DM3 STEM image 68x68", io / "dm3_2D_data" / "test_STEM_image.dm3"),
        ("DM3 HAADF 512x512 + plot", io / "dm3_2D_data" / "multi_signal.dm3"),
        ("DM4 EELS SI 2x2x2048", io / "dm4_3D_data" / "EELS_SI.dm4"),
        ("Velox EMD HAADF + EDS SI 50x10x4096", velox / "fei_SI_SuperX-HAADF_20frames_10x50.emd"),
        ("Velox EMD HAADF 512x512", velox / "fei_emd_image.emd"),
        ("TIA emi/ser EDS SI + 4D diffraction", io / "FEI_new" / "16x16-diffraction_imagel_5x5x256x256_EDS.emi"),
    ]


def _median_ms(fn) -> float:
    fn()  # warm-up: imports, numba compilation, OS file cache
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _atomine(path: Path, lazy: bool):
    from atomine.io import load_all

    return load_all(path, lazy=lazy)


def _hyperspy(hs, path: Path, lazy: bool):
    out = hs.load(path, lazy=lazy)
    return out if isinstance(out, list) else [out]


def _same_data(ours, theirs) -> str:
    if len(ours) != len(theirs):
        return f"no ({len(ours)} vs {len(theirs)} signals)"
    for a, s in zip(ours, theirs):
        data = np.asarray(s.data)
        if a.shape != data.shape or not np.array_equal(a.values, data):
            return f"no ({a.name}: {a.shape} vs {data.shape})"
    return "yes"


def _fmt(ms: float | None) -> str:
    return "—" if ms is None else (f"{ms:.1f}" if ms < 100 else f"{ms:.0f}")


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def run() -> str:
    rd = _realdata()
    try:
        files = _files(rd)
    except rd.RealDataUnavailable as exc:
        return f"Skipped: the real instrument files are unavailable ({exc})."
    try:
        import hyperspy.api as hs
    except ImportError:
        hs = None
    importlib.import_module("rsciio")  # it sets up its logger on import; quieten it afterwards

    logging.getLogger("hyperspy").setLevel(logging.ERROR)  # "EDS_TEM not understood" without eXSpy
    logging.getLogger("rsciio").setLevel(logging.ERROR)  # "only one spectrum stream" on every Velox read
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, path in files:
            try:
                _atomine(path, False)
            except AtomineError as exc:  # e.g. Velox EDS without the optional 'sparse' package
                rows.append(f"| {label} | — | not timed: {exc} |  |  |  |  |  |  |")
                continue
            a_eager = _median_ms(lambda: _atomine(path, False))
            a_lazy = _median_ms(lambda: _atomine(path, True))
            h_eager = h_lazy = None
            same = "—"
            if hs is not None:
                h_eager = _median_ms(lambda: _hyperspy(hs, path, False))
                h_lazy = _median_ms(lambda: _hyperspy(hs, path, True))
                same = _same_data(_atomine(path, False), _hyperspy(hs, path, False))
            size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.stem + "_*.ser"))
            rows.append(f"| {label} | {size / 1024**2:.2f} | {_fmt(a_eager)} | {_fmt(h_eager)} | {_ratio(a_eager, h_eager)} "
                        f"| {_fmt(a_lazy)} | {_fmt(h_lazy)} | {_ratio(a_lazy, h_lazy)} | {same} |")
    head = ("| file | MiB | atomine eager (ms) | HyperSpy eager (ms) | ratio | atomine lazy (ms) "
            "| HyperSpy lazy (ms) | ratio | same data |\n|---|---|---|---|---|---|---|---|---|")
    note = (f"Median of {REPEATS} repeats after a warm-up, one process. Ratio = atomine / HyperSpy "
            "(below 1: atomine faster). atomine's times include hashing the whole file for provenance.")
    if hs is None:
        note += " HyperSpy is not installed: only atomine was timed."
    return "\n".join([note, "", head, *rows])


if __name__ == "__main__":
    print(run())
