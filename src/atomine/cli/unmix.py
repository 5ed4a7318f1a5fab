"""``atomine unmix FILE --out DIR``: pure spectra and abundance maps of an EELS/EDS spectrum image or CITS grid."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._output import guarded, print_info, progress_bar, spinner

METHODS = ("fcls", "nnls", "mcr", "nmf", "bayes")
IN_MEMORY_BYTES = 2 << 30  # unmixing holds the (pixels x channels) matrix in memory anyway


def _read(path: Path, signal: Optional[str], kind: str):
    from .. import io

    sig = int(signal) if signal is not None and signal.lstrip("-").isdigit() else signal
    da = io.load(path, sig, kind=kind, lazy=True)
    if da.nbytes > IN_MEMORY_BYTES:
        from ..errors import InputError

        raise InputError(f"{path} holds {da.nbytes / 2**30:.1f} GiB; unmixing needs it in memory: crop or bin it "
                         "first (atomine convert)")
    return da.compute()


def _references(paths: list[Path]):
    """One spectrum per file: the file's first one-dimensional signal (a spectrum with its own axis)."""
    from .. import io
    from ..errors import InputError

    refs = []
    for p in paths:
        signals = [s for s in io.load_all(p) if s.ndim == 1]
        if not signals:
            raise InputError(f"reference {p} holds no one-dimensional spectrum")
        ref = signals[0]
        refs.append(ref.rename(p.stem) if ref.name is None or str(ref.name) in ("", "data") else ref)
    return refs


@guarded
def unmix(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="Spectrum image or CITS grid (.zarr, .nc, .3ds, "
                                         "DM3/DM4, EMD, .npy, ...).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Result folder to create.")],
    components: Annotated[Optional[int], typer.Option("--components", "-k", help="Number of components (default: "
                                                      "chosen from the data by bi-cross-validation).")] = None,
    method: Annotated[str, typer.Option("--method", help="Unmixing: " + ", ".join(METHODS) + ".")] = "fcls",
    references: Annotated[Optional[list[Path]], typer.Option(
        "--references", help="Known pure spectra, one file each (repeatable); resampled onto the data's axis.")] = None,
    no_background: Annotated[bool, typer.Option("--no-background", help="EELS: keep the power-law background "
                                                "(default: removed with a window before the first edge).")] = False,
    signal: Annotated[Optional[str], typer.Option("--signal", help="Signal to use, by name or index (default: the "
                                                  "first spectrum image or CITS grid in the file).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the unmixing.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the folder if it exists.")] = False,
) -> None:
    """Unmix FILE into pure spectra and abundance maps; write result.zarr, annotations.csv and report.html to DIR."""
    from ..errors import InputError
    from ..report.unmix_report import write_unmix_report
    from ..workflows import check_outputs
    from ..workflows.unmix import unmix_spectra

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    if components is not None and components < 1:
        raise InputError(f"--components must be a positive integer, got {components}")
    check_outputs([out_dir], overwrite)  # refuse before the work, not after
    with spinner(f"reading {path}"):
        data = _read(path, signal, "spectral")
        refs = _references(list(references)) if references else None
    with progress_bar(f"unmixing {path.name}") as progress:
        result = unmix_spectra(data, method=method, n_components=components, references=refs,
                               background=not no_background, random_state=seed, progress=progress)
    with spinner(f"writing {out_dir}"):
        result.save(out_dir, overwrite=overwrite, report=lambda res, p: write_unmix_report(res, p))
    s = result.summary
    print_info(f"{s['n_components']} component(s) by {s['method']} ({s['n_components_chosen']}); lack of fit "
               f"{s['lack_of_fit_percent']:.2f} %; {result.elapsed_s:.1f} s")
    print_info(f"wrote {out_dir}: result.zarr, annotations.csv, summary.json, report.html")
