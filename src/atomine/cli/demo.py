"""``atomine demo --out DIR``: simulate every example dataset, analyse it, write the report, catalogue it all."""

import os
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
    with progress_bar("adding the data and results to a catalog") as progress:
        done = catalog_demo_output(out_dir, progress=progress)
    db = done["catalog"]
    analyses = f"{done['analyses']} " + ("analysis" if done["analyses"] == 1 else "analyses")
    print_info(f"catalogued {done['datasets']} datasets and {analyses} in {db} "
               f"({done['seconds']:.1f} s)")
    print_info(f'browse: atomine serve --catalog {db}   or   atomine catalog search --catalog {db} "signal:HAADF"')


def catalog_demo_output(out_dir: "str | os.PathLike", *, progress=None) -> dict:
    """Full ingest of a demo folder's data (``data/``) and of the folder itself as an analysis.

    The catalog is ``<out_dir>/catalog.sqlite`` (replaced if there); the analysis links to its
    input datasets through their array hashes. Returns the catalog path, the number of datasets
    and analyses catalogued, the failures, and the seconds taken.
    """
    import time

    from ..catalog import Catalog, ingest
    from ..catalog.ingest import analysis_from_folder

    start = time.perf_counter()
    out_dir = Path(out_dir)
    db = out_dir / "catalog.sqlite"
    for suffix in ("", "-wal", "-shm"):  # a fresh catalog: the folder was just (re)written
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with Catalog(db) as cat:
        data = ingest(cat, [out_dir / "data"], progress=progress)
        # the result folder itself, not its result.zarr / truth maps: derived copies of the
        # inputs that would only repeat them in every search
        record = analysis_from_folder(out_dir)
        if record is not None:
            cat.add_analysis(record)
    return {"catalog": db, "datasets": data.added + data.unchanged + data.updated + data.moved,
            "analyses": int(record is not None), "failed": data.failed, "seconds": time.perf_counter() - start}
