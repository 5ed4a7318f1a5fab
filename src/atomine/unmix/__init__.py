"""Unmixing: one scikit-learn-style interface over endmember extraction, decompositions and clustering.

Every estimator has ``fit``, ``transform``, ``fit_transform``, ``components_`` (k, n_features),
``abundances_`` (n_samples, k) and ``random_state``, and works on (n_samples, n_features)
arrays; the ones that say so also on dask arrays too large for memory.
"""

from .abundance import abundances, fcls, nnls, sum_to_one_ls, ucls
from .atgp import ATGP, atgp
from .bayes import BayesianUnmixing
from .clusters import GaussianMixture, KMeans
from .constraints import Closure, FixedSpectra, NonNegative, Selectivity
from .decompose import NMF, PCA
from .mcr import MCRALS
from .n_components import ComponentEstimate, estimate_n_components
from .nfindr import NFINDR, nfindr, simplex_volume
from .vca import VCA, estimate_snr, vca

__all__ = [
    "ATGP", "ComponentEstimate", "GaussianMixture", "KMeans", "NFINDR", "NMF", "PCA", "VCA",
    "abundances", "atgp", "estimate_n_components", "estimate_snr", "fcls", "nfindr", "nnls",
    "simplex_volume", "sum_to_one_ls", "ucls", "vca",
    "Closure", "FixedSpectra", "MCRALS", "NonNegative", "Selectivity",
    "BayesianUnmixing",
]
