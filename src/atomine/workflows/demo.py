"""The demo: simulate every built-in dataset, run every analysis there is, and save the results with ground truth.

The workflow is a list of *analysis functions* (see :mod:`atomine.workflows.demo_analyses`).
Each takes a :class:`DatasetContext` and returns an :class:`AnalysisOutput` -- maps (into
``result.zarr``), tables (Parquet) and summary numbers -- or ``None`` when it does not
apply to that dataset. Drawing is the report layer's job: :meth:`DemoResult.save` takes
a ``report`` writer (``atomine.report.write_demo_report``) so this layer never imports it.
"""

from __future__ import annotations

import datetime as _dt
import json
import numbers
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import xarray as xr

from .. import __version__
from ..data import Simulation, array_hash, file_hash, jsonable
from ..errors import InputError
from .demo_analyses import DATASET_ANALYSES, AnalysisOutput, DatasetContext, overview_map

Progress = Callable[[int, int, str], None]
AnalysisFn = Callable[[DatasetContext], "AnalysisOutput | None"]


@dataclass
class DatasetRun:
    """One simulated dataset and what each analysis made of it."""

    kind: str
    description: str
    simulation: Simulation
    outputs: list[AnalysisOutput] = field(default_factory=list)


@dataclass
class DemoResult:
    """Everything the demo produced; :meth:`save` writes it to a result folder."""

    seed: int
    datasets: list[DatasetRun]
    started: str
    elapsed_s: float
    analyses: list[str]

    def result_dataset(self) -> xr.Dataset:
        """All 2-D maps in one Dataset: variables ``<kind>_<map>`` on dims ``<kind>_y``, ``<kind>_x``.

        Datasets have different grids, so every dimension is prefixed with its dataset's kind.
        """
        variables: dict[str, xr.DataArray] = {}
        for run in self.datasets:
            maps = {"data": overview_map(run.simulation.data)}
            for output in run.outputs:
                maps.update(output.maps)
            for name, m in maps.items():
                if m is None:
                    continue
                m = m.rename({d: f"{run.kind}_{d}" for d in m.dims})
                m = m.reset_coords(drop=True) if m.coords else m
                variables[f"{run.kind}_{name}"] = m.rename(f"{run.kind}_{name}")
        ds = xr.Dataset(variables)
        ds.attrs = {"title": "atomine demo maps", "atomine_version": __version__, "seed": self.seed}
        return ds

    def summary(self) -> dict[str, Any]:
        """Summary numbers of every analysis, per dataset (JSON-serialisable)."""
        return {run.kind: {k: v for o in run.outputs for k, v in o.summary.items()} for run in self.datasets}

    def provenance(self, files: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Inputs (each simulated signal with its content hash), parameters, versions and time."""
        inputs = []
        for run in self.datasets:
            inputs.append({
                "kind": run.kind, "description": run.description, "seed": self.seed,
                "simulator_parameters": run.simulation.truth.parameters,
                "signals": {str(da.name): {"shape": list(da.shape), "dtype": str(da.dtype),
                                           "content_hash": array_hash(da)} for da in run.simulation.signals()},
            })
        return jsonable({
            "workflow": "atomine.workflows.demo.run_demo",
            "atomine_version": __version__,
            "time": self.started,
            "elapsed_s": round(self.elapsed_s, 3),
            "parameters": {"seed": self.seed, "kinds": [r.kind for r in self.datasets], "analyses": self.analyses},
            "inputs": inputs,
            "outputs": dict(files or {}),
            "environment": _environment(),
        })

    def save(self, directory: str | os.PathLike, overwrite: bool = False, *,
             report: Callable[["DemoResult", Path], Any] | None = None) -> Path:
        """Write the result folder atomically and return its path.

        Contents: ``result.zarr``, ``provenance.json``, ``summary.json``, ``data/<kind>.zarr``
        with ``truth/<kind>/``, ``tables/<kind>_<name>.parquet``, and ``report.html`` when a
        ``report(result, path)`` writer is given (``atomine.report.write_demo_report``).
        An existing ``directory`` is refused unless ``overwrite``.
        """
        from ..io import save
        from ..io._atomic import atomic_path
        from .simulated import write_simulation

        directory = Path(directory)
        with atomic_path(directory, overwrite=overwrite, directory=True) as tmp:
            tmp.mkdir()
            (tmp / "data").mkdir()
            (tmp / "truth").mkdir()
            for run in self.datasets:
                write_simulation(run.simulation, tmp / "data" / f"{run.kind}.zarr", truth_dir=tmp / "truth" / run.kind)
            tables = [(f"{run.kind}_{name}", t)
                      for run in self.datasets for o in run.outputs for name, t in o.tables.items()]
            if tables:
                (tmp / "tables").mkdir()
                for name, t in tables:
                    t.to_parquet(tmp / "tables" / f"{name}.parquet", index=False)
            save(self.result_dataset(), tmp / "result.zarr")
            _write_json(tmp / "summary.json", jsonable(self.summary()))
            if report is not None:
                report(self, tmp / "report.html")
            files = {str(p.relative_to(tmp)): file_hash(p) for p in _outputs(tmp)}
            _write_json(tmp / "provenance.json", self.provenance(files))
        return directory


def _outputs(folder: Path) -> list[Path]:
    """Top-level result files and folders, plus each dataset and truth folder (hashed for provenance)."""
    items = [p for p in sorted(folder.iterdir()) if p.name not in ("data", "truth", "tables")]
    for sub in ("data", "truth", "tables"):
        if (folder / sub).is_dir():
            items.extend(sorted((folder / sub).iterdir()))
    return items


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _environment() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("numpy", "scipy", "xarray", "dask", "zarr", "pandas", "matplotlib"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "packages": versions}


def run_demo(seed: int = 0, progress: Progress | None = None, *, kinds: Sequence[str] | None = None,
             presets: Mapping[str, tuple[str, Callable[[int], Simulation]]] | None = None,
             analyses: Sequence[AnalysisFn] | None = None) -> DemoResult:
    """Simulate every built-in dataset and run every demo analysis on it.

    Parameters
    ----------
    seed : int
        Seed passed to every simulator (non-negative).
    progress : callable, optional
        Called as ``progress(done, total, message)`` after each step.
    kinds : sequence of str, optional
        Only these datasets (default: all).
    presets : mapping, optional
        Name -> (description, make(seed)); default :func:`atomine.simulate.presets`.
    analyses : sequence of callables, optional
        Analysis functions; default ``DATASET_ANALYSES``.

    Returns
    -------
    DemoResult
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if presets is None:
        from ..simulate import presets as builtin

        presets = builtin()
    if kinds is not None:
        unknown = [k for k in kinds if k not in presets]
        if unknown:
            raise InputError(f"unknown dataset(s) {', '.join(map(repr, unknown))}; choose from {', '.join(presets)}")
        presets = {k: presets[k] for k in dict.fromkeys(kinds)}
    if not presets:
        raise InputError("no simulated datasets to run the demo on")
    analyses = list(DATASET_ANALYSES if analyses is None else analyses)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    total = len(presets) * (1 + len(analyses))
    done = 0

    def tick(message: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, message)

    runs = []
    for kind, (description, make) in presets.items():
        sim = make(seed)
        if not isinstance(sim, Simulation):
            raise InputError(f"preset {kind!r} returned {type(sim).__name__}, not a Simulation")
        tick(f"simulated {kind}")
        run = DatasetRun(kind, description, sim)
        ctx = DatasetContext(kind, description, seed, sim)
        for fn in analyses:
            output = fn(ctx)
            if output is not None:
                output.name = output.name or getattr(fn, "__name__", "analysis")
                run.outputs.append(output)
            tick(f"{kind}: {getattr(fn, '__name__', 'analysis')}")
        runs.append(run)
    return DemoResult(seed, runs, started, time.perf_counter() - t0, [getattr(f, "__name__", str(f)) for f in analyses])
