"""Test helper: watch what dask tasks return, to show a computation never held a whole array."""

from dask.callbacks import Callback


class LargestResult(Callback):
    """Records the largest array any dask task returns: a whole-array compute would show up here."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        self.largest = max(self.largest, getattr(result, "nbytes", 0))
