"""atomine: atomically resolved microscopy data to materials physics."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("atomine")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"



def __getattr__(name: str):
    # the workflows import the whole stack; load them on first use so `import atomine` stays light
    if name == "analyze_atoms":
        from .workflows.atoms import analyze_atoms

        return analyze_atoms
    if name == "segment_phases":
        from .workflows.segment import segment_phases

        return segment_phases
    if name == "Catalog":  # the searchable catalog (SQLAlchemy only when asked for)
        from .catalog.store import Catalog

        return Catalog
    raise AttributeError(f"module 'atomine' has no attribute {name!r}")


__all__ = ["Catalog", "__version__", "analyze_atoms", "segment_phases"]
