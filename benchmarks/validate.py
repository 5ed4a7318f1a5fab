"""Run every ``benchmarks/validate_*.py`` and write ``benchmarks/VALIDATION.md``.

Validation modules hold the statistical acceptance checks that need many seeds or
slow simulators (kept out of ``make test``). Each has ``run() -> str`` returning a
Markdown section with what was checked, the numbers, and pass/fail against the
stated criterion. The file is headed by the command, date, machine and versions.

Usage: ``make validate`` (or ``python benchmarks/validate.py [--update] [NAME ...]``, see ``run.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import parse_args, run_all  # noqa: E402  (the shared runner lives next to this script)


def main() -> int:
    names, update = parse_args(sys.argv[1:])
    return run_all("validate_", "VALIDATION.md", "atomine validation", "make validate", names, update=update)


if __name__ == "__main__":
    sys.exit(main())
