"""X-ray emission lines of the elements Be..U (Z = 4..92) for EDS: energies and relative weights.

The table holds, for each element, the principal lines that EDS detectors resolve between
0.1 and 25 keV: K-alpha (``Ka``, the Ka1 energy; Ka2 lies a few eV below and is not
resolved up to Z ~ 40), K-beta (``Kb``, Kb1), L-alpha (``La``, La1), L-beta1 and 2 (``Lb1``,
``Lb2``), L-gamma1 (``Lg1``), M-alpha (``Ma``, Ma1), M-beta (``Mb``) and M-gamma (``Mg``).

Sources. Energies (keV): xraylib 4.3 ``LineEnergy`` (experimental transition energies of
Bearden 1967, Rev. Mod. Phys. 39, 78, and Deslattes et al. 2003, Rev. Mod. Phys. 75, 35),
checked line by line against the NIST SRD 128 values compiled by Chantler et al. (2005) as
eXSpy 0.3.2 tabulates them: all agree within 5 eV except light-lanthanide M lines, where
the NIST compilation lists theoretical M5-N7 energies 30-90 eV below the observed EDS peaks.
There, and for Be Ka (108.5 eV), La Ma (833 eV) and Eu Ma (1131 eV), which xraylib lacks,
the X-ray Data Booklet (LBNL, Table 1-2, from Bearden) is used. Weights: approximate
relative line weights of the EPQ library (N. Ritchie, NIST DTSA-II) as eXSpy tabulates
them, normalised within each family (K, L, M) to 1 for its principal line (Ka, La, Ma).
Weights compare lines of one family only; the ratio between families depends on the beam
energy, the specimen and the detector.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import InputError

# symbol, Z | line energy_keV weight | ...
_TABLE = """
Be  4 | Ka 0.1085 1
B   5 | Ka 0.1833 1
C   6 | Ka 0.2774 1
N   7 | Ka 0.3924 1
O   8 | Ka 0.5249 1
F   9 | Ka 0.6768 1
Ne 10 | Ka 0.8485 1 | Kb 0.8669 0.01
Na 11 | Ka 1.0410 1 | Kb 1.0721 0.01
Mg 12 | Ka 1.2536 1 | Kb 1.3050 0.01
Al 13 | Ka 1.4869 1 | Kb 1.5541 0.0132
Si 14 | Ka 1.7400 1 | Kb 1.8359 0.0278
P  15 | Ka 2.0102 1 | Kb 2.1356 0.0498
S  16 | Ka 2.3078 1 | Kb 2.4640 0.0653
Cl 17 | Ka 2.6224 1 | Kb 2.8156 0.0838
Ar 18 | Ka 2.9574 1 | Kb 3.1902 0.102
K  19 | Ka 3.3138 1 | Kb 3.5896 0.104
Ca 20 | Ka 3.6917 1 | Kb 4.0127 0.112
Sc 21 | Ka 4.0906 1 | Kb 4.4605 0.128 | La 0.3956 0.308
Ti 22 | Ka 4.5109 1 | Kb 4.9318 0.117 | La 0.4518 0.694
V  23 | Ka 4.9522 1 | Kb 5.4273 0.122 | La 0.5107 1
Cr 24 | Ka 5.4147 1 | Kb 5.9467 0.134 | La 0.5722 1
Mn 25 | Ka 5.8987 1 | Kb 6.4904 0.125 | La 0.6370 1
Fe 26 | Ka 6.4039 1 | Kb 7.0580 0.127 | La 0.7045 1
Co 27 | Ka 6.9303 1 | Kb 7.6494 0.128 | La 0.7757 1
Ni 28 | Ka 7.4781 1 | Kb 8.2647 0.128 | La 0.8511 1 | Lb1 0.8683 0.168
Cu 29 | Ka 8.0478 1 | Kb 8.9053 0.132 | La 0.9295 1 | Lb1 0.9494 0.032
Zn 30 | Ka 8.6389 1 | Kb 9.5720 0.126 | La 1.0116 1 | Lb1 1.0347 0.168
Ga 31 | Ka 9.2517 1 | Kb 10.2642 0.129 | La 1.0980 1 | Lb1 1.1249 0.167
Ge 32 | Ka 9.8864 1 | Kb 10.9823 0.132 | La 1.1880 1 | Lb1 1.2191 0.167
As 33 | Ka 10.5436 1 | Kb 11.7262 0.146 | La 1.2819 1 | Lb1 1.3174 0.167
Se 34 | Ka 11.2220 1 | Kb 12.4959 0.15 | La 1.3791 1 | Lb1 1.4195 0.388
Br 35 | Ka 11.9238 1 | Kb 13.2922 0.153 | La 1.4809 1 | Lb1 1.5259 0.392
Kr 36 | Ka 12.6507 1 | Kb 14.1111 0.154 | La 1.5811 1 | Lb1 1.6322 0.39
Rb 37 | Ka 13.3953 1 | Kb 14.9612 0.156 | La 1.6941 1 | Lb1 1.7521 0.391
Sr 38 | Ka 14.1650 1 | Kb 15.8355 0.15 | La 1.8065 1 | Lb1 1.8718 0.38
Y  39 | Ka 14.9584 1 | Kb 16.7381 0.15 | La 1.9226 1 | Lb1 1.9959 0.391 | Lb2 2.0776 0.00739 | Lg1 2.1531 0.00264
Zr 40 | Ka 15.7753 1 | Kb 17.6671 0.15 | La 2.0423 1 | Lb1 2.1243 0.379 | Lb2 2.2193 0.0177 | Lg1 2.3037 0.006
Nb 41 | Ka 16.6151 1 | Kb 18.6226 0.15 | La 2.1659 1 | Lb1 2.2573 0.325 | Lb2 2.3673 0.033 | Lg1 2.4615 0.00975
Mo 42 | Ka 17.4793 1 | Kb 19.6072 0.15 | La 2.2932 1 | Lb1 2.3948 0.327 | Lb2 2.5184 0.0451 | Lg1 2.6233 0.0134
Tc 43 | Ka 18.3671 1 | Kb 20.6190 0.15 | La 2.4240 1 | Lb1 2.5368 0.33 | Lb2 2.6749 0.0584 | Lg1 2.7912 0.0174
Ru 44 | Ka 19.2793 1 | Kb 21.6566 0.15 | La 2.5585 1 | Lb1 2.6833 0.33 | Lb2 2.8359 0.0726 | Lg1 2.9649 0.0218
Rh 45 | Ka 20.2161 1 | Kb 22.7237 0.15 | La 2.6968 1 | Lb1 2.8344 0.335 | Lb2 3.0013 0.0854 | Lg1 3.1436 0.0262
Pd 46 | Ka 21.1770 1 | Kb 23.8188 0.15 | La 2.8386 1 | Lb1 2.9903 0.344 | Lb2 3.1718 0.103 | Lg1 3.3288 0.0326
Ag 47 | Ka 22.1629 1 | Kb 24.9426 0.15 | La 2.9844 1 | Lb1 3.1509 0.352 | Lb2 3.3478 0.117 | Lg1 3.5204 0.0374
Cd 48 | Ka 23.1737 1 | La 3.1338 1 | Lb1 3.3165 0.357 | Lb2 3.5282 0.129 | Lg1 3.7177 0.0416
In 49 | Ka 24.2098 1 | La 3.2870 1 | Lb1 3.4872 0.362 | Lb2 3.7139 0.137 | Lg1 3.9218 0.0454
Sn 50 | La 3.4440 1 | Lb1 3.6628 0.435 | Lb2 3.9049 0.147 | Lg1 4.1322 0.058
Sb 51 | La 3.6047 1 | Lb1 3.8435 0.428 | Lb2 4.1008 0.156 | Lg1 4.3490 0.0606
Te 52 | La 3.7693 1 | Lb1 4.0295 0.432 | Lb2 4.3016 0.163 | Lg1 4.5722 0.0638
I  53 | La 3.9377 1 | Lb1 4.2208 0.431 | Lb2 4.5075 0.171 | Lg1 4.8025 0.067
Xe 54 | La 4.1055 1 | Lb1 4.4143 0.422 | Lb2 4.7147 0.177 | Lg1 5.0342 0.0685
Cs 55 | La 4.2864 1 | Lb1 4.6199 0.43 | Lb2 4.9354 0.196 | Lg1 5.2806 0.0722
Ba 56 | La 4.4663 1 | Lb1 4.8275 0.43 | Lb2 5.1571 0.191 | Lg1 5.5311 0.0749
La 57 | La 4.6510 1 | Lb1 5.0421 0.426 | Lb2 5.3838 0.196 | Lg1 5.7917 0.0766 | Ma 0.8330 1 | Mg 1.0245 0.4
Ce 58 | La 4.8401 1 | Lb1 5.2629 0.43 | Lb2 5.6134 0.194 | Lg1 6.0542 0.0764 | Ma 0.8832 1 | Mb 0.9012 0.91 | Mg 1.0754 0.5
Pr 59 | La 5.0333 1 | Lb1 5.4893 0.429 | Lb2 5.8511 0.195 | Lg1 6.3272 0.0769 | Ma 0.9290 1 | Mb 0.9491 0.85 | Mg 1.1290 0.6
Nd 60 | La 5.2302 1 | Lb1 5.7216 0.427 | Lb2 6.0904 0.196 | Lg1 6.6040 0.0771 | Ma 0.9762 1 | Mb 0.9984 0.99 | Mg 1.1799 0.625
Pm 61 | La 5.4324 1 | Lb1 5.9613 0.431 | Lb2 6.3389 0.196 | Lg1 6.8924 0.0784 | Ma 1.0229 1 | Mb 1.0475 0.89 | Mg 1.2365 0.4
Sm 62 | La 5.6360 1 | Lb1 6.2058 0.435 | Lb2 6.5872 0.198 | Lg1 7.1828 0.0795 | Ma 1.0747 1 | Mb 1.1005 0.88 | Mg 1.2908 0.26
Eu 63 | La 5.8460 1 | Lb1 6.4565 0.439 | Lb2 6.8437 0.199 | Lg1 7.4839 0.0806 | Ma 1.1310 1 | Mb 1.1577 0.87 | Mg 1.3474 0.26
Gd 64 | La 6.0576 1 | Lb1 6.7131 0.441 | Lb2 7.1023 0.201 | Lg1 7.7898 0.0821 | Ma 1.1851 1 | Mb 1.2171 0.88 | Mg 1.4035 0.261
Tb 65 | La 6.2728 1 | Lb1 6.9766 0.441 | Lb2 7.3670 0.199 | Lg1 8.1046 0.0817 | Ma 1.2386 1 | Mb 1.2724 0.78 | Mg 1.4643 0.262
Dy 66 | La 6.4952 1 | Lb1 7.2481 0.444 | Lb2 7.6359 0.2 | Lg1 8.4264 0.0829 | Ma 1.2907 1 | Mb 1.3283 0.76 | Mg 1.5214 0.0851
Ho 67 | La 6.7197 1 | Lb1 7.5263 0.451 | Lb2 7.9101 0.236 | Lg1 8.7568 0.0845 | Ma 1.3477 1 | Mb 1.3878 0.594 | Mg 1.5802 0.142
Er 68 | La 6.9486 1 | Lb1 7.8110 0.453 | Lb2 8.1903 0.201 | Lg1 9.0876 0.0849 | Ma 1.4050 1 | Mb 1.4490 0.594 | Mg 1.6442 0.0851
Tm 69 | La 7.1803 1 | Lb1 8.1023 0.458 | Lb2 8.4684 0.201 | Lg1 9.4373 0.0862 | Ma 1.4624 1 | Mb 1.5093 0.594 | Mg 1.7049 0.0851
Yb 70 | La 7.4158 1 | Lb1 8.4019 0.462 | Lb2 8.7587 0.202 | Lg1 9.7801 0.0873 | Ma 1.5215 1 | Mb 1.5700 0.594 | Mg 1.7649 0.0851
Lu 71 | La 7.6556 1 | Lb1 8.7092 0.47 | Lb2 9.0491 0.204 | Lg1 10.1438 0.0897 | Ma 1.5816 1 | Mb 1.6325 0.594 | Mg 1.8286 0.0851
Hf 72 | La 7.8990 1 | Lb1 9.0230 0.462 | Lb2 9.3470 0.205 | Lg1 10.5156 0.0897 | Ma 1.6446 1 | Mb 1.6993 0.594 | Mg 1.8939 0.0851
Ta 73 | La 8.1460 1 | Lb1 9.3429 0.462 | Lb2 9.6518 0.208 | Lg1 10.8948 0.0907 | Ma 1.7095 1 | Mb 1.7657 0.594 | Mg 1.9647 0.0851
W  74 | La 8.3976 1 | Lb1 9.6724 0.368 | Lb2 9.9614 0.214 | Lg1 11.2852 0.0566 | Ma 1.7734 1 | Mb 1.8337 0.594 | Mg 2.0356 0.0851
Re 75 | La 8.6524 1 | Lb1 10.0098 0.441 | Lb2 10.2751 0.212 | Lg1 11.6850 0.0886 | Ma 1.8372 1 | Mb 1.9008 0.594 | Mg 2.1071 0.0851
Os 76 | La 8.9108 1 | Lb1 10.3542 0.432 | Lb2 10.5981 0.215 | Lg1 12.0956 0.0877 | Ma 1.9091 1 | Mb 1.9770 0.594 | Mg 2.1844 0.0851
Ir 77 | La 9.1748 1 | Lb1 10.7080 0.417 | Lb2 10.9203 0.216 | Lg1 12.5127 0.0854 | Ma 1.9794 1 | Mb 2.0521 0.594 | Mg 2.2558 0.0851
Pt 78 | La 9.4427 1 | Lb1 11.0711 0.409 | Lb2 11.2500 0.218 | Lg1 12.9419 0.0845 | Ma 2.0500 1 | Mb 2.1270 0.594 | Mg 2.3315 0.0851
Au 79 | La 9.7130 1 | Lb1 11.4425 0.402 | Lb2 11.5848 0.219 | Lg1 13.3816 0.0841 | Ma 2.1216 1 | Mb 2.2033 0.594 | Mg 2.4091 0.0851
Hg 80 | La 9.9890 1 | Lb1 11.8238 0.395 | Lb2 11.9246 0.222 | Lg1 13.8302 0.0832 | Ma 2.1950 1 | Mb 2.2809 0.641 | Mg 2.4878 0.0851
Tl 81 | La 10.2682 1 | Lb1 12.2128 0.391 | Lb2 12.2713 0.223 | Lg1 14.2913 0.083 | Ma 2.2705 1 | Mb 2.3620 0.641 | Mg 2.5704 0.218
Pb 82 | La 10.5512 1 | Lb1 12.6144 0.384 | Lb2 12.6223 0.224 | Lg1 14.7648 0.0826 | Ma 2.3477 1 | Mb 2.4444 0.641 | Mg 2.6535 0.218
Bi 83 | La 10.8390 1 | Lb1 13.0235 0.4 | Lb2 12.9786 0.228 | Lg1 15.2475 0.08 | Ma 2.4225 1 | Mb 2.5252 0.641 | Mg 2.7369 0.218
Po 84 | La 11.1300 1 | Lb1 13.4430 0.385 | Lb2 13.3410 0.229 | Lg1 15.7420 0.08 | Mb 2.6100 0.641 | Mg 2.8240 0.218
At 85 | La 11.4260 1 | Lb1 13.8750 0.38 | Lb2 13.7080 0.231 | Lg1 16.2490 0.08 | Mb 2.6950 0.641 | Mg 2.9100 0.218
Rn 86 | La 11.7260 1 | Lb1 14.3160 0.385 | Lb2 14.0800 0.233 | Lg1 16.7700 0.08 | Mb 2.7830 0.641 | Mg 2.9990 0.218
Fr 87 | La 12.0310 1 | Lb1 14.7700 0.383 | Lb2 14.4580 0.234 | Lg1 17.3020 0.08 | Mb 2.8710 0.641 | Mg 3.0890 0.218
Ra 88 | La 12.3390 1 | Lb1 15.2360 0.4 | Lb2 14.8410 0.236 | Lg1 17.8480 0.08 | Mb 2.9610 0.641 | Mg 3.1820 0.335
Ac 89 | La 12.6510 1 | Lb1 15.7110 0.4 | Lb2 15.2300 0.236 | Lg1 18.4050 0.08 | Ma 2.9120 1 | Mb 3.0540 0.641 | Mg 3.2750 0.335
Th 90 | La 12.9680 1 | Lb1 16.2020 0.4 | Lb2 15.6230 0.236 | Lg1 18.9800 0.08 | Ma 2.9970 1 | Mb 3.1470 0.641 | Mg 3.3690 0.335
Pa 91 | La 13.2910 1 | Lb1 16.7080 0.4 | Lb2 16.0250 0.236 | Lg1 19.5710 0.08 | Ma 3.0870 1 | Mb 3.2400 0.641 | Mg 3.4660 0.335
U  92 | La 13.6180 1 | Lb1 17.2220 0.4 | Lb2 16.4310 0.236 | Lg1 20.1690 0.08 | Ma 3.1710 1 | Mb 3.3370 0.609 | Mg 3.5670 0.335
"""

FAMILIES = ("K", "L", "M")
PRINCIPAL = {"K": "Ka", "L": "La", "M": "Ma"}
COLUMNS = ["element", "Z", "line", "family", "energy_keV", "weight"]
# Spellings users write for the same line (Ka1, K-alpha, ...) -> the table's name.
_ALIASES = {"ka1": "Ka", "ka": "Ka", "kalpha": "Ka", "kb1": "Kb", "kb": "Kb", "kbeta": "Kb",
            "la1": "La", "la": "La", "lalpha": "La", "lb1": "Lb1", "lb2": "Lb2", "lg1": "Lg1", "lg": "Lg1",
            "ma1": "Ma", "ma": "Ma", "malpha": "Ma", "mb": "Mb", "mbeta": "Mb", "mg": "Mg", "mgamma": "Mg"}


class XrayLine(NamedTuple):
    """One tabulated line: energy in keV, weight relative to its family's principal line."""

    element: str
    line: str
    energy_keV: float
    weight: float


