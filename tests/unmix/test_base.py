"""The shared estimator interface: input checks and least-squares transform on learned components."""

import numpy as np
import pytest

from atomine.errors import InputError
from atomine.unmix._base import UnmixingEstimator, check_matrix, check_n_components, check_random_state


class FirstRows(UnmixingEstimator):
    """Takes the first k samples as components: enough to exercise the base class."""

    def _fit(self, X):
        E = X[: self.n_components]
        A, *_ = np.linalg.lstsq(E.T, X.T, rcond=None)
        return E, A.T


def test_fit_transform_inverse_reconstruct_a_linear_mixture():
    rng = np.random.default_rng(0)
    E = rng.random((3, 40))
    A = rng.dirichlet(np.ones(3), 50)
    X = np.vstack([E, A @ E])
    est = FirstRows(3).fit(X)
    np.testing.assert_allclose(est.components_, E)
    np.testing.assert_allclose(est.transform(A @ E), A, atol=1e-10)
    np.testing.assert_allclose(est.inverse_transform(est.abundances_), X, atol=1e-10)
    assert est.reconstruction_error_ < 1e-10


def test_bad_input_is_one_clear_error():
    with pytest.raises(InputError, match="2-D"):
        check_matrix(np.zeros(5))
    with pytest.raises(InputError, match="NaN"):
        check_matrix(np.array([[1.0, np.nan]]))
    with pytest.raises(InputError, match="non-numeric"):
        check_matrix(np.array([["a", "b"]]))
    with pytest.raises(InputError, match="more than the 4 samples"):
        check_n_components(5, 4)
    with pytest.raises(InputError, match="positive integer"):
        check_n_components(0, 4)
    with pytest.raises(InputError, match="random_state"):
        check_random_state(-1)
    with pytest.raises(InputError, match="not fitted"):
        FirstRows(2).transform(np.ones((3, 3)))
    with pytest.raises(InputError, match="features"):
        FirstRows(2).fit(np.eye(4)).transform(np.ones((2, 3)))


def test_inputs_are_not_modified_and_dask_needs_opt_in():
    da = pytest.importorskip("dask.array")
    X = np.eye(4)
    before = X.copy()
    FirstRows(2).fit(X)
    np.testing.assert_array_equal(X, before)
    with pytest.raises(InputError, match="in-memory"):
        FirstRows(2).fit(da.from_array(X, chunks=2))
