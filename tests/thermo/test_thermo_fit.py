"""Fitting lattice-model interactions by statistical distance: reweighting, recovery, uncertainties."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.thermo._reweight import Ensemble, distance_and_gradient
from atomine.thermo.configurations import statistical_distance
from atomine.thermo.fit import fit_model, parse_model
from atomine.thermo.lattice import Lattice
from atomine.thermo.montecarlo import sample


def snapshot(couplings, shape=(64, 64), c=3 / 8, kind="square", seed=0, field=0.0, site_field=None, sweeps=400):
    """One equilibrium configuration of a known model (a periodic box), seen as an open image."""
    rng = np.random.default_rng(10_000 + seed)
    n = shape[0] * shape[1]
    flat = -np.ones(n, np.int8)
    flat[rng.choice(n, size=int(round(c * n)), replace=False)] = 1
    periodic = site_field is None
    res = sample(flat.reshape(shape), couplings, kind=kind, field=field, site_field=site_field, periodic=periodic,
                 n_chains=1, n_sweeps=1, n_equilibrate=sweeps, seed=seed)
    return Lattice(res.final[0].copy(), kind, periodic=False)


def test_model_names():
    assert parse_model("j1j2") == (2, False, ("J1", "J2"))
    assert parse_model("J1+field") == (1, True, ("J1", "h"))
    with pytest.raises(InputError, match="unknown model"):
        parse_model("j4")


def test_reweighted_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(300, 2)) * [40.0, 25.0]
    h = rng.dirichlet(np.ones(6), size=300)
    ens = Ensemble(np.array([0.1, -0.05]), r, h)
    theta = np.array([0.102, -0.049])
    q, dq = ens.predict(theta)
    eps = 1e-6
    for k in range(2):
        d = np.zeros(2)
        d[k] = eps
        num = (ens.predict(theta + d)[0] - ens.predict(theta - d)[0]) / (2 * eps)
        np.testing.assert_allclose(dq[k], num, rtol=1e-5, atol=1e-10)
    p = rng.dirichlet(np.ones(6) * 50)
    s2, g = distance_and_gradient(p, q, dq)
    assert s2 == pytest.approx(statistical_distance(p, q) ** 2)
    for k in range(2):
        d = np.zeros(2)
        d[k] = eps
        up = distance_and_gradient(p, *ens.predict(theta + d))[0]
        dn = distance_and_gradient(p, *ens.predict(theta - d))[0]
        assert g[k] == pytest.approx((up - dn) / (2 * eps), rel=1e-4)
    # at the reference all weights are equal: ESS = number of snapshots
    assert ens.ess(ens.theta0) == pytest.approx(300)


def test_recovers_j1_j2_with_calibrated_errors():
    truth = np.array([0.15, -0.08])
    f = fit_model(snapshot(truth, seed=1), "j1j2", seed=1)
    assert f.converged
    z = (f.value - truth) / f.stderr
    assert np.all(np.abs(z) < 3), (f.value, f.stderr)
    # 64 x 64 with descriptor reach 2: J to about +-0.015 kT
    assert np.all((f.stderr > 0.008) & (f.stderr < 0.03))
    assert 0.4 < f.chi2_per_dof < 2.0
    # overlapping neighbourhoods: fewer effective samples than sites
    assert 1.0 < f.design_effect < 3.0 and f.n_eff < f.n_sites
    d = f.to_dict()
    assert set(d["parameters"]) == {"J1", "J2"} and d["parameters"]["J1"]["stderr"] == pytest.approx(f.stderr[0])


def test_z_scores_over_seeds():
    truth = np.array([-0.2, -0.06])  # clustering, as dopant segregation
    z = []
    for seed in range(6):
        f = fit_model(snapshot(truth, seed=20 + seed), "j1j2", seed=seed)
        z.append((f.value - truth) / f.stderr)
    z = np.array(z)
    assert np.all(np.abs(z) < 3.5), z
    assert np.all(np.abs(z.mean(axis=0)) < 1.3), z


def test_triangular_lattice():
    truth = np.array([0.12])
    f = fit_model(snapshot(truth, shape=(48, 48), kind="triangular", seed=3), "j1", seed=3)
    assert abs(f.value[0] - truth[0]) < 3 * f.stderr[0]
    assert f.kind == "triangular"


def test_site_field_recovered():
    shape = (48, 48)
    # dopants attracted to an interface along row 0 (decay 4 sites)
    f_prof = np.repeat(np.exp(-np.arange(shape[0]) / 4.0)[:, None], shape[1], axis=1)
    truth = np.array([-0.1, 0.8])
    img = snapshot(truth[:1], shape=shape, seed=4, field=truth[1], site_field=f_prof)
    assert img.spins[:4].mean() > img.spins[-10:].mean()  # the field segregates dopants to the interface
    fit = fit_model(img, "j1+field", site_field=f_prof, seed=4)
    z = (fit.value - truth) / fit.stderr
    assert np.all(np.abs(z) < 3), (fit.value, fit.stderr)


@pytest.mark.slow
def test_bootstrap_agrees_with_fisher():
    f = fit_model(snapshot([0.1, -0.05], shape=(48, 48), seed=5), "j1j2", seed=5, bootstrap=40)
    ratio = f.stderr_bootstrap / f.stderr
    assert np.all((ratio > 0.65) & (ratio < 1.5)), ratio
    assert f.bootstrap.shape == (40, 2)


def test_errors():
    img = snapshot([0.0], shape=(32, 32), seed=6)
    with pytest.raises(InputError, match="unknown model"):
        fit_model(img, "quadratic")
    with pytest.raises(InputError, match="site_field"):
        fit_model(img, "j1+field")
    with pytest.raises(InputError, match="theta_start"):
        fit_model(img, "j1j2", theta_start=[0.1])
    with pytest.raises(InputError, match="single species"):
        fit_model(Lattice(-np.ones((32, 32), np.int8)), "j1")
    with pytest.raises(InputError, match="complete"):
        fit_model(Lattice(img.spins[:5, :5].copy()), "j1")
    with pytest.raises(InputError, match="Lattice"):
        fit_model(img.spins, "j1")
    with pytest.raises(InputError, match="bootstrap"):
        fit_model(img, "j1", bootstrap=-1)
