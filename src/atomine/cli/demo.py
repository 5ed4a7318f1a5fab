"""``atomine demo --out DIR``: simulate every example dataset, analyse it, and write the report."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._output import guarded, print_info, progress_bar


@guarded
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Result folder to create.")] = Path("demo-output"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the simulations.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the folder if it exists.")] = False,
    kind: Annotated[Optional[list[str]], typer.Option(
        "--kind", help="Only this dataset (repeatable; default: all, see 'atomine simulate').")] = None,
) -> None:
    """Run the demo: every built-in simulated dataset, every analysis, one self-contained report.html."""
    from ..errors import InputError
    from ..report import write_demo_report
    from ..workflows import check_outputs, run_demo

    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    check_outputs([out_dir], overwrite)  # refuse before minutes of work, not after
    with progress_bar("running the demo") as progress:
        result = run_demo(seed, progress, kinds=kind or None)
    with progress_bar(f"drawing the report and writing {out_dir}") as progress:
        result.save(out_dir, overwrite=overwrite,
                    report=lambda res, path: write_demo_report(res, path, progress=progress))
    print_info(f"wrote {out_dir} ({len(result.datasets)} datasets, {result.elapsed_s:.1f} s)")
    print_info(f"report: {out_dir / 'report.html'}")
