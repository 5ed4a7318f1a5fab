"""The result of a lattice-model fit (:func:`atomine.thermo.fit.fit_model`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._reweight import Ensemble


@dataclass
class FitResult:
    """A fitted lattice model and how well it matches the image.

    Attributes
    ----------
    model, names : str, tuple of str
        Model name (``j1j2``, ...) and its parameter names (``J1``, ``J2``, ``h``).
    value, stderr, covariance : ndarray
        Estimates (k_B T_f), standard errors and covariance (sandwich form: the Fisher
        information of the minimum-distance fit with the histogram covariance of an
        image-sized window drawn from the fitted model).
    statistical_distance : float
        s = arccos(sum sqrt(p q)) between the image's and the model's pooled histograms (rad).
    chi2, dof : float
        4 n_eff s^2 and its expectation under the model (bins - 1 minus what the fit removes).
    n_sites, n_eff, design_effect : int, float, float
        Sites with a complete neighbourhood, and n_eff = n_sites / design_effect.
    composition, kind, descriptor, class_labels : float, str, str, tuple of str
    counts_image, q_model, bins : ndarray
        Image class counts, model class probabilities, pooled bin of each class.
    converged : bool
        The last Gauss-Newton step was far below one standard error, or the trust-region
        optimum lay inside the reweighting's reach.
    iterations : list of dict
        Parameters, s^2 and step per reference run.
    stderr_bootstrap, bootstrap : ndarray or None
        Parametric-bootstrap standard errors and estimates (replicas x parameters).
    seconds : float
    ensemble : Ensemble
        The last Monte Carlo reference (for reweighting nearby parameters).
    classes : Descriptor
        The configuration classes the histograms were made with (with a site field: resolved
        by field level, so only meaningful on the image's own lattice).
    """

    model: str
    names: tuple[str, ...]
    value: np.ndarray
    stderr: np.ndarray
    covariance: np.ndarray
    statistical_distance: float
    chi2: float
    dof: float
    n_sites: int
    n_eff: float
    design_effect: float
    composition: float
    kind: str
    descriptor: str
    class_labels: tuple[str, ...]
    counts_image: np.ndarray
    q_model: np.ndarray
    bins: np.ndarray
    converged: bool
    iterations: list = field(default_factory=list)
    stderr_bootstrap: np.ndarray | None = None
    bootstrap: np.ndarray | None = None
    seconds: float = 0.0
    ensemble: Ensemble | None = field(default=None, repr=False)
    classes: object = field(default=None, repr=False)

    @property
    def chi2_per_dof(self) -> float:
        return self.chi2 / self.dof if self.dof > 0 else float("nan")

    @property
    def p_image(self) -> np.ndarray:
        return self.counts_image / self.counts_image.sum()

    def parameters(self) -> dict:
        out = {}
        for k, name in enumerate(self.names):
            item = {"value": float(self.value[k]), "stderr": float(self.stderr[k])}
            if self.stderr_bootstrap is not None:
                item["stderr_bootstrap"] = float(self.stderr_bootstrap[k])
            out[name] = item
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model, "parameters": self.parameters(),
            "statistical_distance": self.statistical_distance, "chi2": self.chi2, "dof": self.dof,
            "chi2_per_dof": self.chi2_per_dof, "n_sites": self.n_sites, "n_eff": self.n_eff,
            "design_effect": self.design_effect, "composition": self.composition, "lattice": self.kind,
            "descriptor": self.descriptor, "converged": self.converged, "n_iterations": len(self.iterations),
            "seconds": self.seconds,
        }
