"""``atomine thermo ATOMS.parquet --out DIR``: dopant interactions from an atom table and their predictions."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._output import guarded, print_info, progress_bar, spinner

LATTICES = ("auto", "square", "triangular")
MODELS = ("auto", "j1", "j1j2", "j1j2j3", "j1+field", "j1j2+field", "j1j2j3+field")


@guarded
def thermo(
    atoms_path: Annotated[Path, typer.Argument(metavar="ATOMS", help="Atom table (atoms.parquet) or the result folder "
                                               "of 'atomine atoms'.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Result folder to create.")],
    lattice: Annotated[str, typer.Option("--lattice", help="Lattice: " + ", ".join(LATTICES) + " (default: from "
                                         "the positions).")] = "auto",
    sublattice: Annotated[Optional[int], typer.Option(
        "--sublattice", help="Sublattice to model (default: the one holding the dopants).")] = None,
    dopant: Annotated[Optional[str], typer.Option(
        "--dopant", help="Class label of the dopant (default: 'dopant', else the minority label).")] = None,
    model: Annotated[str, typer.Option("--model", help="Lattice model: " + ", ".join(MODELS) + " (auto: fit all, "
                                       "choose by BIC, cross-validation and predictive checks).")] = "auto",
    t_freeze: Annotated[Optional[float], typer.Option(
        "--t-freeze", help="Freezing temperature T_f in K: parameters also in meV, transitions in K.")] = None,
    interface: Annotated[Optional[str], typer.Option(
        "--interface", help="Interface or surface trace X0,Y0,X1,Y1 in nm (image coordinates): adds a site field "
        "exp(-d / decay) and the '+field' models.")] = None,
    field_decay: Annotated[float, typer.Option("--field-decay", help="Decay length of the interface field (nm).")] = 1.0,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Parametric-bootstrap replicas (0 = none).")] = 50,
    no_phase: Annotated[bool, typer.Option("--no-phase", help="Skip the temperature scan and phase diagram.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the Monte Carlo runs.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the folder if it exists.")] = False,
) -> None:
    """Fit a lattice model to the dopant configurations of ATOMS; write thermo.json and report.html to DIR.

    Vacancy and unknown sites are masked. Energies in k_B T_f, J > 0 ordering, J < 0 clustering.
    """
    from ..errors import InputError
    from ..report.thermo_report import write_thermo_report
    from ..workflows import check_outputs
    from ..workflows.thermo import learn_thermodynamics

    if lattice not in LATTICES:
        raise InputError(f"--lattice must be one of {', '.join(LATTICES)}, got {lattice!r}")
    if model not in MODELS:
        raise InputError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    if t_freeze is not None and not t_freeze > 0:
        raise InputError(f"--t-freeze must be a positive temperature in K, got {t_freeze}")
    if bootstrap < 0 or bootstrap == 1:
        raise InputError(f"--bootstrap must be 0 or at least 2 replicas, got {bootstrap}")
    if seed < 0:
        raise InputError(f"--seed must be a non-negative integer, got {seed}")
    if not atoms_path.exists():
        raise InputError(f"{atoms_path} does not exist; pass an atom table (.parquet) or the result folder of "
                         "'atomine atoms'")
    line = None
    if interface is not None:
        try:
            line = [float(v) for v in interface.split(",")]
        except ValueError:
            line = []
        if len(line) != 4:
            raise InputError(f"--interface takes four numbers X0,Y0,X1,Y1 in nm, got {interface!r}")
    check_outputs([out_dir], overwrite)  # refuse before the work, not after
    with progress_bar(f"learning thermodynamics from {atoms_path.name}") as progress:
        result = learn_thermodynamics(atoms_path, lattice=lattice, sublattice=sublattice, dopant=dopant, model=model,
                                      t_freeze_k=t_freeze, interface=line, field_decay_nm=field_decay,
                                      bootstrap=bootstrap, phase=not no_phase, seed=seed,
                                      progress=progress)
    with spinner(f"writing {out_dir}"):
        result.save(out_dir, overwrite=overwrite, report=lambda res, p: write_thermo_report(res, p))
    s = result.summary
    unit = " meV" if t_freeze else " k_B T_f"
    def num(v, fmt):  # thermo.json holds null where a number is undefined
        return "nan" if v is None else format(v, fmt)

    params = ", ".join(f"{k} = {num(p['value'], '.3g')} +- {num(p['stderr'], '.2g')}"
                       for k, v in s["parameters"].items() for p in [v["meV"] if t_freeze else v])
    chi2 = num(s["chi2_per_dof"], ".2f")
    print_info(f"{s['lattice']} lattice, c = {s['composition']:.3f}, {s['n_sites']} sites: {s['model']} "
               f"({params}{unit}); chi2/dof {chi2}; {result.elapsed_s:.1f} s")
    tr = s["transition"]
    if tr.get("temperature") is not None:
        kelvin = f" = {tr['temperature_k']:.0f} K" if "temperature_k" in tr else ""
        print_info(f"{tr['kind']} transition at T/T_f = {tr['temperature']:.3f}{kelvin}"
                   + ("" if tr.get("couplings_resolved", True) else " (couplings consistent with zero: not resolved)"))
    print_info(f"wrote {out_dir}: thermo.json, histograms.csv, scan.csv, candidates.csv, configurations.xyz, "
               "result.zarr, report.html")
