"""Console output of the CLI: error and warning lines, progress bars, and the error guard.

User errors (:class:`atomine.errors.AtomineError`) become one red ``error: ...``
line on stderr and exit code 2; warnings from atomine become one yellow
``warning: ...`` line each. Tracebacks are shown only with ``atomine --debug``.
"""

import contextlib
import functools
import sys
import traceback
import warnings
from typing import Callable, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..errors import AtomineError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130

# Rich resolves sys.stdout / sys.stderr when printing, so these also follow redirection in tests.
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class _Options:
    """Global options of one invocation (set by the root callback)."""

    debug: bool = False


options = _Options()


def one_line(message: str) -> str:
    """Collapse whitespace so a message always prints as one line."""
    return " ".join(str(message).split())


def print_error(message: str) -> None:
    err.print(Text("error: " + one_line(message), style="bold red"), soft_wrap=True)


def print_warning(message: str) -> None:
    err.print(Text("warning: " + one_line(message), style="yellow"), soft_wrap=True)


def print_info(message: str) -> None:
    out.print(Text(one_line(message)), soft_wrap=True)


def _from_atomine(w: warnings.WarningMessage) -> bool:
    module = getattr(w.category, "__module__", "") or ""
    return module.startswith("atomine") or "atomine" in str(w.filename).replace("\\", "/").split("/")


@contextlib.contextmanager
def warning_lines() -> Iterator[None]:
    """Show each distinct warning raised by atomine as one yellow line (third-party ones only with --debug)."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        w = warnings.WarningMessage(message, category, filename, lineno, file, line)
        if not (options.debug or _from_atomine(w)):
            return
        text = one_line(str(message))
        if text not in seen:
            seen.add(text)
            print_warning(text)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield


def guarded(command: Callable) -> Callable:
    """Run a command with warning lines and turn errors into one line and an exit code."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            with warning_lines():
                return command(*args, **kwargs)
        except typer.Exit:
            raise
        except AtomineError as exc:
            _maybe_traceback()
            print_error(str(exc) or type(exc).__name__)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            print_error("interrupted; nothing was written")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except OSError as exc:  # permissions, full disk, ...: the user's environment, not a bug
            _maybe_traceback()
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            print_error(f"{exc.strerror or exc}{where}")
            raise typer.Exit(EXIT_USER_ERROR) from None
        except Exception as exc:
            _maybe_traceback()
            print_error(f"unexpected {type(exc).__name__}: {exc} -- this is a bug in atomine; "
                        "rerun with 'atomine --debug ...' for the traceback and report it")
            raise typer.Exit(EXIT_INTERNAL_ERROR) from None

    return run


def _maybe_traceback() -> None:
    if options.debug:
        traceback.print_exc(file=sys.stderr)


@contextlib.contextmanager
def spinner(description: str) -> Iterator[Callable[[str], None]]:
    """A transient spinner on stderr; yields a function that changes its text."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda text: progress.update(task, description=text)


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int, str], None]]:
    """A transient progress bar on stderr; yields a ``progress(done, total, message)`` callback."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int, message: str = "") -> None:
            progress.update(task, completed=done, total=total, description=message or description)

        yield update
