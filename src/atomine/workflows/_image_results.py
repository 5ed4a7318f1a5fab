"""What the image workflows (segmentation, atoms) share: the input check, its record, the result folder's tail."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from .. import __version__
from ..data import array_hash, file_hash, jsonable
from ..errors import InputError


def as_image(image, what: str) -> xr.DataArray:
    """A 2-D (y, x) DataArray from a DataArray or a plain 2-D (numpy or dask) array in pixel units."""
    if isinstance(image, xr.DataArray):
        if image.ndim != 2 or tuple(image.dims) != ("y", "x"):
            raise InputError(f"{what} needs a 2-D image with dims ('y', 'x'), got dims {tuple(image.dims)} "
                             f"and shape {image.shape}")
        return image
    arr = image if hasattr(image, "dask") else np.asarray(image)
    if arr.ndim != 2:
        raise InputError(f"{what} needs a 2-D image (y, x), got {arr.ndim}-D with shape {arr.shape}")
    from ..data import image as make_image

    return make_image(arr)


def stage_clock(progress: Callable[[int, int, str], None] | None, total: int,
                timings: dict[str, float]) -> Callable[[str, float], None]:
    """``tick(message, t0)``: records the stage's seconds since ``t0`` in ``timings`` and reports
    ``progress(done, total, message)``."""
    done = 0

    def tick(message: str, t0: float) -> None:
        nonlocal done
        done += 1
        timings[message] = round(time.perf_counter() - t0, 3)
        if progress is not None:
            progress(done, total, message)

    return tick


def image_inputs(image: xr.DataArray) -> dict[str, Any]:
    """The provenance record of the input image (content hash computed block-wise for dask images)."""
    return {"image": {"name": str(image.name), "shape": list(image.shape), "dtype": str(image.dtype),
                      "content_hash": array_hash(image), "provenance": image.attrs.get("provenance", [])}}


def provenance_record(workflow: str, result, files: dict[str, str] | None = None) -> dict[str, Any]:
    return jsonable({"workflow": workflow, "atomine_version": __version__, "time": result.started,
                     "elapsed_s": round(result.elapsed_s, 3), "parameters": result.parameters,
                     "inputs": result.inputs, "outputs": dict(files or {})})


def finish_folder(tmp: Path, result, report: Callable[[Any, Path], Any] | None) -> None:
    """``summary.json``, the optional ``report.html``, then ``provenance.json`` hashing everything written."""
    (tmp / "summary.json").write_text(json.dumps(jsonable(result.summary), indent=2) + "\n", encoding="utf-8")
    if report is not None:
        report(result, tmp / "report.html")
    files = {p.name: file_hash(p) for p in sorted(tmp.iterdir())}
    (tmp / "provenance.json").write_text(json.dumps(result.provenance(files), indent=2) + "\n", encoding="utf-8")


__all__ = ["as_image", "finish_folder", "image_inputs", "provenance_record"]
