"""Scoring physics-only, system-identified, hybrid and neural models on recorded data.

- ``one_step_nmse``: from every recorded state, one control step with the recorded
  control; the mean squared error of the next state summed over dimensions, divided by
  the summed variance of the recorded one-step change; computed for positions (compared
  in velocity space) and velocities separately, and averaged. Dimensions that never move
  (objects at rest) therefore cannot dominate it.
- ``rollout_rmse``: open-loop rollouts of H control steps with the recorded controls from
  recorded states at window starts t = 0, H, 2H, ... of every episode while t + H is
  within the episode; the qpos RMSE at step H, over all windows and qpos entries. Models
  with memory read the record before the window start.

Both use every episode over its own length (``episode_len``), are computed on the
entries the data records (``qpos_observed``/``qvel_observed``), and step the physics at
the data's timestep (``data.stepping``).
"""

from __future__ import annotations

import dataclasses

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
    scene, substeps = rdata.stepping(scene, episodes)
    _check_horizon(horizon, episodes)
    m = scene.mj_model
    history = residual.config.history if residual is not None else 0
    hist = rdata.histories(episodes, history)  # (N, T+1, H, D)
    valid = episodes.valid  # (N, T): one step from every recorded state of every episode
    q0, v0 = episodes.qpos[:, :-1][valid], episodes.qvel[:, :-1][valid]
    pq, pv = _predict(
        scene,
        episodes,
        substeps,
        residual,
        params,
        q0,
        v0,
        hist[:, :-1][valid],
        episodes.ctrl[valid][:, None],
        precision,
    )
    true_q, true_v = episodes.qpos[:, 1:][valid], episodes.qvel[:, 1:][valid]
    seen = episodes.qvel_observed  # positions are compared in velocity space
    err_q, err_v = differentiate_pos(m, true_q, pq[:, 1])[:, seen], (pv[:, 1] - true_v)[:, seen]
    chg_q, chg_v = differentiate_pos(m, q0, true_q)[:, seen], (true_v - v0)[:, seen]
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
    """Open-loop qpos RMSE at step ``horizon`` (the windows rule of the module docstring),
    over the recorded qpos entries."""
    per_entry = rollout_rmse_per_entry(
        scene, episodes, horizon, residual, params, hist, precision, adapt_steps
    )
    return float(np.sqrt(np.nanmean(per_entry**2)))


def _check_horizon(horizon: int, episodes: rdata.Episodes) -> None:
    if horizon < 1 or horizon > episodes.longest:
        raise DataFileError(
            f"horizon {horizon} must be between 1 and the longest episode's "
            f"{episodes.longest} control steps"
        )


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
    as ``rollout_rmse`` (whose value is the root mean square of these); NaN for the
    entries the data does not record."""
    if adapt_steps < 0:
        raise DataFileError(f"adapt_steps must be >= 0, got {adapt_steps}")
    scene, substeps = rdata.stepping(scene, episodes)
    _check_horizon(horizon, episodes)
    history = residual.config.history if residual is not None else 0
    if hist is None:
        hist = rdata.histories(episodes, history)
    e, s = rdata.window_starts(episodes, horizon, horizon)
    wu = rdata.gather_steps(episodes.ctrl, e, s, horizon)
    target = episodes.qpos[e, s + horizon]
    batched = False
    if adapt_steps > 0 and residual is not None and residual.config.kind == "neural":
        raise ShapeError(
            "adapt_steps scales the physics' masses; the pure-neural model has none (use 0)"
        )
    if adapt_steps > 0:
        scales = window_mass_scales(
            scene, episodes, (e, s), adapt_steps, residual, params, hist, precision
        )
        params, batched = mass_params(scene, scales, params), True
    rq, _ = _predict(
        scene,
        episodes,
        substeps,
        residual,
        params,
        episodes.qpos[e, s],
        episodes.qvel[e, s],
        hist[e, s],
        wu,
        precision,
        batched,
    )
    rmse = np.sqrt(np.mean((rq[:, -1] - target) ** 2, axis=0))
    return np.where(episodes.qpos_observed, rmse, np.nan)


def window_mass_scales(
    scene: Scene,
    episodes: rdata.Episodes,
    windows: tuple[np.ndarray, np.ndarray],
    adapt_steps: int,
    residual: Residual | None,
    params: dict[str, np.ndarray] | None,
    hist: np.ndarray,
    precision: str = "float32",
) -> np.ndarray:
    """(W,) mass scale for each window ``(episode (W,), start (W,))``: estimated from the
    record's last ``adapt_steps`` steps before it; 1 for a window at the start of the
    record."""
    e, s = windows
    scales = np.ones(len(e))
    for start in np.unique(s[s > 0]):
        pick = np.flatnonzero(s == start)
        a = max(0, int(start) - adapt_steps)
        recent = dataclasses.replace(
            episodes.subset(e[pick]),
            qpos=episodes.qpos[e[pick], a : start + 1],
            qvel=episodes.qvel[e[pick], a : start + 1],
            ctrl=episodes.ctrl[e[pick], a:start],
            length=None,
        )
        scales[pick] = estimate_mass_scale(
            scene, recent, residual, params, hist[e[pick], a:start], precision
        )
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
