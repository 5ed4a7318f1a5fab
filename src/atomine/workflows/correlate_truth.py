"""Grade a correlation against the simulated pair it came from.

:func:`correlate_scores` gives the issue's acceptance figures: the registration error against
the true transform (largest displacement over the spectral pixel centres, in spectral pixels;
target <= 0.2) and whether the true drivers are the top-ranked structural descriptors of the
property they drive, each with q < 0.01.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

TARGETS = {"registration_error_px": 0.2, "q": 0.01}


def registration_error_px(result, true_transform) -> float:
    """Largest distance (spectral pixels) between where the estimated and the true transform put the
    spectral pixel centres, measured back in the spectral frame."""
    from ..correlate import AffineTransform

    true = true_transform if isinstance(true_transform, AffineTransform) else AffineTransform.from_dict(true_transform)
    grid = result.adf if result.adf is not None else next(iter(result.structure.data_vars.values()))
    x = np.asarray(grid.coords["x"].values, dtype=np.float64)
    y = np.asarray(grid.coords["y"].values, dtype=np.float64)
    xx, yy = np.meshgrid(x, y)
    bx, by = result.transform.inverse()(*true(xx, yy))
    pitch = float(abs(x[1] - x[0])) if x.size > 1 else 1.0
    return float(np.max(np.hypot(bx - xx, by - yy)) / pitch)


def _descriptor(driver: str, names: list[str]) -> str | None:
    """The structural descriptor standing for a true driver: same name, else the one name containing it."""
    if driver in names:
        return driver
    hits = [n for n in names if driver in n]
    return hits[0] if len(hits) == 1 else None


def driver_ranks(links, drivers) -> tuple[list[dict[str, Any]], str | None]:
    """Per true driver: its descriptor, rank among the structures of the driven property, q, r, effect.

    The driven property is the one of the best-ranked link of any driver; a driver's rank counts the
    distinct structural descriptors ranked before it on that property (1 = first).
    """
    names = list(dict.fromkeys(links["structure"]))
    mapped = {d: _descriptor(d, names) for d in drivers}
    found = [m for m in mapped.values() if m is not None]
    if not found:
        return [{"driver": d, "descriptor": None} for d in drivers], None
    prop = links.loc[links["structure"].isin(found), "property"].iloc[0]
    on_prop = links[links["property"] == prop].reset_index(drop=True)
    order = list(dict.fromkeys(on_prop["structure"]))
    rows = []
    for d, m in mapped.items():
        if m is None:
            rows.append({"driver": d, "descriptor": None})
            continue
        hit = on_prop[on_prop["structure"] == m].iloc[0]
        rows.append({"driver": d, "descriptor": m, "property": prop, "rank": order.index(m) + 1,
                     "q": float(hit["q"]), "r": float(hit["r"]), "effect": float(hit["effect"])})
    return rows, prop


def correlate_scores(result, truth: dict) -> dict[str, Any]:
    """Registration error (spectral px) and the true drivers' ranks and q-values.

    Parameters
    ----------
    result : atomine.workflows.correlate.CorrelateResult
    truth : dict
        The simulator's parameters: ``"transform"`` (``AffineTransform.to_dict()``), ``"drivers"``
        (list of names) and optionally ``"coefficients"`` (driver -> abundance per unit driver).
    """
    if not isinstance(truth, dict):
        raise InputError(f"truth must be a dict of the simulator's parameters, got {type(truth).__name__}")
    scores: dict[str, Any] = {"targets": dict(TARGETS)}
    if truth.get("transform") is not None:
        err = registration_error_px(result, truth["transform"])
        scores["registration_error_px"] = err
        scores["registration_ok"] = bool(err <= TARGETS["registration_error_px"])
    drivers = list(truth.get("drivers") or [])
    if drivers:
        rows, prop = driver_ranks(result.links, drivers)
        coefficients = truth.get("coefficients") or {}
        for r in rows:
            if r["driver"] in coefficients:
                r["true_coefficient"] = float(coefficients[r["driver"]])
        scores["drivers"] = rows
        scores["driven_property"] = prop
        scores["drivers_first"] = bool(prop is not None and all(
            r.get("rank") is not None and r["rank"] <= len(drivers) and r["q"] < TARGETS["q"] for r in rows))
    return scores


__all__ = ["correlate_scores", "driver_ranks", "registration_error_px"]
