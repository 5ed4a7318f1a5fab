"""Run every ``benchmarks/bench_*.py`` and write ``benchmarks/RESULTS.md``.

Each benchmark module has ``run() -> str`` returning a Markdown section (tables of
timings, ratios against the tools users would pick instead, accuracy). This script
imports them in name order, calls ``run()``, and writes one file headed by the
command, date, machine and package versions, so results are comparable between runs.
``validate.py`` reuses :func:`run_all` for ``validate_*.py`` -> ``VALIDATION.md``.

Usage: ``make bench`` (or ``python benchmarks/run.py [NAME ...]`` to run some modules, which
rewrites the file with only those; ``--update NAME ...`` reruns those modules and replaces only
their sections of the existing file, recording the partial rerun in its header).
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import os
import platform
import sys
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Reported when installed: atomine's stack and the tools the benchmarks compare against.
PACKAGES = (
    "atomine", "numpy", "scipy", "xarray", "dask", "zarr", "pandas", "numba", "matplotlib", "scikit-image",
    "scikit-learn", "hyperspy", "rosettasciio", "exspy", "pycroscopy", "sidpy", "atomap", "pysptools", "icet",
    "smol", "abtem", "nanonispy",
)


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else what platform knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def header(title: str, command: str) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mem = ""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages * size / 1024**3:.0f} GiB memory"
    except (AttributeError, ValueError, OSError):
        pass
    vers = ", ".join(f"{k} {v}" for k, v in versions().items())
    return (f"# {title}\n\n"
            f"- command: `{command}`\n"
            f"- date: {now}\n"
            f"- machine: {usable_cores()} cores ({os.cpu_count()} logical in all), {cpu_model()}{mem}, "
            f"{platform.system()} {platform.release()}\n"
            f"- versions: {vers}\n")


def discover(prefix: str, names: list[str] | None = None, folder: Path = HERE) -> list[Path]:
    """``<prefix>*.py`` files in ``folder``, in name order (optionally only those named)."""
    files = sorted(Path(folder).glob(f"{prefix}*.py"))
    if names:
        wanted = {n.removesuffix(".py") for n in names}
        files = [f for f in files if f.stem in wanted or f.stem.removeprefix(prefix) in wanted]
    return files


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"atomine_benchmarks_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_module(path: Path) -> tuple[str, bool]:
    """(Markdown section, ok) for one module; a failure is reported in the section, not raised."""
    t0 = time.perf_counter()
    try:
        module = _load(path)
        if not callable(getattr(module, "run", None)):
            raise TypeError(f"{path.name} has no run() -> str function")
        body = module.run()
        if not isinstance(body, str):
            raise TypeError(f"{path.name}: run() returned {type(body).__name__}, not str")
        ok = True
    except Exception:
        body = "**FAILED**\n\n```\n" + traceback.format_exc() + "```\n"
        ok = False
    elapsed = time.perf_counter() - t0
    return f"## {path.stem}\n\n{body.strip()}\n\n_({elapsed:.1f} s)_\n", ok


def _split_sections(text: str, stems: set[str]) -> tuple[str, dict[str, str], list[str]]:
    """(header, {module stem: its section}, stems in file order) of a results file.

    A section starts at a ``## <module stem>`` line; headings inside a section (a module's own
    ``## ...`` tables) are not module stems, so they stay inside it.
    """
    lines = text.splitlines(keepends=True)
    starts = [(i, ln[3:].strip()) for i, ln in enumerate(lines) if ln.startswith("## ") and ln[3:].strip() in stems]
    if not starts:
        return text, {}, []
    head = "".join(lines[:starts[0][0]])
    sections, order = {}, []
    for n, (i, stem) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        sections[stem] = "".join(lines[i:end]).rstrip("\n") + "\n"
        order.append(stem)
    return head, sections, order


def _write(target: Path, text: str) -> None:
    tmp = target.with_name(f".{target.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)  # readers never see a half-written file


def run_all(prefix: str, output: str, title: str, command: str, names: list[str] | None = None,
            folder: Path = HERE, update: bool = False) -> int:
    """Run every ``<prefix>*.py`` module in ``folder`` and write ``output`` there; returns an exit code.

    With ``update``, only the modules named are run and their sections replace the old ones
    in the existing ``output`` (new modules are inserted in name order); the header gains a
    line naming the rerun, its command and date, so every figure stays traceable.
    """
    files = discover(prefix, names, folder)
    target = Path(folder) / output
    if update and (not names or not files):
        print("--update needs the names of existing modules to rerun", file=sys.stderr)
        return 2
    if update and not target.exists():
        print(f"--update: {target.name} does not exist yet; run without --update first", file=sys.stderr)
        return 2
    sections, failed = {}, []
    if not files:
        sections[""] = f"No `{prefix}*.py` modules found in {Path(folder).name}/.\n"
    for path in files:
        print(f"running {path.name} ...", flush=True)
        section, ok = run_module(path)
        sections[path.stem] = section
        if not ok:
            failed.append(path.name)
            print(f"  FAILED: {path.name}", file=sys.stderr, flush=True)
    if update:
        all_stems = {f.stem for f in discover(prefix, None, folder)}
        head, old, order = _split_sections(target.read_text(encoding="utf-8"), all_stems | set(sections))
        old.update(sections)
        order = sorted(set(order) | set(sections))
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        rerun = " ".join(f.stem for f in files)
        head = head.rstrip("\n") + (f"\n- updated {now}: {', '.join(f.stem for f in files)} rerun alone "
                                    f"(`python benchmarks/{Path(sys.argv[0]).name} --update {rerun}`, "
                                    f"atomine {versions().get('atomine', '?')})\n\n")
        _write(target, head + "\n".join(old[s] for s in order))
    else:
        _write(target, "\n".join([header(title, command)] + list(sections.values())))
    print(f"wrote {target}")
    if failed:
        print(f"{len(failed)} module(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str]) -> tuple[list[str], bool]:
    """(module names, update?) from the command line."""
    update = "--update" in argv
    return [a for a in argv if a != "--update"], update


def main() -> int:
    names, update = parse_args(sys.argv[1:])
    return run_all("bench_", "RESULTS.md", "atomine benchmarks", "make bench", names, update=update)


if __name__ == "__main__":
    sys.exit(main())
