"""Occupancy arrays of a square A-site lattice and their nearest-neighbour short-range order.

Values: 0 host (La), 1 dopant (Ca), -1 vacancy / defect. ``occupancy[site_i, site_j]``
with ``site_i`` the row (along lattice vector a2) and ``site_j`` the column (along a1).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

HOST, DOPANT, VACANCY = 0, 1, -1


def _check_shape(shape) -> tuple[int, int]:
    try:
        ny, nx = (int(s) for s in shape)
        ok = len(tuple(shape)) == 2 and all(float(s) == int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be two positive integers (rows, columns), got {shape!r}") from None
    if not ok or ny < 2 or nx < 2:
        raise InputError(f"shape must be two integers >= 2 (rows, columns), got {shape!r}")
    if ny * nx > 10**8:
        raise InputError(f"shape {shape!r} has more than 1e8 sites; use a smaller lattice")
    return ny, nx


def _check_fraction(value, name: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not np.isfinite(f) or f < 0 or f > 1:
        raise InputError(f"{name} must be in [0, 1], got {value!r}")
    return f


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _counts(n_sites: int, fraction: float, vacancy_fraction: float) -> tuple[int, int]:
    n_dopant = int(np.floor(fraction * n_sites + 0.5))
    n_vacancy = int(np.floor(vacancy_fraction * n_sites + 0.5))
    if n_dopant + n_vacancy > n_sites:
        raise InputError(f"fraction + vacancy_fraction = {fraction + vacancy_fraction:g} exceeds 1; lower one of them")
    return n_dopant, n_vacancy


def _place_vacancies(occ: np.ndarray, n_vacancy: int, rng: np.random.Generator) -> None:
    hosts = np.flatnonzero(occ.ravel() == HOST)
    occ.ravel()[rng.choice(hosts, size=n_vacancy, replace=False)] = VACANCY


def random_occupancy(shape, fraction: float, *, vacancy_fraction: float = 0.0, seed: int = 0) -> np.ndarray:
    """A random A-site arrangement with an exact number of dopants and vacancies.

    Parameters
    ----------
    shape : (int, int)
        Lattice size (rows, columns), each >= 2.
    fraction : float
        Dopant fraction of all sites; the count is ``round(fraction * n_sites)`` (halves up).
    vacancy_fraction : float, optional
        Vacancy fraction of all sites, counted the same way; vacancies replace host sites.
    seed : int, optional

    Returns
    -------
    numpy.ndarray of int8, shape ``shape``
        0 host, 1 dopant, -1 vacancy; every arrangement with these counts is equally likely.
    """
    ny, nx = _check_shape(shape)
    fraction = _check_fraction(fraction, "fraction")
    vacancy_fraction = _check_fraction(vacancy_fraction, "vacancy_fraction")
    rng = np.random.default_rng(_check_seed(seed))
    n_dopant, n_vacancy = _counts(ny * nx, fraction, vacancy_fraction)
    occ = np.zeros(ny * nx, dtype=np.int8)
    occ[rng.choice(ny * nx, size=n_dopant, replace=False)] = DOPANT
    occ = occ.reshape(ny, nx)
    _place_vacancies(occ, n_vacancy, rng)
    return occ


def _kawasaki_substep(spin: np.ndarray, j_nn: float, rng: np.random.Generator) -> None:
    """Metropolis exchange of unlike horizontal neighbour pairs on a set of non-interacting pairs.

    Pairs (i, j)-(i, j+1) on every second row and every fourth column: no pair touches a
    site or a neighbour of another pair, so the moves are independent and each obeys
    detailed balance for H = j_nn * sum_<ab> s_a s_b (periodic boundaries).
    """
    ny, nx = spin.shape
    r0, c0 = rng.integers(2), rng.integers(4)
    # Stop short of the periodic seam so the last pair does not interact with the first.
    rows = np.arange(r0, r0 + ny - 1, 2) % ny
    cols = np.arange(c0, c0 + nx - 2, 4) % nx
    if rows.size == 0 or cols.size == 0:
        return
    nsum = np.roll(spin, 1, 0) + np.roll(spin, -1, 0) + np.roll(spin, 1, 1) + np.roll(spin, -1, 1)
    ia = rows[:, None]
    ja = cols[None, :]
    jb = (ja + 1) % nx
    sa, sb = spin[ia, ja], spin[ia, jb]
    # Neighbour sums without the partner; for an unlike pair the swap flips both spins.
    dE = -2.0 * j_nn * (sa * (nsum[ia, ja] - sb) + sb * (nsum[ia, jb] - sa))
    accept = (sa != sb) & (rng.random(sa.shape) < np.exp(-np.clip(dE, -50.0, 50.0)))
    ii, jja = np.broadcast_arrays(ia, ja)
    jjb = np.broadcast_to(jb, ii.shape)
    spin[ii[accept], jja[accept]] = sb[accept]
    spin[ii[accept], jjb[accept]] = sa[accept]


def segregated_occupancy(
    shape,
    fraction: float,
    *,
    j_nn: float = -0.7,
    sweeps: int = 300,
    vacancy_fraction: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A correlated A-site arrangement from Kawasaki Monte Carlo at fixed composition.

    Starts from :func:`random_occupancy` (dopants only) and exchanges unlike nearest
    neighbours with Metropolis acceptance for the lattice model
    ``H = j_nn * sum_<ab> s_a s_b`` (s = +1 dopant, -1 host; periodic boundaries;
    energies in units of k_B T, the atomine lattice-model convention). Negative
    ``j_nn`` favours like neighbours (segregation, alpha_1 > 0); positive favours
    unlike neighbours (ordering, alpha_1 < 0). Below the 2-D Ising point
    (|j_nn| > 0.4407) dopants coarsen into domains with local dynamics; the result
    after ``sweeps`` is a quench snapshot, not necessarily equilibrium. Vacancies are
    then put on random host sites.

    Parameters
    ----------
    shape : (int, int)
        Lattice size (rows, columns), each >= 2.
    fraction : float
        Dopant fraction of all sites (exact count, as in :func:`random_occupancy`).
    j_nn : float, optional
        Nearest-neighbour coupling in units of k_B T.
    sweeps : int, optional
        Monte Carlo sweeps; one sweep attempts about one exchange per site.
    vacancy_fraction : float, optional
    seed : int, optional

    Returns
    -------
    numpy.ndarray of int8
    """
    ny, nx = _check_shape(shape)
    fraction = _check_fraction(fraction, "fraction")
    vacancy_fraction = _check_fraction(vacancy_fraction, "vacancy_fraction")
    try:
        j_nn = float(j_nn)
    except (TypeError, ValueError):
        raise InputError(f"j_nn must be a number (units of kT), got {j_nn!r}") from None
    if not np.isfinite(j_nn) or abs(j_nn) > 50:
        raise InputError(f"j_nn must be finite with |j_nn| <= 50 kT, got {j_nn!r}")
    if isinstance(sweeps, bool) or not isinstance(sweeps, (int, np.integer)) or not 0 <= sweeps <= 100_000:
        raise InputError(f"sweeps must be an integer in [0, 100000], got {sweeps!r}")
    seed = _check_seed(seed)
    n_dopant, n_vacancy = _counts(ny * nx, fraction, vacancy_fraction)
    rng = np.random.default_rng(seed)
    occ = random_occupancy((ny, nx), fraction, seed=int(rng.integers(2**31)))
    spin = np.where(occ == DOPANT, 1, -1).astype(np.int8)
    # Each sub-step tries ~n_sites/8 pairs; 8 sub-steps (both bond directions) make one sweep.
    for _ in range(8 * int(sweeps)):
        if rng.random() < 0.5:
            _kawasaki_substep(spin, j_nn, rng)
        else:
            t = np.ascontiguousarray(spin.T)
            _kawasaki_substep(t, j_nn, rng)
            spin[...] = t.T
    occ = np.where(spin > 0, DOPANT, HOST).astype(np.int8)
    _place_vacancies(occ, n_vacancy, rng)
    assert int((occ == DOPANT).sum()) == n_dopant  # exchanges conserve composition
    return occ


