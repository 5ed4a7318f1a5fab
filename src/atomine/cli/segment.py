"""``atomine segment IMAGE --out DIR``: phase, defect and order-parameter maps from the sliding FFT."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._image import read_image
from ._output import guarded, print_info, progress_bar, spinner

METHODS = ("nfindr", "nmf", "pca", "kmeans", "gmm")


@guarded
def segment(
    image_path: Annotated[Path, typer.Argument(metavar="IMAGE", help="Image file (DM3/DM4, EMD, TIFF, .sxm, "
                                               ".zarr, .npy, ...).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Result folder to create.")],
    window: Annotated[Optional[int], typer.Option("--window", help="Window size in px (default: 4-8 lattice "
                                                  "periods).")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Window step in px (default: window / 4).")] = None,
    components: Annotated[Optional[int], typer.Option("--components", "-k", help="Number of phases (default: "
                                                      "chosen from the data).")] = None,
    method: Annotated[str, typer.Option("--method", help="Unmixing: " + ", ".join(METHODS) + ".")] = "nfindr",
    lattice_window: Annotated[Optional[int], typer.Option(
        "--lattice-window", help="Window of the rotation/strain FFT in px (default: 2 x window).")] = None,
    signal: Annotated[Optional[str], typer.Option("--signal", help="Image to use, by name or index "
                                                  "(default: the first image in the file).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the unmixing.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the folder if it exists.")] = False,
) -> None:
    """Segment IMAGE into phases and defects; write result.zarr, defects.parquet and report.html to DIR."""
    from ..errors import InputError
    from ..report import write_segment_report
    from ..workflows import check_outputs
    from ..workflows.segment import segment_phases

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    check_outputs([out_dir], overwrite)  # refuse before the work, not after
    image = read_image(image_path, signal)
    with progress_bar(f"segmenting {image_path.name}") as progress:
        result = segment_phases(image, window, step, components, method, lattice_window=lattice_window,
                                random_state=seed, progress=progress)
    with spinner(f"writing {out_dir}"):
        result.save(out_dir, overwrite=overwrite,
                    report=lambda res, path: write_segment_report(res, path, image))
    s = result.summary
    counts = ", ".join(f"{n} {kind.replace('_', ' ')} points" if kind != "dislocation" else f"{n} dislocation(s)"
                       for kind, n in s["defect_counts"].items()) or "no defects"
    print_info(f"{s['n_components']} phase(s) ({s['method']}, window {s['window_px']} px, step {s['step_px']} px, "
               f"{s['n_windows']} windows); {counts}; {result.elapsed_s:.1f} s")
    print_info(f"wrote {out_dir}: result.zarr, defects.parquet, report.html")
