"""Unmixing: one scikit-learn-style interface over endmember extraction, decompositions and clustering.

Every estimator has ``fit``, ``transform``, ``fit_transform``, ``components_`` (k, n_features),
``abundances_`` (n_samples, k) and ``random_state``, and works on (n_samples, n_features)
arrays; the ones that say so also on dask arrays too large for memory.
"""
