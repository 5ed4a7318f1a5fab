"""``atomine info FILE``: what is in a file -- signals, shapes, calibration, units, metadata."""

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ._output import guarded, out, print_warning


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _signal_tables(index: int, da, lazy: bool) -> list[Table]:
    from ..data import signal_kind
    from ..report import calibration_table, metadata_table, value_statistics

    title = f"[{index}] {da.name}  ({da.attrs.get('signal', '?')}, {signal_kind(da)})"
    props = Table(title=Text(title, style="bold"), title_justify="left", show_header=False, box=None, pad_edge=False)
    props.add_column("key", style="bold")
    props.add_column("value")
    meta = metadata_table(da)
    for key, value in meta.itertuples(index=False):
        if key != "name":
            props.add_row(Text(key), Text(value))
    if not lazy:
        stats = value_statistics(da)
        units = da.attrs.get("units", "")
        text = "min {min:.6g}, max {max:.6g}, mean {mean:.6g}, std {std:.6g}".format(**stats)
        props.add_row(Text("values"), Text(text + (f" {units}" if units else "")))
    cal = Table(title="calibration (physical = offset + index * scale)", title_justify="left")
    for col in ("dim", "size", "offset", "scale", "units", "long name", "uniform"):
        cal.add_column(col, justify="right" if col in ("size", "offset", "scale") else "left")
    for row in calibration_table(da).itertuples(index=False):
        style = "yellow" if row.units in ("", "px") else None
        cells = (row.dim, str(row.size), _fmt(row.offset), _fmt(row.scale), row.units or "(none)",
                 row.long_name, "yes" if row.uniform else "no")
        cal.add_row(*(Text(c) for c in cells), style=style)
    return [props, cal]


@guarded
def info(
    file: Annotated[Path, typer.Argument(help="Data file (any format atomine reads; see the README).")],
    lazy: Annotated[bool, typer.Option(
        "--lazy", help="Open without reading the data (dask-backed); skips value statistics.")] = False,
) -> None:
    """Show every signal in FILE: type, shape, dims, dtype, calibration per axis, value units, metadata."""
    from ..data import UncalibratedWarning, is_calibrated
    from ..io import format_of, load_all

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signals = load_all(file, lazy=lazy)
    for w in caught:
        # Uncalibrated signals get one line each below, whatever the reader said about them.
        if not issubclass(w.category, UncalibratedWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    out.print(Text(f"{file}: {format_of(file)[0]}, {len(signals)} signal(s)", style="bold"), soft_wrap=True)
    for i, da in enumerate(signals):
        out.print()
        for table in _signal_tables(i, da, lazy):
            out.print(table)
        if not is_calibrated(da):
            print_warning(f"signal [{i}] {da.name}: no spatial calibration; lengths are in pixels (px)")
