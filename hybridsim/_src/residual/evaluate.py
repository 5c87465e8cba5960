"""Scoring physics-only, system-identified, hybrid and neural models on recorded data.

- ``one_step_nmse``: from every recorded state, one control step with the recorded
  control; the squared error of the next state (qpos difference in velocity space, and
  qvel), per dimension divided by the variance of the recorded one-step change, averaged
  over dimensions.
- ``rollout_rmse``: open-loop rollouts of H control steps with the recorded controls from
  recorded states at window starts t = 0, H, 2H, ... of every episode while t + H <= T;
  the qpos RMSE at step H, over all windows and qpos entries. Models with memory read the
  record before the window start.
"""

from __future__ import annotations

import numpy as np

from hybridsim._src.errors import DataFileError
from hybridsim._src.residual import data as rdata
from hybridsim._src.residual.kinematics import differentiate_pos
from hybridsim._src.residual.model import Residual, hybrid_rollout
from hybridsim._src.scene import Scene


def _predict(scene, episodes, substeps, residual, params, q0, v0, hist, ctrl):
    """Open-loop predictions (W, H+1, nq) from W start states with controls (W, H, nu)."""
    from hybridsim._src import sim

    w = len(q0)
    fields = {k: np.broadcast_to(v, (w, *np.shape(v))) for k, v in (params or {}).items()}
    if residual is not None and residual.config.kind == "neural":
        model = sim.make_model(scene, w, backend="c", substeps=substeps)
        state = sim.init(model, qpos=q0, qvel=v0)
        out = hybrid_rollout(model, residual, state, ctrl, history=hist).traj
    else:
        model = sim.make_model(scene, w, backend="c", substeps=substeps, params=fields or None)
        state = sim.init(model, qpos=q0, qvel=v0)
        if residual is None:
            out = sim.rollout(model, state, ctrl)
        else:
            out = hybrid_rollout(model, residual, state, ctrl, history=hist).traj
    return np.asarray(out.qpos, np.float64), np.asarray(out.qvel, np.float64)


def evaluate(
    scene: Scene,
    episodes: rdata.Episodes,
    horizon: int,
    residual: Residual | None = None,
    params: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """``{"one_step_nmse", "rollout_rmse"}`` of one model (physics when residual is None)."""
    substeps = rdata.substeps_for(scene, episodes.control_dt)
    n, t = episodes.num, episodes.steps
    if horizon < 1 or horizon > t:
        raise DataFileError(f"horizon {horizon} must be between 1 and the episode length {t}")
    m = scene.mj_model
    history = residual.config.history if residual is not None else 0
    hist = rdata.histories(episodes, history)  # (N, T+1, H, D)
    # one step from every recorded state
    q0 = episodes.qpos[:, :-1].reshape(n * t, -1)
    v0 = episodes.qvel[:, :-1].reshape(n * t, -1)
    pq, pv = _predict(
        scene,
        episodes,
        substeps,
        residual,
        params,
        q0,
        v0,
        hist[:, :-1].reshape(n * t, history, hist.shape[-1]),
        episodes.ctrl.reshape(n * t, 1, -1),
    )
    true_q = episodes.qpos[:, 1:].reshape(n * t, -1)
    true_v = episodes.qvel[:, 1:].reshape(n * t, -1)
    err = np.concatenate([differentiate_pos(m, true_q, pq[:, 1]), pv[:, 1] - true_v], axis=1)
    change = np.concatenate([differentiate_pos(m, q0, true_q), true_v - v0], axis=1)
    nmse = float(np.mean(np.mean(err**2, 0) / np.maximum(change.var(0), 1e-12)))
    # open-loop windows
    starts = np.arange(0, t - horizon + 1, horizon)
    wq = episodes.qpos[:, starts].reshape(-1, m.nq)
    wv = episodes.qvel[:, starts].reshape(-1, m.nv)
    wh = hist[:, starts].reshape(n * len(starts), history, hist.shape[-1])
    wu = np.stack([episodes.ctrl[:, s : s + horizon] for s in starts], 1).reshape(-1, horizon, m.nu)
    target = episodes.qpos[:, starts + horizon].reshape(-1, m.nq)
    rq, _ = _predict(scene, episodes, substeps, residual, params, wq, wv, wh, wu)
    rmse = float(np.sqrt(np.mean((rq[:, -1] - target) ** 2)))
    return {"one_step_nmse": nmse, "rollout_rmse": rmse}
