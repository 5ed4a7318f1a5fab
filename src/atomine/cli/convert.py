"""``atomine convert IN OUT``: rewrite a data file in another format, keeping calibration and metadata."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._output import guarded, print_info, print_warning, spinner

STORE_SUFFIXES = (".zarr", ".nc")


@guarded
def convert(
    source: Annotated[Path, typer.Argument(metavar="IN", help="Input data file.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="Output file: .zarr/.nc keep every signal; "
                                           ".hspy/.zspy/.tif/.npy hold one.")],
    signal: Annotated[Optional[str], typer.Option("--signal", help="Signal to write, by name or index "
                                                  "(default: all for .zarr/.nc, else the first image).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Convert IN to the format OUT's extension names (written atomically; IN is never modified)."""
    from .. import io
    from ..errors import OutputExistsError, SignalNotFoundError
    from ..workflows import signals_dataset

    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
    if source.resolve() == target.resolve():
        raise OutputExistsError(f"{target} is the input file; choose another output name")
    with spinner(f"reading {source}") as status:
        signals = io.load_all(source, lazy=True)  # written chunk-wise: files larger than memory convert too
        if signal is not None:
            chosen = [io.select_signal(signals, signal, "any", str(source))]
        elif target.suffix.lower() in STORE_SUFFIXES:
            chosen = signals
        else:
            try:
                chosen = [io.select_signal(signals, None, "image", str(source))]
            except SignalNotFoundError:  # files without an image (e.g. one spectrum image) give their first signal
                chosen = [signals[0]]
        status(f"writing {target}")
        if target.suffix.lower() in STORE_SUFFIXES:
            obj = chosen[0] if len(chosen) == 1 else signals_dataset(chosen)
            io.save(obj, target, overwrite=overwrite)
        else:
            io.export(chosen[0], target, overwrite=overwrite)
    names = ", ".join(str(da.name) for da in chosen)
    left = [str(da.name) for da in signals if not any(da is c for c in chosen)]
    if left and signal is None:
        print_warning(f"{target.suffix} holds one signal; left out {', '.join(left)} "
                      "(choose with --signal, or write .zarr/.nc to keep all)")
    print_info(f"wrote {target} ({len(chosen)} signal(s): {names})")