def _parse(text: str) -> pd.DataFrame:
    rows = []
    for raw in text.strip().splitlines():
        head, *fields = raw.split("|")
        symbol, z = head.split()
        for field in fields:
            line, energy, weight = field.split()
            rows.append((symbol, int(z), line, line[0], float(energy), float(weight)))
    return pd.DataFrame(rows, columns=COLUMNS)


LINES = _parse(_TABLE)
ELEMENTS = tuple(dict.fromkeys(LINES["element"]))
_BY_ELEMENT = {el: {r.line: XrayLine(el, r.line, r.energy_keV, r.weight) for r in grp.itertuples()}
               for el, grp in LINES.groupby("element", sort=False)}
_CANONICAL = {el.lower(): el for el in ELEMENTS}


def check_element(element) -> str:
    """The element symbol as tabulated (``"ni"`` -> ``"Ni"``), else InputError."""
    key = str(element).strip().lower() if isinstance(element, str) else ""
    if key not in _CANONICAL:
        raise InputError(f"unknown element {element!r}; give a chemical symbol from Be to U (e.g. 'Ni', 'Au')")
    return _CANONICAL[key]


def check_line(element, line) -> tuple[str, str]:
    """(element, line) as tabulated, else InputError naming the element's lines."""
    el = check_element(element)
    name = _ALIASES.get(str(line).strip().lower().replace("-", "").replace("_", ""), str(line))
    if name not in _BY_ELEMENT[el]:
        raise InputError(f"{el} has no tabulated line {line!r} between 0.1 and 25 keV; "
                         f"its lines are {', '.join(_BY_ELEMENT[el])}")
    return el, name


