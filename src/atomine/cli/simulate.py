"""``atomine simulate KIND --out FILE``: write a built-in simulated dataset and its ground truth."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from ._output import guarded, out, print_info, print_warning, spinner


def _kinds_text() -> str:
    """One paragraph per simulation kind for the help page (simulators are imported only here)."""
    try:
        from ..simulate import presets

        table = presets()
    except Exception as exc:  # help must still print if a simulator cannot be imported
        return escape(f"Kinds: unavailable ({type(exc).__name__}: {exc}).")
    lines = ["[bold]Kinds:[/bold]"] + [f"[bold]{escape(k)}[/bold]: {escape(' '.join(desc.split()))}"
                                       for k, (desc, _) in sorted(table.items())]
    return "\n\n".join(lines)


class SimulateCommand(TyperCommand):
    """The simulate command, whose help lists the available kinds (looked up when help is shown)."""

    def format_help(self, ctx, formatter):
        self.epilog = _kinds_text()
        return super().format_help(ctx, formatter)


def _print_kinds() -> None:
    from ..simulate import presets

    table = Table(title="simulation kinds (atomine simulate KIND --out FILE)", title_justify="left")
    table.add_column("kind", style="bold")
    table.add_column("description")
    for kind, (desc, _) in sorted(presets().items()):
        table.add_row(Text(kind), Text(" ".join(desc.split())))
    out.print(table)


@guarded
def simulate(
    kind: Annotated[Optional[str], typer.Argument(
        metavar="KIND", help="Which dataset to simulate; omit it to list the kinds.")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file; its extension picks the "
                                                     "format (.zarr/.nc keep the simultaneous signals too).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
) -> None:
    """Simulate a dataset with known ground truth; the truth goes to <FILE stem>.truth/ beside FILE."""
    from ..errors import InputError

    if kind is None:
        _print_kinds()
        return
    if out_file is None:
        raise InputError("give the output file with --out FILE (e.g. --out data.zarr)")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    from ..io import format_of
    from ..simulate import make
    from ..workflows import check_outputs, truth_folder, write_simulation

    format_of(out_file)  # an unknown extension fails before the simulation runs
    check_outputs([out_file, truth_folder(out_file)], overwrite)
    with spinner(f"simulating {kind} (seed {seed})") as status:
        sim = make(kind, seed)
        status(f"writing {out_file}")
        written = write_simulation(sim, out_file, overwrite=overwrite)
    if written.left_out:
        print_warning(f"{out_file.suffix} holds one signal; the simultaneous signal(s) "
                      f"{', '.join(written.left_out)} were not written (use .zarr or .nc to keep them)")
    print_info(f"wrote {written.data} ({kind}, seed {seed})")
    print_info(f"wrote ground truth to {written.truth}")
