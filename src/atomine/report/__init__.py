"""The self-contained HTML report: figures with calibrated axes, tables with units, sections.

Build a report from :class:`Section` objects holding blocks (:class:`Text`,
:class:`Html`, :class:`Figure`, :class:`Table`, :class:`Row`, nested sections), then
``render_html(title, sections)`` or ``write_report(path, title, sections)``.
Figure helpers (``plot_image``, ``plot_maps``, ``plot_image_grid``, ``plot_profiles``,
``plot_curves``, ``plot_spectrum_image``, ``plot_cits``, ``plot_atoms_overlay``) return
matplotlib figures; pass them to :class:`Figure` to embed them as PNG.
``write_demo_report(result, path)`` renders the demo workflow's result;
``segment_sections`` / ``write_segment_report`` the sliding-FFT segmentation's;
``atoms_sections`` / ``write_atoms_report`` the atom-column analysis'.

The figure helpers are imported on first use so that tools needing only the tables
(e.g. ``atomine info``) do not pay for importing matplotlib.
"""

from __future__ import annotations

import importlib

from .html import Figure, Html, Row, Section, Table, Text, render_html, write_report
from .tables import (
    axis_is_uniform,
    calibration_table,
    column_units,
    dataframe_html,
    metadata_table,
    parameters_table,
    value_statistics,
)

_FIGURES = ("plot_image", "plot_maps", "plot_image_grid", "plot_profiles", "plot_curves", "plot_atoms_overlay")
_SPECTRAL = ("plot_spectrum_image", "plot_cits", "didv")
_DEMO = ("demo_sections", "write_demo_report")
_SEGMENT = ("segment_sections", "write_segment_report")
_ATOMS = ("atoms_sections", "write_atoms_report")
_LAZY = {**{name: "figures" for name in _FIGURES}, **{name: "spectral" for name in _SPECTRAL},
         **{name: "demo_report" for name in _DEMO}, **{name: "segment_report" for name in _SEGMENT},
         **{name: "atoms_report" for name in _ATOMS}}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Figure", "Html", "Row", "Section", "Table", "Text", "render_html", "write_report",
    *_FIGURES, *_SPECTRAL, *_DEMO, *_SEGMENT, *_ATOMS,
    "axis_is_uniform", "calibration_table", "column_units", "dataframe_html", "metadata_table",
    "parameters_table", "value_statistics",
]