def parse_line(label) -> tuple[str, str]:
    """``"Ni_Ka"`` (or ``"Ni Ka"``) -> ``("Ni", "Ka")``, checked against the table."""
    parts = str(label).replace("_", " ").split()
    if len(parts) != 2:
        raise InputError(f"a line is written 'Element_Line', e.g. 'Ni_Ka' or 'Au_Ma', got {label!r}")
    return check_line(*parts)


def xray_lines(element) -> dict[str, XrayLine]:
    """The tabulated lines of one element, by name (``"Ka"``, ``"La"``, ...), lowest family first.

    Raises
    ------
    InputError
        ``element`` is not a symbol from Be to U.
    """
    return dict(_BY_ELEMENT[check_element(element)])


def line_energy(element, line) -> float:
    """Energy (keV) of one line, e.g. ``line_energy("Cu", "Ka")`` -> 8.0478."""
    el, name = check_line(element, line)
    return _BY_ELEMENT[el][name].energy_keV


def line_table(elements=None) -> pd.DataFrame:
    """The table as a DataFrame (element, Z, line, family, energy_keV, weight), optionally for some elements."""
    if elements is None:
        return LINES.copy()
    wanted = [check_element(e) for e in ([elements] if isinstance(elements, str) else elements)]
    return LINES[LINES["element"].isin(wanted)].reset_index(drop=True)


