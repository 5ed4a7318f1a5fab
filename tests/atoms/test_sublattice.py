"""Sublattices and lattice sites without a CIF, checked against the simulators' ground truth.

Input tables are the truth columns of ``atomine.simulate`` presets inside the field of
view, with 8 pm Gaussian position noise and 2 % of the atoms removed at random (the
truth's own vacancies are left out too): what a column fit would return. Every check
compares with the truth's sublattice, site indices, intensities and removed atoms.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from atomine.atoms.sublattice import LatticeInfo, find_vacancies, identify_sublattices
from atomine.errors import InputError
from atomine.simulate import make

# preset -> the truth column that plays the fitted intensity (STM: apparent height).
PRESETS = {
    "haadf-perovskite": "intensity",
    "abf-perovskite": "intensity",
    "haadf-mos2": "intensity",
    "stm-lcmo": "height_nm",
}
NOISE_NM = 0.008
REMOVE = 0.02


@pytest.fixture(scope="module")
def truth_tables():
    """Truth atom tables of each preset, restricted to the field of view."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PRESETS:
            sim = make(name, seed=0)
            t = sim.truth.tables["atoms"]
            x_max, y_max = float(sim.data.x[-1]), float(sim.data.y[-1])
            inside = (t.x >= 0) & (t.x <= x_max) & (t.y >= 0) & (t.y <= y_max)
            table = t[inside].reset_index(drop=True)
            # The region the truth lists sites in (the STM truth stops short of the image edge).
            table.attrs["extent"] = (table.x.min(), table.x.max(), table.y.min(), table.y.max())
            out[name] = table
    return out


def observed(truth: pd.DataFrame, seed: int = 1, noise: float = NOISE_NM, remove: float = REMOVE,
             column: str = "intensity"):
    """(noisy table without removed atoms and truth vacancies, the truth rows that are missing).

    ``amplitude`` is the truth ``column`` plus Gaussian noise of 15 % of its spread, so that
    the brightness order is learned from noisy values and checked against the truth.
    """
    rng = np.random.default_rng(seed)
    vacancy = truth["cls"].eq("vacancy").to_numpy()
    removed = ~vacancy & (rng.random(len(truth)) < remove)
    kept = truth[~vacancy & ~removed].reset_index(drop=True).copy()
    kept["x"] += rng.normal(0.0, noise, len(kept))
    kept["y"] += rng.normal(0.0, noise, len(kept))
    if column in kept.columns:
        kept["amplitude"] = kept[column] + rng.normal(0.0, 0.15 * kept[column].std(), len(kept))
    return kept, truth[vacancy | removed].reset_index(drop=True)


def sublattice_agreement(truth_sub: np.ndarray, found_sub: np.ndarray):
    """Fraction of atoms whose found sublattice maps to their truth sublattice, and that map."""
    ct = pd.crosstab(found_sub, truth_sub)
    mapping = ct.idxmax(axis=1).to_dict()  # each found sublattice -> the truth one it mostly holds
    hits = sum(ct.loc[f, t] for f, t in mapping.items())
    return hits / len(truth_sub), mapping


def site_agreement(truth: pd.DataFrame, found: pd.DataFrame) -> float:
    """Fraction of atoms whose (site_i, site_j) equal the truth's after one integer basis change.

    One unimodular integer matrix for the whole lattice (the choice of a1, a2) plus one
    offset per sublattice (where each convention puts a motif site's cell).
    """
    ok = found["sublattice"].to_numpy() >= 0
    t = truth.loc[ok, ["site_i", "site_j"]].to_numpy(float)
    f = found.loc[ok, ["site_i", "site_j"]].to_numpy(float)
    sub = found.loc[ok, "sublattice"].to_numpy()
    onehot = (sub[:, None] == np.unique(sub)[None, :]).astype(float)
    coef = np.linalg.lstsq(np.column_stack([f, onehot]), t, rcond=None)[0]
    m = np.rint(coef[:2])
    assert abs(round(np.linalg.det(m))) == 1, f"site indices are not a basis change of the truth's: {m}"
    resid = t - f @ m
    good = np.zeros(len(t), dtype=bool)
    for s in np.unique(sub):  # per-sublattice offset: the most common residual
        r = resid[sub == s]
        vals, counts = np.unique(r, axis=0, return_counts=True)
        good[sub == s] = np.all(r == vals[np.argmax(counts)], axis=1)
    return good.mean() * ok.mean()


