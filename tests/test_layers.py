"""DESIGN.md's layering rule, checked on the source: imports only go down (or sideways within a layer)."""

import ast
from pathlib import Path

import atomine

# The server sits beside the CLI (DESIGN.md drew it one layer above, before it existed):
# `atomine serve` in the CLI starts it, and it imports nothing from the CLI.
LAYERS = {
    "errors": 1, "data": 1, "io": 2,
    "simulate": 3, "fourier": 3, "unmix": 3, "atoms": 3, "spectra": 3, "thermo": 3, "correlate": 3,
    "workflows": 4, "report": 5, "catalog": 5, "cli": 6, "server": 6,
}
PACKAGE = Path(atomine.__file__).parent


def _layer_of(parts: list[str]) -> tuple[str, int] | None:
    if not parts or parts[0] not in LAYERS:
        return None
    return parts[0], LAYERS[parts[0]]


def _imported_packages(path: Path) -> list[tuple[int, list[str]]]:
    """(line, subpackage path below atomine) for every import of atomine code in the module."""
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    pkg = list(rel[:-1]) if rel[-1] != "__init__" else list(rel[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = base + (node.module.split(".") if node.module else [])
                if not node.module:  # "from .. import io": the names are the modules
                    found += [(node.lineno, base + [a.name]) for a in node.names]
                    continue
            elif node.module and node.module.split(".")[0] == "atomine":
                target = node.module.split(".")[1:]
            else:
                continue
            found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "atomine"]
    return found


def test_every_module_sits_in_a_known_layer():
    top = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert top <= set(LAYERS) | {"_version"}, f"add {top - set(LAYERS)} to DESIGN.md's layer table and here"


def test_imports_only_go_down():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer_of(list(path.relative_to(PACKAGE).parts))
        if own is None:
            continue
        for line, target in _imported_packages(path):
            other = _layer_of(target)
            if other is not None and other[1] > own[1]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} ({own[0]}, layer {own[1]}) imports "
                             f"{'.'.join(target)} (layer {other[1]})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # The rule must be able to fail: a workflow module importing the report is caught.
    fake = tmp_path / "atomine"
    (fake / "workflows").mkdir(parents=True)
    (fake / "workflows" / "bad.py").write_text("from ..report import write_report\nfrom .. import cli\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = _imported_packages(fake / "workflows" / "bad.py")
    assert [t for _, t in found] == [["report"], ["cli"]]
    assert all(_layer_of(t)[1] > LAYERS["workflows"] for _, t in found)
