"""Host / dopant / vacancy classes of atom columns from a Gaussian mixture on their intensity.

Per sublattice, the normalised intensity statistic (see
:func:`atomine.atoms.intensity.normalise_by_neighbours`) is modelled as a mixture of a
host component and, where the data support them, a dopant and a vacancy component.
Which components exist is decided by BIC among the candidate models (so a sublattice
without dopants is not split in two), the posterior probability of the winning model
gives ``p_cls``, and atoms whose posterior stays below ``min_probability`` are
``"unknown"`` rather than forced into a class. There is no hard user threshold.

An optional Z^n prior (HAADF intensity ~ sum over the column's atoms of Z^n, n ~ 1.7)
initialises the component means at the expected ratio to the host.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from ..errors import InputError
from .intensity import check_table

_CLASSES = ("host", "dopant", "vacancy")
_TAIL_Z = 4.0  # robust z beyond which a value seeds a non-host component when no prior is given
_SD_FLOOR = 0.2  # component sd floor, in robust sd of the data: no zero-width class around one outlier


def _column_weight(z, exponent: float) -> float:
    zs = np.atleast_1d(np.asarray(z, dtype=np.float64))
    if zs.size == 0 or not np.isfinite(zs).all() or (zs < 0).any():
        raise InputError(f"z_prior values must be non-negative atomic numbers (one per atom in the column), got {z!r}")
    return float((zs ** exponent).sum())


def expected_ratios(z_prior: Mapping, exponent: float = 1.7) -> dict[str, float]:
    """Expected intensity ratio of each class to the host from a Z^n model.

    Parameters
    ----------
    z_prior : mapping class -> Z or sequence of Z
        Atomic numbers of the atoms in a column of that class, e.g. ``{"host": [38] * 10,
        "dopant": [57] * 3 + [38] * 7}`` (3 La in a 10-atom Sr column); one number = one atom.
    exponent : float
        n in I ~ sum Z^n (about 1.7 for HAADF, 2 for Rutherford scattering).

    Returns
    -------
    dict
        class -> sum Z^n / sum Z_host^n.
    """
    if not isinstance(z_prior, Mapping) or "host" not in z_prior:
        raise InputError("z_prior must map class names to atomic numbers and include 'host'")
    bad = [k for k in z_prior if k not in _CLASSES]
    if bad:
        raise InputError(f"z_prior has unknown class(es) {bad}; use {', '.join(_CLASSES)}")
    if not (np.isfinite(exponent) and 0 < exponent <= 4):
        raise InputError(f"exponent must be in (0, 4], got {exponent!r}")
    host = _column_weight(z_prior["host"], exponent)
    if host == 0:
        raise InputError("z_prior['host'] has zero scattering weight; give the host column's atomic numbers")
    return {k: _column_weight(v, exponent) / host for k, v in z_prior.items()}


#: A dopant component more than twice as wide as the host must sit at least this many (host sd +
#: dopant sd) from it. Substituted columns image like host columns (similar widths); the broad
#: components that fit a skewed host tail measured 2.6-4.7 host sds wide and 0.8-1.4 apart.
_MAX_WIDTH_RATIO = 2.0
_MIN_RESOLUTION = 1.5


def _candidates(z, classes, ratios, host_level, scale, dopant_side, vacancy_level):
    """Initial means (robust z units) of the non-host components that could be present."""
    init = {}
    if "dopant" in classes:
        if ratios and "dopant" in ratios:
            init["dopant"] = (ratios["dopant"] * host_level - host_level) / scale
        else:
            tail = z[z > _TAIL_Z] if dopant_side == "brighter" else z[z < -_TAIL_Z]
            sign = 1.0 if dopant_side == "brighter" else -1.0
            # A rare dopant shows as a tail; a common one (tens of %) shifts the median and
            # overlaps it, so it is also sought a few host sds away from the median.
            init["dopant"] = float(np.median(tail)) if tail.size else sign * 3.0
    if "vacancy" in classes:
        if ratios and "vacancy" in ratios:
            init["vacancy"] = (ratios["vacancy"] * host_level - host_level) / scale
        elif vacancy_level is not None:
            init["vacancy"] = (float(vacancy_level) - host_level) / scale
        else:
            tail = z[z < -_TAIL_Z] if dopant_side == "brighter" else z[z > _TAIL_Z]
            if tail.size:
                init["vacancy"] = float(np.median(tail))
    return init


def _plausible(gm, labels, vac_z) -> bool:
    """The host is a sublattice's majority species; a dopant class stands clear of it; a vacancy sits
    nearer the empty level than the host."""
    h = labels.index("host")
    w, mu = gm.weights_, gm.means_[:, 0]
    if any(w[k] > w[h] for k in range(len(labels)) if k != h):
        return False
    if "dopant" in labels:
        d = labels.index("dopant")
        sd = np.sqrt(gm.covariances_[:, 0, 0])
        # a broad component hugging the host is the host's own skewed tail (e.g. ABF dips of
        # columns fitted at the width cap), not a second species, which images like the host
        if sd[d] > _MAX_WIDTH_RATIO * sd[h] and abs(mu[d] - mu[h]) < _MIN_RESOLUTION * (sd[d] + sd[h]):
            return False
    if "vacancy" in labels and vac_z is not None:
        v = labels.index("vacancy")
        return abs(mu[v] - vac_z) < abs(mu[h] - vac_z)
    return True


def _fit_group(x, classes, ratios, dopant_side, vacancy_level, random_state):
    """Best mixture by BIC for one group; returns (labels per component, fitted model, info)."""
    host_level = float(np.median(x))
    scale = 1.4826 * float(np.median(np.abs(x - host_level)))
    if not scale > 0:
        scale = float(np.std(x)) or 1.0
    z = (x - host_level) / scale
    init = _candidates(z, classes, ratios, host_level, scale, dopant_side, vacancy_level)
    vac_z = None if vacancy_level is None else (float(vacancy_level) - host_level) / scale
    order = ("vacancy", "host", "dopant") if dopant_side == "brighter" else ("vacancy", "dopant", "host")
    best = None
    bics = {}
    names = list(init)
    for r in range(len(names) + 1):
        for extra in itertools.combinations(names, r):
            # Components are named by the rank of their means (vacancy darkest, then host and
            # dopant on their sides), so a fit started anywhere means the same thing.
            labels = tuple(c for c in order if c == "host" or c in extra)
            means = np.array([0.0 if c == "host" else init[c] for c in labels])[:, None]
            fits = []
            for kw in ({"means_init": means, "precisions_init": np.ones((len(labels), 1, 1))}, {"n_init": 2}):
                if len(labels) == 1 and "n_init" in kw:
                    continue
                with warnings.catch_warnings():
                    # degenerate data (repeated values) just lose the BIC comparison
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    gm = GaussianMixture(len(labels), covariance_type="full", reg_covar=_SD_FLOOR ** 2,
                                         max_iter=500, random_state=random_state, **kw).fit(z[:, None])
                rank = np.argsort(gm.means_[:, 0])
                gm.means_, gm.covariances_ = gm.means_[rank], gm.covariances_[rank]
                gm.weights_, gm.precisions_cholesky_ = gm.weights_[rank], gm.precisions_cholesky_[rank]
                gm.precisions_ = gm.precisions_[rank]
                if _plausible(gm, labels, vac_z):
                    fits.append((gm.score(z[:, None]), gm))
            if not fits:
                continue
            gm = max(fits, key=lambda f: f[0])[1]
            bic = float(gm.bic(z[:, None]))
            bics["+".join(labels)] = bic
            if best is None or bic < best[2]:
                best = (labels, gm, bic)
    labels, gm, _ = best
    sd = np.sqrt(gm.covariances_[:, 0, 0])
    means = host_level + scale * gm.means_[:, 0]
    h = labels.index("host")
    info = {
        "model": list(labels), "means": means.tolist(), "sds": (scale * sd).tolist(),
        "weights": gm.weights_.tolist(), "bic": bics,
        "separation": {lab: float(abs(gm.means_[k, 0] - gm.means_[h, 0]) / sd[h]) for k, lab in enumerate(labels)
                       if k != h},
    }
    return labels, gm, (host_level, scale), info


def classify_atoms(table: pd.DataFrame, *, column: str = "intensity_norm",
                   classes: Sequence[str] = ("host", "dopant"), vacancy: bool = True,
                   z_prior: Mapping | None = None, exponent: float = 1.7, dopant_side: str = "brighter",
                   vacancy_level: float | None = 0.0, min_probability: float = 0.6, by: str | None = "sublattice",
                   sublattices: Sequence[int] | None = None, min_atoms: int = 20,
                   random_state: int | None = 0) -> pd.DataFrame:
    """Classify atom columns as host, dopant, vacancy or unknown with posterior probabilities.

    Parameters
    ----------
    table : pandas.DataFrame
        Atom table with ``column`` and (unless ``by`` is None) ``by``.
    column : str
        Per-atom statistic; by default the neighbour-normalised intensity (host ~ 1).
    classes : sequence of str
        Classes the mixture may use besides vacancy: ``("host",)`` or ``("host", "dopant")``.
    vacancy : bool
        Allow a vacancy component (near-background columns).
    z_prior : mapping, optional
        Expected column composition per class (see :func:`expected_ratios`), the same for every
        group, or a mapping group -> such a mapping. Initialises the component means at
        ``ratio x host level`` (a ratio-normalised statistic is assumed).
    exponent : float
        Z exponent of the prior.
    dopant_side : {"brighter", "darker"}
        Without a prior: on which side of the host the dopant component is sought.
    vacancy_level : float or None
        Expected statistic of an empty column (0 for a background-subtracted ratio); None =
        seek the vacancy component in the tail opposite the dopant.
    min_probability : float
        Atoms whose largest posterior is below this are ``"unknown"``. The default 0.6 leaves
        only near coin-flips unknown: at 5 sd separation a stricter 0.8 already costs about
        0.02 in dopant F1 (rare dopants sit close to the Bayes limit there).
    by : str or None
        Grouping column (one mixture per sublattice).
    sublattices : sequence of int, optional
        Groups to classify; others keep their ``cls`` (or get ``"unknown"``). Default all.
    min_atoms : int
        Groups with fewer finite values are ``"unknown"`` (too few to fit a mixture).
    random_state : int, optional

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``cls`` and ``p_cls``; ``attrs["classification"]`` holds per
        group the chosen model, component means, sds, weights, BIC of every candidate and the
        separation of each component from the host in host standard deviations.
    """
    classes = tuple(classes)
    if not classes or classes[0] != "host" or any(c not in ("host", "dopant") for c in classes):
        raise InputError(f"classes must be ('host',) or ('host', 'dopant'), got {classes!r}; "
                         "vacancies are switched with vacancy=True")
    if dopant_side not in ("brighter", "darker"):
        raise InputError(f"dopant_side must be 'brighter' or 'darker', got {dopant_side!r}")
    if not 0.0 <= float(min_probability) < 1.0:
        raise InputError(f"min_probability must be in [0, 1), got {min_probability!r}")
    if int(min_atoms) < 5:
        raise InputError(f"min_atoms must be >= 5 (a mixture needs data), got {min_atoms!r}")
    check_table(table, (by,) if by is not None else ())
    if column not in table:
        raise InputError(f"table has no column {column!r}; run column_intensity and normalise_by_neighbours first")
    allowed = classes + (("vacancy",) if vacancy else ())
    x_all = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
    groups = table[by].to_numpy() if by is not None else np.zeros(len(table), dtype=np.int64)
    priors = _prior_per_group(z_prior, exponent, pd.unique(groups))

    cls = (table["cls"].astype(object).to_numpy().copy() if "cls" in table
           else np.full(len(table), "unknown", dtype=object))
    p_cls = (pd.to_numeric(table["p_cls"], errors="coerce").to_numpy(np.float64).copy() if "p_cls" in table
             else np.full(len(table), np.nan))
    report = {}
    for g in pd.unique(groups):
        if sublattices is not None and g not in set(sublattices):
            continue
        idx = np.flatnonzero(groups == g)
        ok = np.isfinite(x_all[idx])
        cls[idx], p_cls[idx] = "unknown", np.nan
        if ok.sum() < int(min_atoms):
            report[_key(g)] = {"model": [], "reason": f"only {int(ok.sum())} finite values (< {min_atoms})"}
            continue
        x = x_all[idx[ok]]
        ratios = priors.get(g)
        side = dopant_side if not ratios or "dopant" not in ratios else (
            "brighter" if ratios["dopant"] >= 1 else "darker")
        labels, gm, (level, scale), info = _fit_group(x, allowed, ratios, side, vacancy_level, random_state)
        post = gm.predict_proba(((x - level) / scale)[:, None])
        best = post.argmax(axis=1)
        p = post.max(axis=1)
        lab = np.asarray(labels, dtype=object)[best]
        cls[idx[ok]] = np.where(p >= float(min_probability), lab, "unknown")
        p_cls[idx[ok]] = p
        report[_key(g)] = info
    out = table.copy()
    out["cls"] = pd.Series(cls, index=table.index, dtype=object).astype(str)
    out["p_cls"] = p_cls
    out.attrs["classification"] = report
    return out


def classify_host_referenced(table: pd.DataFrame, column: str = "intensity", *, how: str = "ratio",
                             iterations: int = 10, start: str = "neighbours", by: str | None = "sublattice",
                             **classify) -> pd.DataFrame:
    """Normalise by neighbours and classify, then repeat with only the host neighbours as reference.

    :func:`normalise_by_neighbours` divides by (or subtracts) the median of the neighbours; where
    dopants make up tens of percent, or cluster, that median is partly a dopant level, which hides
    the dopants in clusters and widens both classes. After the first classification each pass
    takes as reference only the neighbours called host, until no atom changes class or after
    ``iterations`` passes (each pass frees the dopants at a cluster's rim, so large clusters
    take several). ``classify`` goes to :func:`classify_atoms`.

    ``start="global"`` makes the first classification on the values relative to their group's
    median instead (no neighbours): right where dopants form large clusters and the background
    varies less than the dopant contrast (STM sub-surface sites); ``"neighbours"`` (default) where
    thickness or background gradients exceed it (HAADF across a wedge).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``{column}_norm``, ``cls`` and ``p_cls``; ``attrs`` hold the last
        pass's ``classification``, the number of ``reference_passes`` made and ``converged``.
    """
    from .intensity import normalise_by_neighbours

    if not isinstance(iterations, (int, np.integer)) or isinstance(iterations, bool) or iterations < 0:
        raise InputError(f"iterations must be an integer >= 0, got {iterations!r}")
    if start not in ("neighbours", "global"):
        raise InputError(f"start must be 'neighbours' or 'global', got {start!r}")
    norm = f"{column}_norm"
    if start == "global":
        first = table.copy()
        values = pd.to_numeric(table[column], errors="coerce")
        level = values.groupby(table[by] if by is not None else np.zeros(len(table))).transform("median")
        first[norm] = values / level if how == "ratio" else values - level
    else:
        first = normalise_by_neighbours(table, column, by=by, how=how, out=norm)
    out = classify_atoms(first, column=norm, by=by, **classify)
    passes, converged = 0, False
    while passes < int(iterations):
        host = (out["cls"] == "host").to_numpy()
        if host.sum() < 2:
            break
        again = normalise_by_neighbours(table, column, by=by, how=how, out=norm, reference=host)
        new = classify_atoms(again, column=norm, by=by, **classify)
        passes += 1
        converged = bool((new["cls"].to_numpy() == out["cls"].to_numpy()).all())
        out = new
        if converged:
            break
    out.attrs["reference_passes"] = passes
    out.attrs["converged"] = converged
    return out


def _key(g):
    return int(g) if isinstance(g, (int, np.integer)) else str(g)


def _prior_per_group(z_prior, exponent, groups) -> dict:
    if z_prior is None:
        return {}
    if not isinstance(z_prior, Mapping) or not z_prior:
        raise InputError("z_prior must be a non-empty mapping (class -> atomic numbers, or group -> that)")
    if all(k in _CLASSES for k in z_prior):
        r = expected_ratios(z_prior, exponent)
        return {g: r for g in groups}
    return {g: expected_ratios(v, exponent) for g, v in z_prior.items()}


__all__ = ["classify_atoms", "classify_host_referenced", "expected_ratios"]