@pytest.mark.parametrize("name", list(PRESETS))
def test_sublattices_sites_and_vacancies_match_truth(truth_tables, name):
    truth = truth_tables[name]
    column = PRESETS[name]
    kept, missing = observed(truth, column=column)
    before = kept.copy()
    found, info = identify_sublattices(kept)  # intensity="amplitude"
    pd.testing.assert_frame_equal(kept, before)  # input untouched

    n_truth = truth.loc[~truth["cls"].eq("vacancy"), "sublattice"].nunique()
    assert isinstance(info, LatticeInfo) and info.n_sublattices == n_truth
    frac, mapping = sublattice_agreement(kept["sublattice"].to_numpy(), found["sublattice"].to_numpy())
    assert frac >= 0.995, f"{name}: only {frac:.4f} of atoms on the right sublattice"
    assert sorted(mapping.values()) == sorted(range(n_truth))  # a permutation, not a merge

    # Brightness order: sublattice 0 has the highest truth mean intensity, and so on (ties allowed:
    # the two O sublattices of perovskite [001] have identical columns).
    truth_mean = kept.groupby(found["sublattice"])[column].mean().sort_index().to_numpy()
    assert np.all(np.diff(truth_mean) <= 1e-9 * np.abs(truth_mean).max())

    assert site_agreement(kept, found) >= 0.995

    # The lattice vectors are those of the simulated cell (length and angle).
    cell = make_cell(name)
    assert np.hypot(*info.a1) == pytest.approx(cell[0], rel=2e-3)
    assert np.hypot(*info.a2) == pytest.approx(cell[1], rel=2e-3)
    cos = info.a1 @ info.a2 / (np.hypot(*info.a1) * np.hypot(*info.a2))
    assert np.degrees(np.arccos(cos)) == pytest.approx(cell[2], abs=0.3)

    # Every removed atom and truth vacancy is found back as a vacancy, and nothing else.
    vac = find_vacancies(found, info, extent=truth.attrs["extent"])
    assert set(vac["cls"]) <= {"vacancy"}
    # Sites within noise of the extent's edge are in or out by chance: score the rest.
    x0, x1, y0, y1 = truth.attrs["extent"]
    def away(t, m=0.05):
        return t[(t.x > x0 + m) & (t.x < x1 - m) & (t.y > y0 + m) & (t.y < y1 - m)]
    recall, precision = match(away(missing), away(vac), 0.3 * min(cell[:2]) / 2)
    assert recall >= 0.95, f"{name}: vacancy recall {recall:.3f}"
    assert precision >= 0.98, f"{name}: vacancy precision {precision:.3f}"


def make_cell(name: str):
    """(|a1|, |a2|, angle in degrees) of the simulated crystal."""
    return {"haadf-perovskite": (0.3905, 0.3905, 90.0), "abf-perovskite": (0.3905, 0.3905, 90.0),
            "haadf-mos2": (0.316, 0.316, 60.0), "stm-lcmo": (0.388, 0.388, 90.0)}[name]


def match(truth: pd.DataFrame, found: pd.DataFrame, radius: float):
    """(recall, precision) of ``found`` positions against ``truth`` positions within ``radius`` nm."""
    from scipy.spatial import cKDTree

    if len(found) == 0 or len(truth) == 0:
        return float(len(truth) == 0), float(len(found) == 0)
    d_t, _ = cKDTree(found[["x", "y"]].to_numpy()).query(truth[["x", "y"]].to_numpy())
    d_f, _ = cKDTree(truth[["x", "y"]].to_numpy()).query(found[["x", "y"]].to_numpy())
    return float(np.mean(d_t < radius)), float(np.mean(d_f < radius))


