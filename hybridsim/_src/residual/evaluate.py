"""Scoring physics-only, system-identified, hybrid and neural models on recorded data.

- ``one_step_nmse``: from every recorded state, one control step with the recorded
  control; the mean squared error of the next state summed over dimensions, divided by
  the summed variance of the recorded one-step change; computed for positions (compared
  in velocity space) and velocities separately, and averaged. Dimensions that never move
  (objects at rest) therefore cannot dominate it.
- ``rollout_rmse``: open-loop rollouts of H control steps with the recorded controls from
  recorded states at window starts t = 0, H, 2H, ... of every episode while t + H <= T;
  the qpos RMSE at step H, over all windows and qpos entries. Models with memory read the
  record before the window start.
"""

from __future__ import annotations

import numpy as np

from hybridsim._src.errors import DataFileError, ShapeError
from hybridsim._src.loader import Scene
from hybridsim._src.residual import data as rdata
from hybridsim._src.residual.adapt import estimate_mass_scale, mass_params
from hybridsim._src.residual.kinematics import differentiate_pos
from hybridsim._src.residual.model import Residual, hybrid_rollout


def _predict(
    scene, episodes, substeps, residual, params, q0, v0, hist, ctrl, precision, batched=False
):
    """Open-loop predictions (W, H+1, nq) from W start states with controls (W, H, nu).

    ``params`` holds fields of the MjModel's shape, or ``(W, ...)`` when ``batched``."""
    from hybridsim._src import sim

    w = len(q0)
    fields = {
        k: (v if batched else np.broadcast_to(v, (w, *np.shape(v))))
        for k, v in (params or {}).items()
    }
    if residual is not None and residual.config.kind == "neural":
        model = sim.make_model(scene, w, backend="c", substeps=substeps)
        state = sim.init(model, qpos=q0, qvel=v0)
        out = hybrid_rollout(model, residual, state, ctrl, history=hist, precision=precision).traj
    else:
        model = sim.make_model(scene, w, backend="c", substeps=substeps, params=fields or None)
        state = sim.init(model, qpos=q0, qvel=v0)
        if residual is None:
            out = sim.rollout(model, state, ctrl)
        else:
            out = hybrid_rollout(
                model, residual, state, ctrl, history=hist, precision=precision
            ).traj
    return np.asarray(out.qpos, np.float64), np.asarray(out.qvel, np.float64)


def evaluate(
    scene: Scene,
    episodes: rdata.Episodes,
    horizon: int,
    residual: Residual | None = None,
    params: dict[str, np.ndarray] | None = None,
    precision: str = "float32",
    adapt_steps: int = 0,
) -> dict[str, float]:
    """``{"one_step_nmse", "rollout_rmse"}`` of one model (physics when residual is None).

    ``precision`` is the residual's inference precision (``hybrid_rollout``'s).
    ``adapt_steps > 0`` adapts each rollout window to the payload: from the last
    ``adapt_steps`` recorded steps before the window (when there are any) it estimates a
    mass scale (``estimate_mass_scale``) and rolls out with every body's mass and inertia
    scaled by it. Only ``rollout_rmse`` adapts; ``one_step_nmse`` does not."""
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
        precision,
    )
    true_q = episodes.qpos[:, 1:].reshape(n * t, -1)
    true_v = episodes.qvel[:, 1:].reshape(n * t, -1)
    err_q, err_v = differentiate_pos(m, true_q, pq[:, 1]), pv[:, 1] - true_v
    chg_q, chg_v = differentiate_pos(m, q0, true_q), true_v - v0
    nmse = float(
        np.mean(
            [
                np.sum(np.mean(e**2, 0)) / max(float(np.sum(c.var(0))), 1e-12)
                for e, c in ((err_q, chg_q), (err_v, chg_v))
            ]
        )
    )
    rmse = rollout_rmse(scene, episodes, horizon, residual, params, hist, precision, adapt_steps)
    return {"one_step_nmse": nmse, "rollout_rmse": rmse}