def model_occupancy(
    shape,
    fraction: float,
    couplings,
    *,
    vacancy_fraction: float = 0.0,
    sweeps: int = 500,
    seed: int = 0,
) -> np.ndarray:
    """An equilibrium A-site arrangement of a known lattice model at fixed composition.

    Draws one configuration of the atomine lattice model
    ``H = sum_m J_m sum_<ij>_m s_i s_j`` (s = +1 dopant, -1 host; shells m = 1..3 of the
    square lattice; energies in units of k_B T_f, sampled at T = T_f) with
    :func:`atomine.thermo.montecarlo.sample`: canonical ensemble, periodic boundaries,
    mixed local / non-local Kawasaki exchanges, starting from :func:`random_occupancy`.
    Unlike :func:`segregated_occupancy` (local moves only, a quench), the non-local
    exchanges let composition fluctuations relax, so a few hundred sweeps reach equilibrium
    away from a phase transition: the arrangement is a fair draw of the model, whose
    parameters a fit can then be asked to return. Vacancies are then put on random host
    sites (as :func:`segregated_occupancy` does); they are not part of the model.

    Parameters
    ----------
    shape : (int, int)
        Lattice size (rows, columns), each >= 2.
    fraction : float
        Dopant fraction of all sites (exact count, as in :func:`random_occupancy`).
    couplings : sequence of 1 to 3 float
        J_1, J_2, J_3 in units of k_B T_f (J < 0 favours like neighbours, > 0 unlike).
    vacancy_fraction : float, optional
        Vacancy fraction of all sites, placed after the Monte Carlo on random host sites.
    sweeps : int, optional
        Monte Carlo sweeps (one sweep = one attempted exchange per site), 1..100000.
    seed : int, optional

    Returns
    -------
    numpy.ndarray of int8, shape ``shape``
        0 host, 1 dopant, -1 vacancy.
    """
    from ..thermo.montecarlo import sample  # deferred: numba is only needed when a model is sampled

    ny, nx = _check_shape(shape)
    fraction = _check_fraction(fraction, "fraction")
    vacancy_fraction = _check_fraction(vacancy_fraction, "vacancy_fraction")
    if isinstance(sweeps, bool) or not isinstance(sweeps, (int, np.integer)) or not 1 <= sweeps <= 100_000:
        raise InputError(f"sweeps must be an integer in [1, 100000], got {sweeps!r}")
    seed = _check_seed(seed)
    n_dopant, n_vacancy = _counts(ny * nx, fraction, vacancy_fraction)
    if n_dopant in (0, ny * nx):
        raise InputError(f"fraction {fraction:g} leaves a single species on {ny} x {nx} sites; "
                         "a lattice model needs dopants and hosts")
    rng = np.random.default_rng(seed)
    occ = random_occupancy((ny, nx), fraction, seed=int(rng.integers(2**31)))
    spins = np.where(occ == DOPANT, 1, -1).astype(np.int8)
    # one chain, one recorded sweep: the final state after `sweeps` sweeps is the draw
    res = sample(spins, couplings, kind="square", ensemble="canonical", moves="mixed", periodic=True,
                 n_chains=1, n_sweeps=1, n_equilibrate=int(sweeps) - 1, seed=int(rng.integers(2**31)))
    occ = np.where(res.final[0] > 0, DOPANT, HOST).astype(np.int8)
    _place_vacancies(occ, n_vacancy, rng)
    assert int((occ == DOPANT).sum()) == n_dopant  # exchanges conserve composition
    return occ


