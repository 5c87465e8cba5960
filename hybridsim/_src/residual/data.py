"""Transitions and windows cut from interchange-format trajectories, and physics targets."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.errors import DataFileError
from hybridsim._src.loader import Scene
from hybridsim._src.residual.kinematics import differentiate_pos


@dataclasses.dataclass(frozen=True)
class Episodes:
    """Recorded episodes: qpos (N, T+1, nq), qvel (N, T+1, nv), ctrl (N, T, nu)."""

    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    control_dt: float

    @property
    def num(self) -> int:
        return int(self.ctrl.shape[0])

    @property
    def steps(self) -> int:
        return int(self.ctrl.shape[1])

    def subset(self, idx: np.ndarray) -> Episodes:
        return Episodes(self.qpos[idx], self.qvel[idx], self.ctrl[idx], self.control_dt)


def episodes_from(data: dict[str, np.ndarray]) -> Episodes:
    return Episodes(
        qpos=np.asarray(data["qpos"], np.float64),
        qvel=np.asarray(data["qvel"], np.float64),
        ctrl=np.asarray(data["ctrl"], np.float64),
        control_dt=float(data["control_dt"]),
    )


def substeps_for(scene: Scene, control_dt: float) -> int:
    """Physics substeps per control step; the data's control_dt must be a multiple."""
    k = control_dt / scene.timestep
    if abs(k - round(k)) > 1e-6 or round(k) < 1:
        raise DataFileError(
            f"data control_dt={control_dt:g} s is not a whole multiple of scene "
            f"{scene.name!r}'s timestep {scene.timestep:g} s"
        )
    return int(round(k))


def histories(ep: Episodes, history: int) -> np.ndarray:
    """(N, T+1, H, nq+nv+nu): for each step t the previous H (qpos, qvel, ctrl), most recent
    first; before the record starts, the first state with zero controls."""
    n, t1 = ep.qpos.shape[:2]
    nu = ep.ctrl.shape[2]
    steps = np.concatenate(
        [ep.qpos[:, :-1], ep.qvel[:, :-1], ep.ctrl], axis=2
    )  # (N, T, D): what was known and commanded at each step
    pad = np.concatenate([ep.qpos[:, :1], ep.qvel[:, :1], np.zeros((n, 1, nu))], axis=2)
    padded = np.concatenate([np.repeat(pad, history, axis=1), steps], axis=1)  # (N, H+T, D)
    out = np.empty((n, t1, history, steps.shape[2]))
    for h in range(history):
        # at step t, entry h is the step t-1-h, which sits at index H + t - 1 - h in padded
        out[:, :, h] = padded[:, history - 1 - h : history - 1 - h + t1]
    return out


def one_step_physics(scene: Scene, ep: Episodes, substeps: int, params=None):
    """Physics-only next state from every recorded state: (N, T, nq), (N, T, nv)."""
    from hybridsim._src import sim

    n, t = ep.num, ep.steps
    model = sim.make_model(scene, n * t, backend="c", substeps=substeps, params=params)
    state = sim.init(
        model, qpos=ep.qpos[:, :-1].reshape(n * t, -1), qvel=ep.qvel[:, :-1].reshape(n * t, -1)
    )
    traj = sim.rollout(model, state, ep.ctrl.reshape(n * t, 1, -1))
    return traj.qpos[:, 1].reshape(n, t, -1), traj.qvel[:, 1].reshape(n, t, -1)


def mass_matrices(scene: Scene, qpos: np.ndarray) -> np.ndarray:
    """(..., nv, nv) joint-space inertia at each qpos (MuJoCo C)."""
    m = scene.mj_model
    return mass_and_bias(m, qpos, np.zeros((*qpos.shape[:-1], m.nv)))[0]


def mass_and_bias(
    m: mujoco.MjModel, qpos: np.ndarray, qvel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Joint-space inertia (..., nv, nv) and bias force ``qfrc_bias`` (..., nv: gravity,
    Coriolis, centrifugal) at each state (MuJoCo C)."""
    d = mujoco.MjData(m)
    q = qpos.reshape(-1, m.nq)
    v = qvel.reshape(-1, m.nv)
    mass = np.empty((q.shape[0], m.nv, m.nv))
    bias = np.empty((q.shape[0], m.nv))
    for i in range(q.shape[0]):
        d.qpos[:], d.qvel[:] = q[i], v[i]
        mujoco.mj_forward(m, d)
        mujoco.mj_fullM(m, d, mass[i])
        bias[i] = d.qfrc_bias
    lead = qpos.shape[:-1]
    return mass.reshape(*lead, m.nv, m.nv), bias.reshape(*lead, m.nv)


def targets(kind: str, scene: Scene, ep: Episodes, substeps: int, params=None) -> np.ndarray:
    """One-step regression targets (N, T, O) for a residual of this kind."""
    m = scene.mj_model
    q0, v0 = ep.qpos[:, :-1], ep.qvel[:, :-1]
    q1, v1 = ep.qpos[:, 1:], ep.qvel[:, 1:]
    if kind == "neural":
        return np.concatenate([differentiate_pos(m, q0, q1), v1 - v0], axis=-1)
    pq, pv = one_step_physics(scene, ep, substeps, params)
    if kind == "state":
        return np.concatenate([differentiate_pos(m, pq, q1), v1 - pv], axis=-1)
    # force: tau with M(q) (v1 - pv) = tau * control_dt, to first order
    mass = mass_matrices(scene, q0)
    return np.einsum("ntij,ntj->nti", mass, v1 - pv) / ep.control_dt


@pytree_dataclass
class Windows:
    """W windows of h control steps cut from recorded episodes (float32 when batched)."""

    qpos0: Any
    """(W, nq) the recorded state each window starts from."""
    qvel0: Any
    """(W, nv)"""
    history: Any
    """(W, H, nq+nv+nu) the history at the start, most recent first."""
    ctrl: Any
    """(W, h, nu) recorded controls."""
    qpos: Any
    """(W, h, nq) recorded qpos after each control step (the targets)."""
    qvel: Any
    """(W, h, nv) recorded qvel after each control step."""

    @property
    def num(self) -> int:
        return int(self.qpos0.shape[0])

    def take(self, idx: np.ndarray) -> Windows:
        """The windows ``idx`` as float32 device arrays: one batch."""
        return jax.tree.map(lambda a: jnp.asarray(a[idx], jnp.float32), self)


def cut_windows(ep: Episodes, horizon: int, history: int) -> Windows:
    """Windows of ``horizon`` control steps starting every ``max(1, horizon // 2)`` steps
    of every episode (numpy, float64)."""
    h = horizon
    if ep.steps < h:
        raise DataFileError(f"episodes have {ep.steps} steps; the horizon needs {h}")
    hist = histories(ep, history)
    starts = np.arange(0, ep.steps - h + 1, max(1, h // 2))

    def after(a):  # (N, T+1, D) -> (N * S, h, D): the h recorded steps after each start
        return np.stack([a[:, s + 1 : s + h + 1] for s in starts], 1).reshape(-1, h, a.shape[2])

    return Windows(
        qpos0=ep.qpos[:, starts].reshape(-1, ep.qpos.shape[2]),
        qvel0=ep.qvel[:, starts].reshape(-1, ep.qvel.shape[2]),
        history=hist[:, starts].reshape(-1, *hist.shape[2:]),
        ctrl=np.stack([ep.ctrl[:, s : s + h] for s in starts], 1).reshape(-1, h, ep.ctrl.shape[2]),
        qpos=after(ep.qpos),
        qvel=after(ep.qvel),
    )