def rollout_rmse(
    scene: Scene,
    episodes: rdata.Episodes,
    horizon: int,
    residual: Residual | None = None,
    params: dict[str, np.ndarray] | None = None,
    hist: np.ndarray | None = None,
    precision: str = "float32",
    adapt_steps: int = 0,
) -> float:
    """Open-loop qpos RMSE at step ``horizon`` (the windows rule of the module docstring)."""
    per_entry = rollout_rmse_per_entry(
        scene, episodes, horizon, residual, params, hist, precision, adapt_steps
    )
    return float(np.sqrt(np.mean(per_entry**2)))


def rollout_rmse_per_entry(
    scene: Scene,
    episodes: rdata.Episodes,
    horizon: int,
    residual: Residual | None = None,
    params: dict[str, np.ndarray] | None = None,
    hist: np.ndarray | None = None,
    precision: str = "float32",
    adapt_steps: int = 0,
) -> np.ndarray:
    """(nq,) open-loop RMSE at step ``horizon`` of each qpos entry, over the same windows
    as ``rollout_rmse`` (whose value is the root mean square of these)."""
    if adapt_steps < 0:
        raise DataFileError(f"adapt_steps must be >= 0, got {adapt_steps}")
    substeps = rdata.substeps_for(scene, episodes.control_dt)
    n, t = episodes.num, episodes.steps
    m = scene.mj_model
    history = residual.config.history if residual is not None else 0
    if hist is None:
        hist = rdata.histories(episodes, history)
    starts = np.arange(0, t - horizon + 1, horizon)
    wq = episodes.qpos[:, starts].reshape(-1, m.nq)
    wv = episodes.qvel[:, starts].reshape(-1, m.nv)
    wh = hist[:, starts].reshape(n * len(starts), history, hist.shape[-1])
    wu = np.stack([episodes.ctrl[:, s : s + horizon] for s in starts], 1).reshape(-1, horizon, m.nu)
    target = episodes.qpos[:, starts + horizon].reshape(-1, m.nq)
    batched = False
    if adapt_steps > 0 and residual is not None and residual.config.kind == "neural":
        raise ShapeError(
            "adapt_steps scales the physics' masses; the pure-neural model has none (use 0)"
        )
    if adapt_steps > 0:
        scales = window_mass_scales(
            scene, episodes, starts, adapt_steps, residual, params, hist, precision
        )
        params, batched = mass_params(scene, scales.reshape(-1), params), True
    rq, _ = _predict(
        scene, episodes, substeps, residual, params, wq, wv, wh, wu, precision, batched
    )
    return np.sqrt(np.mean((rq[:, -1] - target) ** 2, axis=0))


def window_mass_scales(
    scene: Scene,
    episodes: rdata.Episodes,
    starts: np.ndarray,
    adapt_steps: int,
    residual: Residual | None,
    params: dict[str, np.ndarray] | None,
    hist: np.ndarray,
    precision: str = "float32",
) -> np.ndarray:
    """(N, S) mass scale for the window at each start: estimated from the record's last
    ``adapt_steps`` steps before it; 1 for a window at the start of the record."""
    scales = np.ones((episodes.num, len(starts)))
    for i, s in enumerate(starts):
        if s == 0:
            continue
        a = max(0, int(s) - adapt_steps)
        recent = rdata.Episodes(
            episodes.qpos[:, a : s + 1],
            episodes.qvel[:, a : s + 1],
            episodes.ctrl[:, a:s],
            episodes.control_dt,
        )
        scales[:, i] = estimate_mass_scale(scene, recent, residual, params, hist[:, a:s], precision)
    return scales


def error_vs_horizon(
    scene: Scene,
    episodes: rdata.Episodes,
    horizons: list[int],
    residual: Residual | None = None,
    params: dict[str, np.ndarray] | None = None,
) -> list[float]:
    """Open-loop qpos RMSE at each horizon (same windows rule as ``evaluate``)."""
    return [evaluate(scene, episodes, h, residual, params)["rollout_rmse"] for h in horizons]


def plot_error_vs_horizon(path, horizons, curves: dict[str, list[float]], title: str):
    """Writes a PNG of open-loop error against horizon, one line per model (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hybridsim._src.io import atomic_path

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for name, ys in curves.items():
        ax.plot(horizons, ys, marker="o", label=name)
    ax.set_xlabel("open-loop horizon (control steps)")
    ax.set_ylabel("qpos RMSE")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
