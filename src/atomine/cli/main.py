"""The ``atomine`` command: global options and the sub-commands.

Each sub-command lives in its own module; this one wires them up. Heavy imports
(xarray readers, matplotlib, simulators) happen inside the commands, so
``atomine --help`` stays fast.
"""

from typing import Annotated, Optional

import typer

from .. import __version__
from ._output import options
from .atoms import atoms
from .catalog import catalog_app
from .convert import convert
from .correlate import correlate
from .demo import demo
from .info import info
from .segment import segment
from .serve import serve
from .simulate import SimulateCommand, simulate
from .thermo import thermo
from .unmix import unmix

app = typer.Typer(
    name="atomine",
    help="Atomically resolved microscopy data (STEM, STM, EELS, CITS) to materials physics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"atomine {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show full tracebacks and third-party warnings.")] = False,
) -> None:
    """Atomically resolved microscopy data (STEM, STM, EELS, CITS) to materials physics."""
    options.debug = debug


app.command("info")(info)
app.command("convert")(convert)
app.command("simulate", cls=SimulateCommand)(simulate)
app.command("demo")(demo)
app.command("segment")(segment)
app.command("atoms")(atoms)
app.command("unmix")(unmix)
app.command("thermo")(thermo)
app.command("correlate")(correlate)
app.add_typer(catalog_app, name="catalog")
app.command("serve")(serve)


def main() -> None:
    """Entry point of the ``atomine`` script."""
    app(prog_name="atomine")


if __name__ == "__main__":
    main()
