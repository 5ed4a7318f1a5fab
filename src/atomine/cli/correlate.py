"""``atomine correlate --image IMG --spectra SI --out DIR``: which local structure explains which spectral response."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._output import guarded, out, print_info, progress_bar, spinner

UNMIX_METHODS = ("fcls", "nnls", "nmf", "mcr", "bayes")
CORR_METHODS = ("pearson", "spearman")
TOP_LINKS = 10


def _exists(path: Optional[Path], option: str, what: str) -> None:
    from ..errors import InputError

    if path is not None and not path.exists():
        raise InputError(f"{option} {path} does not exist; pass {what}")


def _registration_line(result) -> str:
    p = result.transform.params()
    sx, sy = p["scale"]
    shift = ", ".join(f"{v:.3f}" for v in p["shift_nm"])
    reg = result.registration
    head = "transform given" if reg is None else (
        f"registration: residual {reg.residual:.3f}, confidence {reg.confidence:.2f}, error {reg.error_px:.3f} px")
    return f"{head}; rotation {p['rotation_deg']:.3f} deg, scale {sx:.4f} x {sy:.4f}, shift ({shift}) nm"


def _links_table(result):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"top {TOP_LINKS} links (of {len(result.links)})", title_justify="left")
    for col in ("structure", "property"):
        table.add_column(col)
    for col in ("r", "q", "cv_r2"):
        table.add_column(col, justify="right")
    for _, row in result.links.head(TOP_LINKS).iterrows():
        table.add_row(Text(str(row["structure"])), Text(str(row["property"])), f"{row['r']:+.3f}",
                      f"{row['q']:.2g}", f"{row['cv_r2']:.3f}")
    return table


@guarded
def correlate(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Result folder to create.")],
    spectra: Annotated[Path, typer.Option("--spectra", help="Spectrum image (EELS/EDS SI or CITS grid; an .nc/.zarr "
                                          "Dataset or .emd may hold its simultaneous ADF too) or an 'atomine unmix' "
                                          "result folder.")],
    image: Annotated[Optional[Path], typer.Option("--image", help="High-resolution image: atoms (and with --segment "
                                                  "the segmentation) run on it, and it is the registration target.")]
    = None,
    adf: Annotated[Optional[Path], typer.Option("--adf", help="Simultaneous channel of the spectrum image (default: "
                                                "the one in the spectra file, else the summed signal).")] = None,
    signal: Annotated[Optional[str], typer.Option("--signal", help="Spectral signal of the spectra file, by name or "
                                                  "index (default: its first spectrum image).")] = None,
    atoms: Annotated[Optional[Path], typer.Option("--atoms", help="Reuse an 'atomine atoms' result folder.")] = None,
    segmentation: Annotated[Optional[Path], typer.Option(
        "--segmentation", help="Reuse an 'atomine segment' result folder.")] = None,
    segment: Annotated[bool, typer.Option("--segment", help="Also run the sliding-FFT segmentation on the image.")]
    = False,
    transform: Annotated[Optional[Path], typer.Option(
        "--transform", help="transform.json (spectral nm -> image nm) of an earlier run: skips the registration.")]
    = None,
    unmix_method: Annotated[str, typer.Option("--unmix-method", help="Unmixing: " + ", ".join(UNMIX_METHODS) + ".")]
    = "fcls",
    components: Annotated[Optional[int], typer.Option(
        "--components", "-k", help="Unmixing components (default: chosen by bi-cross-validation).")] = None,
    method: Annotated[str, typer.Option("--method", help="Correlation: pearson or spearman.")] = "pearson",
    fdr: Annotated[float, typer.Option("--fdr", help="False discovery rate of the significant links.")] = 0.05,
    permutations: Annotated[Optional[int], typer.Option(
        "--permutations", help="Spatial permutations per pair (default: every cyclic shift).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of every stage.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the folder if it exists.")] = False,
) -> None:
    """Register the spectrum image onto the image, map structure onto the spectral grid, rank the links.

    Writes links.csv, correlate.json, transform.json, result.zarr, provenance.json and report.html to DIR.
    """
    from ..errors import InputError
    from ..workflows import check_outputs
    from ..workflows.correlate import correlate as run_correlate

    if unmix_method not in UNMIX_METHODS:
        raise InputError(f"--unmix-method must be one of {', '.join(UNMIX_METHODS)}, got {unmix_method!r}")
    if method not in CORR_METHODS:
        raise InputError(f"--method must be pearson or spearman, got {method!r}")
    if not 0 < fdr < 1:
        raise InputError(f"--fdr must be a false discovery rate in (0, 1), e.g. 0.05; got {fdr}")
    if permutations is not None and permutations < 99:
        raise InputError(f"--permutations must be at least 99 (or omitted for every shift), got {permutations}")
    if components is not None and components < 1:
        raise InputError(f"--components must be a positive integer, got {components}")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    if image is None and atoms is None and segmentation is None:
        raise InputError("give the high-resolution image with --image (or reuse results with --atoms/--segmentation)")
    _exists(image, "--image", "the high-resolution image file")
    _exists(spectra, "--spectra", "a spectrum-image file or an 'atomine unmix' folder")
    _exists(adf, "--adf", "the simultaneous channel's file")
    _exists(atoms, "--atoms", "an 'atomine atoms' result folder")
    _exists(segmentation, "--segmentation", "an 'atomine segment' result folder")
    _exists(transform, "--transform", "a transform.json")
    check_outputs([out_dir], overwrite)  # refuse before the work, not after
    from ..report.correlate_report import write_correlate_report  # lazily: matplotlib only when it runs

    # the workflow reads the files: the image file's largest image (a pair file also holds the small ADF),
    # the spectrum image (--signal) and its simultaneous channel
    structure = [p for p in (atoms, segmentation) if p is not None]
    img = image
    if not structure:
        structure, img = img, None
    with progress_bar(f"correlating {spectra.name}") as progress:
        result = run_correlate(structure, spectra, image=img, adf=adf, signal=signal, transform=transform,
                               segment=segment, unmix_method=unmix_method, n_components=components, method=method,
                               fdr=fdr, n_permutations=permutations, random_state=seed, progress=progress)
    with spinner(f"writing {out_dir}"):
        result.save(out_dir, overwrite=overwrite, report=lambda res, p: write_correlate_report(res, p))
    s = result.summary
    print_info(_registration_line(result))
    out.print(_links_table(result))
    print_info(f"{s['n_significant']} of {len(result.links)} links significant at FDR {fdr:g} "
               f"({s['n_structure']} structural x {s['n_property']} spectral descriptors); {result.elapsed_s:.1f} s")
    written = sorted(p.name + ("/" if p.is_dir() else "") for p in out_dir.iterdir())
    print_info(f"wrote {out_dir}: {', '.join(written)}")
