"""Online adaptation to a changed payload: a mass scale estimated from recent history.

A model fitted on one payload cannot know a new one from its weights. It can measure it:
scaling every body's mass and inertia by ``s`` scales the joint-space inertia ``M`` and the
bias forces ``b`` (gravity, Coriolis) by ``s`` and leaves the other forces ``f`` (actuators,
passive forces, the residual's) alone, so over one control step of length ``dt``

    dv(s) = dt M^-1 (f - s b) / s = (dv(1) - dv_b) / s + dv_b,    dv_b = -dt M^-1 b.

Given the model's one-step velocity change ``dv(1)`` from each recorded state, the bias part
``dv_b`` and the recorded change, ``1 / s`` is a least-squares fit over the recent
transitions: one batched physics call, no search. The relation holds for smooth dynamics
(it ignores the implicit integrator's damping term and treats contact forces as forces of
the model); on scenes with many contacts the estimate is rougher.
"""

from __future__ import annotations

import numpy as np

from hybridsim._src.errors import ShapeError
from hybridsim._src.loader import Scene
from hybridsim._src.params import world_mj_model
from hybridsim._src.residual import data as rdata

MASS_SCALE_BOUNDS = (1.0 / 3.0, 3.0)
"""Estimates are clipped to this range (a payload a third to three times the fitted one)."""


def mass_params(scene: Scene, scale, params: dict[str, np.ndarray] | None = None):
    """Per-world ``body_mass`` and ``body_inertia`` for ``make_model(params=...)``: the
    scene's (or ``params``') values times ``scale (B,)``. Other fields of ``params`` are
    broadcast to ``(B, ...)``."""
    scale = np.asarray(scale, np.float64)
    if scale.ndim != 1 or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise ShapeError(f"mass scale: expected a (B,) array of positive numbers, got {scale}")
    m = scene.mj_model
    base = dict(params or {})
    out = {k: np.broadcast_to(v, (len(scale), *np.shape(v))) for k, v in base.items()}
    for name in ("body_mass", "body_inertia"):
        value = np.asarray(base.get(name, getattr(m, name)), np.float64)
        out[name] = value[None] * scale.reshape(-1, *([1] * value.ndim))
    return out


def bias_velocity_change(
    scene: Scene, qpos: np.ndarray, qvel: np.ndarray, dt: float, params=None
) -> np.ndarray:
    """``-dt M^-1 qfrc_bias`` (..., nv) at each recorded state: gravity and Coriolis alone."""
    m = scene.mj_model
    if params:
        fields = {k: np.asarray(v)[None] for k, v in params.items()}
        m = world_mj_model(m, fields, 0)
    mass, bias = rdata.mass_and_bias(m, qpos, qvel)
    return -dt * np.linalg.solve(mass, bias[..., None])[..., 0]


def estimate_mass_scale(
    scene: Scene,
    episodes: rdata.Episodes,
    residual=None,
    params: dict[str, np.ndarray] | None = None,
    hist: np.ndarray | None = None,
    precision: str = "float32",
) -> np.ndarray:
    """(N,) factor on every body's mass and inertia that best explains each episode.

    ``episodes`` holds the recent record to adapt on (N episodes of T >= 1 steps); the model
    is physics with ``params`` plus ``residual`` (None: physics alone). ``hist (N, T, H, D)``
    is the residual's history at each recorded step (default: cut from ``episodes``). An
    episode whose record says nothing about mass (no motion) keeps 1. Estimates are clipped
    to ``MASS_SCALE_BOUNDS``.
    """
    from hybridsim._src.residual.evaluate import _predict

    scene, substeps = rdata.stepping(scene, episodes)
    m = scene.mj_model
    n, t = episodes.num, episodes.steps
    history = residual.config.history if residual is not None else 0
    if hist is None:
        hist = rdata.histories(episodes, history)[:, :-1]
    if hist.shape[:2] != (n, t):
        raise ShapeError(f"hist: expected (N={n}, T={t}, H, D), found {hist.shape}")
    q0 = episodes.qpos[:, :-1].reshape(n * t, m.nq)
    v0 = episodes.qvel[:, :-1].reshape(n * t, m.nv)
    v1 = episodes.qvel[:, 1:].reshape(n * t, m.nv)
    _, pv = _predict(
        scene,
        episodes,
        substeps,
        residual,
        params,
        q0,
        v0,
        hist.reshape(n * t, history, hist.shape[-1]),
        episodes.ctrl.reshape(n * t, 1, m.nu),
        precision,
    )
    dv_b = bias_velocity_change(scene, q0, v0, episodes.control_dt, params)
    seen = episodes.valid[:, :, None] & episodes.qvel_observed  # (N, T, nv): recorded
    x = ((pv[:, 1] - v0 - dv_b).reshape(n, t, -1) * seen).reshape(n, -1)  # model, at s = 1
    y = ((v1 - v0 - dv_b).reshape(n, t, -1) * seen).reshape(n, -1)  # recorded
    xx = np.sum(x * x, axis=1)
    inv = np.sum(x * y, axis=1) / np.maximum(xx, 1e-300)
    informative = (xx > 0) & (inv > 0) & np.isfinite(inv)
    scale = np.where(informative, 1.0 / np.where(informative, inv, 1.0), 1.0)
    return np.clip(scale, *MASS_SCALE_BOUNDS)
