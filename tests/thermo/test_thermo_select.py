"""Model selection between nested lattice models (BIC, spatial cross-validation, predictive checks)."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.thermo.select import cluster_observables, select_model
from test_thermo_fit import snapshot


def test_cluster_observables_by_hand():
    s = -np.ones((6, 6), np.int8)
    s[0, 0:3] = 1  # a cluster of 3
    s[4, 4] = 1  # a single
    s[3, 0] = s[4, 1] = 1  # diagonal pair: two singles on the square lattice, one pair on the triangular
    mean, frac = cluster_observables(s, "square")
    assert mean == pytest.approx(6 / 4) and frac == 0.0
    # triangular (60-degree basis): (3, 0) and (4, 1) are not neighbours, (1, -1) offsets are
    s2 = s.copy()
    s2[3, 0], s2[4, 1] = -1, -1
    s2[3, 1] = s2[4, 0] = 1
    assert cluster_observables(s2, "triangular")[0] == pytest.approx(6 / 3)


@pytest.mark.slow
def test_selects_the_true_nested_model():
    chosen = {}
    for truth, name in (((0.15,), "j1"), ((0.15, -0.1), "j1j2")):
        sel = select_model(snapshot(truth, seed=7), n_ppc=20, seed=7)
        chosen[name] = sel
        assert sel.chosen == name, (name, sel.reason, sel.table)
    sel = chosen["j1j2"]
    rows = {r["model"]: r for r in sel.table}
    # the true model explains the histogram far better than the one without J2 ...
    assert rows["j1"]["chi2"] - rows["j1j2"]["chi2"] > 20
    # ... and the extra J3 buys less than its BIC penalty
    assert rows["j1j2j3"]["bic"] > rows["j1j2"]["bic"]
    assert "lowest BIC" in sel.reason and sel.best.names == ("J1", "J2")
    assert all(0 <= r["ppc_p_mean_cluster"] <= 1 for r in sel.table)


def test_selection_errors():
    img = snapshot((0.0,), shape=(32, 32), seed=8)
    with pytest.raises(InputError, match="no candidate"):
        select_model(img, ())
    with pytest.raises(InputError, match="unknown model"):
        select_model(img, ("j1", "j9"))
    with pytest.raises(InputError, match="cv_tiles"):
        select_model(img, ("j1",), cv_tiles=1)
