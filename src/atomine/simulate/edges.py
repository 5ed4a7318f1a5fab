"""Tabulated EELS core-loss edges: element, edge, onset energy (eV) and shape family.

Onset energies are those of the EELS Atlas (C. C. Ahn and O. L. Krivanek, *EELS Atlas*,
Gatan / Arizona State University, 1983), the values also listed in Gatan's EELS.info
periodic table. They are edge *onsets* (where the edge starts to rise), not the
white-line maxima, which sit 1-3 eV higher.

Edge families decide the simulated shape (see :mod:`atomine.simulate.eels`):

- ``K``    hydrogenic-like sawtooth with a delayed near-edge maximum;
- ``L23``  spin-orbit pair L3 / L2 (continuum steps 2:1) with white lines when the
  final d band is not full (Ca-Zn 3d metals strongest, 4d metals weak);
- ``M45``  spin-orbit pair M5 / M4 (continuum steps 3:2) with strong white lines for
  Ba and the lanthanides (empty 4f), none for the 5d metals;
- a single ``L2,3`` or ``M4,5`` entry (spin-orbit splitting below ~1 eV) is one
  delayed edge without white lines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError

# element: (Z, {edge: onset_ev}, white_line_strength); strength is the white-line area
# relative to the continuum jump (0 = no white lines), a phenomenological value that
# follows the number of empty final-state d (or f) orbitals.
_ELEMENTS: dict[str, tuple[int, dict[str, float], float]] = {
    "Li": (3, {"K": 55.0}, 0.0),
    "Be": (4, {"K": 111.0}, 0.0),
    "B": (5, {"K": 188.0}, 0.0),
    "C": (6, {"K": 284.0}, 0.0),
    "N": (7, {"K": 401.0}, 0.0),
    "O": (8, {"K": 532.0}, 0.0),
    "F": (9, {"K": 685.0}, 0.0),
    "Na": (11, {"K": 1072.0}, 0.0),
    "Mg": (12, {"L2,3": 51.0, "K": 1305.0}, 0.0),
    "Al": (13, {"L2,3": 73.0, "K": 1560.0}, 0.0),
    "Si": (14, {"L2,3": 99.0, "K": 1839.0}, 0.0),
    "P": (15, {"L2,3": 132.0, "K": 2146.0}, 0.0),
    "S": (16, {"L2,3": 165.0, "K": 2472.0}, 0.0),
    "Ca": (20, {"L3": 346.0, "L2": 350.0}, 4.0),
    "Sc": (21, {"L3": 402.0, "L2": 407.0}, 4.0),
    "Ti": (22, {"L3": 456.0, "L2": 462.0}, 4.0),
    "V": (23, {"L3": 513.0, "L2": 521.0}, 4.0),
    "Cr": (24, {"L3": 575.0, "L2": 584.0}, 4.0),
    "Mn": (25, {"L3": 640.0, "L2": 651.0}, 4.0),
    "Fe": (26, {"L3": 708.0, "L2": 721.0}, 3.5),
    "Co": (27, {"L3": 779.0, "L2": 794.0}, 3.0),
    "Ni": (28, {"L3": 855.0, "L2": 872.0}, 2.5),
    "Cu": (29, {"L3": 931.0, "L2": 951.0}, 0.5),
    "Zn": (30, {"L3": 1020.0, "L2": 1043.0}, 0.0),
    "Ga": (31, {"L3": 1115.0, "L2": 1142.0}, 0.0),
    "Ge": (32, {"L3": 1217.0, "L2": 1248.0}, 0.0),
    "Sr": (38, {"M4,5": 133.0, "L3": 1940.0, "L2": 2007.0}, 1.0),
    "Y": (39, {"M4,5": 157.0, "L3": 2080.0, "L2": 2156.0}, 1.0),
    "Zr": (40, {"M4,5": 180.0, "L3": 2222.0, "L2": 2307.0}, 1.0),
    "Ba": (56, {"M5": 781.0, "M4": 796.0}, 5.0),
    "La": (57, {"M5": 832.0, "M4": 849.0}, 6.0),
    "Ce": (58, {"M5": 883.0, "M4": 901.0}, 6.0),
    "Pr": (59, {"M5": 931.0, "M4": 951.0}, 6.0),
    "Nd": (60, {"M5": 978.0, "M4": 1000.0}, 6.0),
    "Sm": (62, {"M5": 1080.0, "M4": 1106.0}, 5.0),
    "Eu": (63, {"M5": 1131.0, "M4": 1161.0}, 5.0),
    "Gd": (64, {"M5": 1185.0, "M4": 1217.0}, 5.0),
    "Hf": (72, {"M5": 1662.0, "M4": 1716.0}, 0.0),
    "Ta": (73, {"M5": 1735.0, "M4": 1793.0}, 0.0),
    "W": (74, {"M5": 1809.0, "M4": 1872.0}, 0.0),
}

# Typical white-line branching ratios I(L3)/(I(L3)+I(L2)) (or M5/(M5+M4)) of common
# valence states; the statistical value 2/3 (3/5 for M) is the default otherwise.
DEFAULT_BRANCHING_RATIO: dict[str, float] = {
    "Ca": 0.62, "Sc": 0.63, "Ti": 0.66, "V": 0.68, "Cr": 0.70, "Mn": 0.72, "Fe": 0.75, "Co": 0.76,
    "Ni": 0.78, "Cu": 0.75, "Ba": 0.42, "La": 0.44, "Ce": 0.46, "Pr": 0.48, "Nd": 0.50, "Sm": 0.54,
    "Eu": 0.56, "Gd": 0.58,
}

# Statistical weight of the upper spin-orbit level: (2j+1) ratio 2p3/2 : 2p1/2 = 2:1, 3d5/2 : 3d3/2 = 3:2.
STATISTICAL_RATIO = {"L23": 2.0 / 3.0, "M45": 3.0 / 5.0}

_PAIRS = {"L3": ("L23", "L2"), "L2": ("L23", "L3"), "M5": ("M45", "M4"), "M4": ("M45", "M5")}


def _family(edge: str) -> str:
    if edge == "K":
        return "K"
    if edge in _PAIRS:
        return _PAIRS[edge][0]
    return "single"  # L2,3 or M4,5 with unresolved spin-orbit splitting


def _build_table() -> pd.DataFrame:
    rows = []
    for element, (z, edges, strength) in _ELEMENTS.items():
        for edge, onset in edges.items():
            family = _family(edge)
            rows.append({"element": element, "Z": z, "edge": edge, "onset_ev": onset, "family": family,
                         "white_line_strength": strength if family in ("L23", "M45") else 0.0})
    return pd.DataFrame(rows).sort_values("onset_ev", kind="stable").reset_index(drop=True)


EDGES: pd.DataFrame = _build_table()
"""Every tabulated edge: element, Z, edge, onset_ev (eV), family, white_line_strength."""


def check_element(element: str) -> str:
    """``element`` when it is in the table, else InputError naming the known ones."""
    if not isinstance(element, str) or element not in _ELEMENTS:
        known = ", ".join(sorted(_ELEMENTS, key=lambda e: _ELEMENTS[e][0]))
        raise InputError(f"unknown element {element!r} for the EELS edge table; known elements: {known}")
    return element


def atomic_number(element: str) -> int:
    """Atomic number Z of a tabulated element."""
    return _ELEMENTS[check_element(element)][0]


def onset(element: str, edge: str) -> float:
    """Tabulated onset energy (eV) of ``element``'s ``edge`` (e.g. ``onset("Ti", "L3") == 456``).

    Raises
    ------
    InputError
        When the element or that edge of it is not tabulated.
    """
    edges = _ELEMENTS[check_element(element)][1]
    if edge not in edges:
        raise InputError(f"{element} has no tabulated {edge!r} edge; tabulated: {', '.join(edges)}")
    return edges[edge]


def partner(edge: str) -> str | None:
    """The spin-orbit partner of an edge (L3 <-> L2, M5 <-> M4), or None."""
    return _PAIRS[edge][1] if edge in _PAIRS else None


def edges_of(elements, e_min_ev: float = -np.inf, e_max_ev: float = np.inf) -> pd.DataFrame:
    """Tabulated edges of ``elements`` whose onsets lie in ``[e_min_ev, e_max_ev]``, by onset.

    Parameters
    ----------
    elements : iterable of str
        Element symbols; each must be tabulated.
    e_min_ev, e_max_ev : float
        Energy-loss window in eV.
    """
    if isinstance(elements, str):
        elements = [elements]
    elements = [check_element(e) for e in elements]
    sel = EDGES["element"].isin(elements) & (EDGES["onset_ev"] >= e_min_ev) & (EDGES["onset_ev"] <= e_max_ev)
    return EDGES[sel].reset_index(drop=True)


def branching_ratio(element: str) -> float:
    """Default white-line branching ratio I(upper)/(I(upper)+I(lower)) of ``element``."""
    check_element(element)
    if element in DEFAULT_BRANCHING_RATIO:
        return DEFAULT_BRANCHING_RATIO[element]
    families = {_family(e) for e in _ELEMENTS[element][1]}
    return STATISTICAL_RATIO["M45"] if "M45" in families and "L23" not in families else STATISTICAL_RATIO["L23"]


__all__ = ["DEFAULT_BRANCHING_RATIO", "EDGES", "STATISTICAL_RATIO", "atomic_number", "branching_ratio",
           "check_element", "edges_of", "onset", "partner"]
