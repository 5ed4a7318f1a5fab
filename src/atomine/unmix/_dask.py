"""Dask helpers shared by the estimators: row blocks, batches, random row subsets, blockwise maps.

They keep memory bounded: a dask array is only ever read one row block (or one batch) at a time.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import InputError
from ._base import check_random_state, is_dask


def sklearn_seed(random_state):
    """A seed scikit-learn accepts: ints pass through (so results match sklearn's own), a Generator gives one int."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        check_random_state(random_state)  # validates (non-negative int)
        return int(random_state)
    return int(check_random_state(random_state).integers(2**31 - 1))


def _finite_block(block, what: str, i: int) -> np.ndarray:
    block = np.asarray(block, dtype=np.float64)
    if not np.isfinite(block).all():
        raise InputError(f"{what}: row block {i} holds NaN or inf values; remove or fill them first")
    return block


def whole_rows(X):
    """The dask array rechunked so every block holds complete rows (samples), all features."""
    return X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X


def iter_row_blocks(X, what: str = "X", order=None):
    """Yield the row blocks of a dask array one at a time as finite float64 numpy arrays.

    Only one block is in memory at a time, which is what bounds the memory of streaming fits.
    ``order`` optionally permutes the block order (shuffled epochs of mini-batch fits).
    """
    X = whole_rows(X)
    indices = range(X.numblocks[0]) if order is None else order
    for i in indices:
        yield _finite_block(X.blocks[int(i)].compute(), what, int(i))


def iter_batches(X, batch_size: int, min_size: int, what: str = "X", order=None):
    """Batches of at most about ``batch_size`` rows (numpy or dask), none smaller than ``min_size``.

    A short tail is merged into the batch before it, because sklearn's ``partial_fit``
    refuses batches with fewer samples than components.
    """
    blocks = iter_row_blocks(X, what, order) if is_dask(X) else (X,)
    pending = None
    for block in blocks:
        for start in range(0, block.shape[0], batch_size):
            piece = block[start:start + batch_size]
            if pending is None:
                pending = piece
            elif piece.shape[0] < min_size:
                pending = np.vstack([pending, piece])
            else:
                yield pending
                pending = piece
    if pending is not None:
        yield pending


def random_rows(X, n: int, rng: np.random.Generator, what: str = "X") -> np.ndarray:
    """``n`` rows drawn without replacement (all rows if fewer), as an in-memory float64 array, in row order."""
    n_samples = X.shape[0]
    if n >= n_samples:
        sub = X.compute() if is_dask(X) else X
    else:
        idx = np.sort(rng.choice(n_samples, size=n, replace=False))
        sub = X[idx].compute() if is_dask(X) else X[idx]
    return _finite_block(sub, what, 0) if is_dask(X) else np.asarray(sub, dtype=np.float64)


def map_rows(X, fn, n_out: int | None, dtype=np.float64):
    """Apply ``fn`` (numpy rows -> rows) to every row block of a dask array, lazily.

    ``n_out=None`` means ``fn`` returns one value per row (a 1-D result, e.g. labels).
    """
    X = whole_rows(X)

    def _apply(block):
        return fn(np.asarray(block, dtype=np.float64))

    if n_out is None:
        return X.map_blocks(_apply, drop_axis=1, chunks=(X.chunks[0],), dtype=dtype)
    return X.map_blocks(_apply, chunks=(X.chunks[0], (n_out,)), dtype=dtype)