def lines_near(energy_keV, tolerance_keV: float = 0.05, elements=None, *, min_weight: float = 0.0) -> pd.DataFrame:
    """Lines within ``tolerance_keV`` of an energy, closest first, with their offset ``delta_keV``.

    Parameters
    ----------
    energy_keV : float
        Energy (keV) to look up, e.g. a peak position.
    tolerance_keV : float
        Half-width (keV) of the search interval.
    elements : sequence of str, optional
        Restrict the search to these elements.
    min_weight : float
        Ignore lines weaker than this (relative to their family's principal line).
    """
    try:
        e, tol, wmin = float(energy_keV), float(tolerance_keV), float(min_weight)
    except (TypeError, ValueError):
        raise InputError(f"energy_keV, tolerance_keV and min_weight must be numbers, got "
                         f"{energy_keV!r}, {tolerance_keV!r}, {min_weight!r}") from None
    if not (np.isfinite(e) and np.isfinite(tol) and tol >= 0):
        raise InputError(f"give a finite energy (keV) and a tolerance >= 0, got {energy_keV!r}, {tolerance_keV!r}")
    table = line_table(elements)
    delta = table["energy_keV"] - e
    hits = table[(delta.abs() <= tol) & (table["weight"] >= wmin)].assign(delta_keV=delta)
    return hits.sort_values("delta_keV", key=np.abs).reset_index(drop=True)


def main_line(element, e_min_keV: float = 0.1, e_max_keV: float = 20.0) -> str | None:
    """The line that identifies ``element`` in a spectrum from ``e_min_keV`` to ``e_max_keV``.

    Ka when it lies inside the range, else La, else Ma: the highest-energy family in range,
    because the fluorescence yield grows with the line energy and low-energy lines are the
    most absorbed in the specimen and the detector window. None when no family fits.
    """
    lines = _BY_ELEMENT[check_element(element)]
    for family in FAMILIES:
        name = PRINCIPAL[family]
        if name in lines and e_min_keV <= lines[name].energy_keV <= e_max_keV:
            return name
    return None


__all__ = ["COLUMNS", "ELEMENTS", "FAMILIES", "LINES", "PRINCIPAL", "XrayLine", "check_element", "check_line",
           "line_energy", "line_table", "lines_near", "main_line", "parse_line", "xray_lines"]