def test_ab_vector_is_a_pdf_peak_but_not_a_lattice_vector(truth_tables):
    """HAADF perovskite with only the A and B columns: positions alone repeat every (a/2, a/2)."""
    truth = truth_tables["haadf-perovskite"]
    ab = truth[truth["site"].isin(["A", "B"])].reset_index(drop=True)
    kept, _ = observed(ab)
    from atomine.atoms.vector_pdf import vector_pdf

    pdf = vector_pdf(kept, 0.45)
    half = 0.3905 / 2
    at_ab = float(pdf.sel(dx=half, dy=half, method="nearest"))
    at_a = float(pdf.sel(dx=0.3905, dy=0.0, method="nearest"))
    assert at_ab > 0.3 * at_a  # a strong peak of the vector PDF ...
    found, info = identify_sublattices(kept, intensity="intensity")
    # ... but the crystal's translations are a along x and y, A and B two sublattices.
    assert np.hypot(*info.a1) == pytest.approx(0.3905, rel=2e-3)
    assert abs(info.a1[1]) < 0.01 and abs(info.a2[0]) < 0.01
    assert np.hypot(*info.translations[0]) == pytest.approx(0.3905 / np.sqrt(2), rel=5e-3)
    frac, mapping = sublattice_agreement(kept["site"].to_numpy(), found["sublattice"].to_numpy())
    assert frac >= 0.995 and mapping == {0: "A", 1: "B"}


def distort(table: pd.DataFrame, strain: float, turn_deg: float) -> pd.DataFrame:
    """Apply a strain rising linearly from 0 to ``strain`` across x and a rotation rising to ``turn_deg``."""
    out = table.copy()
    x, y = out["x"].to_numpy(), out["y"].to_numpy()
    width = x.max() - x.min()
    s = (x - x.min()) / width
    # Displacement ux = strain * x^2 / (2 width): the local strain d(ux)/dx grows linearly to `strain`.
    ux = strain * (x - x.min()) ** 2 / (2 * width)
    t = np.radians(turn_deg) * s
    cx, cy = x.mean(), y.mean()
    xr, yr = x + ux - cx, y - cy
    out["x"] = cx + xr * np.cos(t) - yr * np.sin(t)
    out["y"] = cy + xr * np.sin(t) + yr * np.cos(t)
    return out


def test_strain_gradient_and_rotation_do_not_misindex(truth_tables):
    truth = truth_tables["haadf-perovskite"]
    kept, _ = observed(truth, seed=3)
    bent = distort(kept, strain=0.02, turn_deg=2.0)
    found, _ = identify_sublattices(bent, intensity="intensity")
    frac, _ = sublattice_agreement(bent["sublattice"].to_numpy(), found["sublattice"].to_numpy())
    assert frac >= 0.995
    assert site_agreement(bent, found) >= 0.995


def test_outliers_are_left_unassigned(truth_tables):
    truth = truth_tables["stm-lcmo"]
    kept, _ = observed(truth, seed=4, column="height_nm")
    rng = np.random.default_rng(5)
    n_out = 30
    # Outliers half way between columns (no motif site within 0.1 nm).
    pick = kept.sample(n_out, random_state=6)
    extra = pick.copy()
    extra["x"] += 0.388 / 4
    extra["y"] += 0.388 / 4
    extra["amplitude"] = rng.uniform(0.0, 0.03, n_out)
    table = pd.concat([kept, extra], ignore_index=True)
    found, info = identify_sublattices(table)
    flagged = found["sublattice"].to_numpy()[len(kept):]
    assert np.all(flagged == -1)
    assert set(found["cls"].iloc[len(kept):]) == {"unknown"}
    assert info.n_unassigned == n_out
    frac, _ = sublattice_agreement(kept["sublattice"].to_numpy(), found["sublattice"].to_numpy()[: len(kept)])
    assert frac >= 0.995


