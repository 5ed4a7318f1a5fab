"""Reading the one image an analysis command works on."""

from pathlib import Path

from ._output import spinner

# Images up to this size are read whole; larger ones stay dask-backed and are processed in blocks.
IN_MEMORY_BYTES = 256 << 20


def read_image(path: Path, signal: str | None):
    """The image ``--signal`` names (name or index; default the file's first image), in memory when small."""
    from .. import io

    with spinner(f"reading {path}"):
        sig = int(signal) if signal is not None and signal.isdigit() else signal
        image = io.load(path, sig, kind="image", lazy=True)
        return image.compute() if image.nbytes <= IN_MEMORY_BYTES else image
