"""Learned residual dynamics on top of physics: models, the hybrid simulator, fitting.

::

    import hybridsim as hs
    from hybridsim import residual

    scene = hs.load_scene("arm2")
    data = hs.load_trajectory("train.npz", scene)
    fitted = residual.fit(scene, residual.episodes_from(data),
                          residual.FitConfig(), out_dir="runs/arm2")
    model = hs.make_model(scene, 16, backend="c", substeps=2)
    out = residual.hybrid_rollout(model, fitted.residual, hs.init(model), ctrl)
    out.traj.qpos, out.uncertainty
"""

from hybridsim._src.residual.adapt import estimate_mass_scale, mass_params
from hybridsim._src.residual.data import Episodes, episodes_from
from hybridsim._src.residual.evaluate import evaluate, rollout_rmse_per_entry
from hybridsim._src.residual.fit import (
    SYSID_FIELDS,
    FitConfig,
    Fitted,
    fit,
    load_fitted,
)
from hybridsim._src.residual.model import (
    KINDS,
    HybridResult,
    Residual,
    ResidualConfig,
    hybrid_rollout,
    init_residual,
)

__all__ = [
    "KINDS",
    "SYSID_FIELDS",
    "Episodes",
    "FitConfig",
    "Fitted",
    "HybridResult",
    "Residual",
    "ResidualConfig",
    "episodes_from",
    "estimate_mass_scale",
    "evaluate",
    "fit",
    "hybrid_rollout",
    "init_residual",
    "load_fitted",
    "mass_params",
    "rollout_rmse_per_entry",
]