def test_positions_only_gives_geometric_sites(truth_tables):
    """Without intensities MoS2 still has two sites (metal and chalcogen differ in position)."""
    kept, _ = observed(truth_tables["haadf-mos2"], seed=7)
    found, info = identify_sublattices(kept.drop(columns=["intensity"]), intensity=None)
    assert info.n_sublattices == 2 and np.all(np.isnan(info.mean_intensity))
    frac, _ = sublattice_agreement(kept["sublattice"].to_numpy(), found["sublattice"].to_numpy())
    assert frac >= 0.995


def test_progress_is_reported(truth_tables):
    kept, _ = observed(truth_tables["abf-perovskite"], seed=8)
    calls = []
    identify_sublattices(kept, intensity="intensity", progress=lambda d, t, m: calls.append((d, t)))
    assert calls[-1] == (4, 4) and [c[0] for c in calls] == [1, 2, 3, 4]


def test_bad_input_raises_one_clear_error(truth_tables):
    kept, _ = observed(truth_tables["abf-perovskite"], seed=9)
    rng = np.random.default_rng(0)
    gas = pd.DataFrame({"x": rng.uniform(0, 10, 2000), "y": rng.uniform(0, 10, 2000), "amplitude": 1.0})
    with pytest.raises(InputError, match="periodic lattice"):
        identify_sublattices(gas)
    with pytest.raises(InputError, match="no intensity column"):
        identify_sublattices(kept.drop(columns=["amplitude"]))  # the default column is absent
    with pytest.raises(InputError, match="empty"):
        identify_sublattices(kept.iloc[:0], intensity="intensity")
    nan = kept.copy()
    nan.loc[3, "x"] = np.nan
    with pytest.raises(InputError, match="NaN"):
        identify_sublattices(nan, intensity="intensity")
    with pytest.raises(InputError, match="at least 8"):
        identify_sublattices(kept.iloc[:5], intensity="intensity")
    with pytest.raises(InputError):
        identify_sublattices(kept[["x", "y"]].to_numpy())
    with pytest.raises(InputError, match="radius"):
        identify_sublattices(kept, intensity="intensity", radius_nm=0.01)
    found, info = identify_sublattices(kept, intensity="intensity")
    with pytest.raises(InputError, match="identify_sublattices"):
        find_vacancies(kept.drop(columns=["site_i"]), info)
    with pytest.raises(InputError, match="extent"):
        find_vacancies(found, info, extent=(1.0, 0.0, 0.0, 1.0))


@pytest.mark.slow
def test_hundred_thousand_atoms_are_indexed_and_vacancies_found():
    """A 158 x 158-cell perovskite table (~98k columns): the scale of the issue's timing target."""
    rng = np.random.default_rng(11)
    a = 0.3905
    motif = np.array([[0.0, 0.0], [0.5, 0.5], [0.5, 0.0], [0.0, 0.5]])
    i, j = np.meshgrid(np.arange(158), np.arange(158), indexing="ij")
    parts = [pd.DataFrame({"x": (j.ravel() + u) * a, "y": (i.ravel() + v) * a, "truth": s,
                           "amplitude": amp}) for s, ((u, v), amp) in enumerate(zip(motif, [2000, 900, 140, 140]))]
    full = pd.concat(parts, ignore_index=True)
    removed = rng.random(len(full)) < REMOVE
    table = full[~removed].reset_index(drop=True)
    table["x"] += rng.normal(0, NOISE_NM, len(table))
    table["y"] += rng.normal(0, NOISE_NM, len(table))
    table["amplitude"] *= 1 + rng.normal(0, 0.1, len(table))
    found, info = identify_sublattices(table)
    frac, mapping = sublattice_agreement(table["truth"].to_numpy(), found["sublattice"].to_numpy())
    assert frac >= 0.995 and mapping[0] == 0 and mapping[1] == 1
    vac = find_vacancies(found, info)
    recall, precision = match(full[removed], vac, 0.05)
    assert recall >= 0.99 and precision >= 0.99