def check_occupancy(occupancy, name: str = "occupancy") -> np.ndarray:
    """A validated int8 copy of an occupancy array (2-D, values in {-1, 0, 1})."""
    from ..data import check_values

    arr = occupancy if hasattr(occupancy, "shape") else np.asarray(occupancy)
    check_values(arr, name, 2, 2)
    arr = np.asarray(arr)
    if arr.dtype.kind == "c":
        raise InputError(f"{name} must be real integers in {{-1, 0, 1}}, got complex values")
    bad = ~np.isin(arr, (HOST, DOPANT, VACANCY))
    if bad.any():
        example = arr[bad].ravel()[0]
        raise InputError(f"{name} must contain only -1 (vacancy), 0 (host), 1 (dopant); found {example!r} at {int(bad.sum())} sites")
    return arr.astype(np.int8)


def warren_cowley_alpha1(occupancy, *, periodic: bool = False, mask=None) -> float:
    """Warren-Cowley nearest-neighbour short-range-order parameter alpha_1 of dopants vs hosts.

    ``alpha_1 = 1 - N_unlike / (2 c (1 - c) N_bonds)`` where the bonds are the
    nearest-neighbour pairs (4 neighbours per site) whose two sites are both included,
    ``N_unlike`` counts dopant-host bonds and ``c`` is the dopant fraction of the
    included sites. Vacancies (-1) and sites outside ``mask`` are excluded. 0 for an
    ideal random alloy (expectation -1/(n-1) at an exact count of n sites), > 0 when
    like neighbours cluster, -1 for a perfect checkerboard at c = 1/2. For a random
    arrangement its standard deviation is about ``1 / sqrt(N_bonds)``.

    Parameters
    ----------
    occupancy : array_like of int, shape (rows, columns)
        Values in {-1, 0, 1}.
    periodic : bool, optional
        Count bonds across the edges (wrap-around), as the Monte Carlo of
        :func:`segregated_occupancy` does; otherwise only bonds inside the array (open).
    mask : array_like of bool, optional
        Same shape; only sites where True take part (e.g. the sites inside an image).

    Returns
    -------
    float
    """
    occ = check_occupancy(occupancy)
    if occ.shape[0] < 2 or occ.shape[1] < 2:
        raise InputError(f"occupancy must be at least 2 x 2 for nearest-neighbour pairs, got {occ.shape}")
    keep = occ != VACANCY
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != occ.shape or m.dtype.kind != "b":
            raise InputError(f"mask must be a boolean array of shape {occ.shape}, got {m.dtype} {m.shape}")
        keep &= m
    dop = occ == DOPANT
    n_unlike = n_bonds = 0
    for axis in (0, 1):
        if periodic:
            a_keep, b_keep = keep, np.roll(keep, -1, axis)
            a_dop, b_dop = dop, np.roll(dop, -1, axis)
        else:
            lo = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
            hi = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
            a_keep, b_keep, a_dop, b_dop = keep[lo], keep[hi], dop[lo], dop[hi]
        bond = a_keep & b_keep
        n_bonds += int(bond.sum())
        n_unlike += int((bond & (a_dop != b_dop)).sum())
    n_sites = int(keep.sum())
    c = int((dop & keep).sum()) / n_sites if n_sites else 0.0
    if n_bonds == 0 or c in (0.0, 1.0):
        raise InputError("alpha_1 is undefined here: it needs nearest-neighbour bonds and both dopant and host sites")
    return 1.0 - n_unlike / (2.0 * c * (1.0 - c) * n_bonds)
