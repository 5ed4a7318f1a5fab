"""``atomine atoms IMAGE --out DIR``: every atom column, its sublattice and class, segregation and order parameters."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._image import read_image
from ._output import guarded, print_info, progress_bar, spinner

@guarded
def atoms(
    image_path: Annotated[Path, typer.Argument(metavar="IMAGE", help="Image file (DM3/DM4, EMD, TIFF, .sxm, "
                                               ".zarr, .npy, ...).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Result folder to create.")],
    separation: Annotated[Optional[float], typer.Option(
        "--separation", help="Smallest column separation in nm (default: from the lattice period).")] = None,
    dark: Annotated[bool, typer.Option("--dark", help="Columns are dark on a bright background (ABF).")] = False,
    noise: Annotated[Optional[str], typer.Option("--noise", help="Fit noise model: poisson (counts) or gaussian "
                                                 "(default: gaussian for STM, else poisson).")] = None,
    subsurface: Annotated[Optional[bool], typer.Option(
        "--subsurface/--no-subsurface", help="Dopants sit below the hollows of the imaged lattice (STM of a "
        "perovskite surface); default: on for STM images.")] = None,
    signal: Annotated[Optional[str], typer.Option("--signal", help="Image to use, by name or index "
                                                  "(default: the first image in the file).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the classification and bootstrap.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the folder if it exists.")] = False,
) -> None:
    """Fit every atom column of IMAGE; write atoms.parquet, result.zarr and report.html to DIR."""
    from ..errors import InputError
    from ..report import write_atoms_report
    from ..workflows import check_outputs
    from ..workflows.atoms import analyze_atoms

    if noise is not None and noise not in ("poisson", "gaussian"):
        raise InputError(f"--noise must be poisson or gaussian, got {noise!r}")
    if separation is not None and not separation > 0:
        raise InputError(f"--separation must be a positive length in nm, got {separation}")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    check_outputs([out_dir], overwrite)  # refuse before the work, not after
    image = read_image(image_path, signal)
    with progress_bar(f"fitting atoms in {image_path.name}") as progress:
        result = analyze_atoms(image, separation, dark_columns=dark, noise=noise, subsurface=subsurface,
                               random_state=seed, progress=progress)
    with spinner(f"writing {out_dir}"):
        result.save(out_dir, overwrite=overwrite, report=lambda res, path: write_atoms_report(res, path, image))
    s = result.summary
    sub = ", ".join(str(n) for n in s["lattice"]["atoms_per_sublattice"])
    print_info(f"{s['n_columns']} columns ({100 * s['fit_ok_fraction']:.1f} % fitted, median position error "
               f"{s['median_pos_err_pm']:.1f} pm); sublattices: {sub}; {result.elapsed_s:.1f} s")
    if "subsurface" in s:
        n = s["classes"]
        k = s["subsurface"]["sublattice"]
        print_info(f"sub-surface sites (sublattice {k}): {n.get(f'{k}/dopant', 0)} dopant, {n.get(f'{k}/host', 0)} "
                   f"host, {n.get(f'{k}/vacancy', 0)} vacancy")
    print_info(f"wrote {out_dir}: atoms.parquet, result.zarr, report.html")
