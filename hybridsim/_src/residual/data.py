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
    """Recorded episodes, padded to the longest (T control steps); see the interchange
    format in ``hybridsim._src.io``.

    Episode ``i`` is valid at ``qpos[i, :L+1]``, ``qvel[i, :L+1]``, ``ctrl[i, :L]`` with
    ``L = length[i]``; what follows is padding, never read.
    """

    qpos: np.ndarray
    """(N, T+1, nq) m, rad"""
    qvel: np.ndarray
    """(N, T+1, nv) m/s, rad/s"""
    ctrl: np.ndarray
    """(N, T, nu) actuator units; ``ctrl[:, t]`` takes state t to t+1"""
    control_dt: float
    """Seconds per control step."""
    length: np.ndarray | None = None
    """(N,) int: control steps of each episode (None: every episode has T)."""
    timestep: float | None = None
    """Physics timestep (s) the data is stepped with (None: the scene's own)."""
    qpos_observed: np.ndarray | None = None
    """(nq,) bool: qpos entries that were recorded (None: all)."""
    qvel_observed: np.ndarray | None = None
    """(nv,) bool: qvel entries that were recorded (None: all)."""

    def __post_init__(self):
        n, t = self.ctrl.shape[:2]
        defaults = {
            "length": np.full(n, t, np.int64),
            "qpos_observed": np.ones(self.qpos.shape[-1], bool),
            "qvel_observed": np.ones(self.qvel.shape[-1], bool),
        }
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        object.__setattr__(self, "length", np.asarray(self.length, np.int64))

    @property
    def num(self) -> int:
        return int(self.ctrl.shape[0])

    @property
    def steps(self) -> int:
        """T: control steps of the padded arrays (the longest episode's, or more)."""
        return int(self.ctrl.shape[1])

    @property
    def longest(self) -> int:
        """Control steps of the longest episode."""
        return int(self.length.max()) if self.num else 0

    @property
    def valid(self) -> np.ndarray:
        """(N, T) bool: the control steps that belong to an episode (not padding)."""
        return np.arange(self.steps)[None, :] < self.length[:, None]

    def subset(self, idx: np.ndarray) -> Episodes:
        return dataclasses.replace(
            self,
            qpos=self.qpos[idx],
            qvel=self.qvel[idx],
            ctrl=self.ctrl[idx],
            length=self.length[idx],
        )


def episodes_from(data: dict[str, np.ndarray]) -> Episodes:
    """Episodes from interchange arrays (``load_trajectory``'s dict, or a recording's
    ``vars``); the optional keys default as the format says."""

    def opt(key, dtype):
        return np.asarray(data[key], dtype) if data.get(key) is not None else None

    return Episodes(
        qpos=np.asarray(data["qpos"], np.float64),
        qvel=np.asarray(data["qvel"], np.float64),
        ctrl=np.asarray(data["ctrl"], np.float64),
        control_dt=float(data["control_dt"]),
        length=opt("episode_len", np.int64),
        timestep=float(data["timestep"]) if data.get("timestep") is not None else None,
        qpos_observed=opt("qpos_observed", bool),
        qvel_observed=opt("qvel_observed", bool),
    )


def stepping(scene: Scene, ep: Episodes) -> tuple[Scene, int]:
    """The scene as the data is stepped (at the data's timestep, when it names one) and
    the physics substeps per control step; the control period must be a whole multiple of
    that timestep."""
    if ep.timestep is not None:
        scene = scene.with_timestep(ep.timestep)
    k = ep.control_dt / scene.timestep
    if abs(k - round(k)) > 1e-6 or round(k) < 1:
        raise DataFileError(
            f"data control_dt={ep.control_dt:g} s is not a whole multiple of scene "
            f"{scene.name!r}'s timestep {scene.timestep:g} s; import the data with "
            f"'hybridsim data import', which chooses a timestep that divides it"
        )
    return scene, int(round(k))


def window_starts(ep: Episodes, horizon: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``(episode (W,), start (W,))`` of every window of ``horizon`` control steps starting
    at t = 0, stride, 2 stride, ... of each episode while ``t + horizon <= length``."""
    eps, starts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for i, n in enumerate(ep.length):
        s = np.arange(0, int(n) - horizon + 1, stride)
        eps.append(np.full(len(s), i, np.int64))
        starts.append(s.astype(np.int64))
    return np.concatenate(eps), np.concatenate(starts)


def gather_steps(a: np.ndarray, ep_idx: np.ndarray, start: np.ndarray, count: int) -> np.ndarray:
    """``a (N, T', ...)`` at steps ``start .. start+count-1`` of episodes ``ep_idx``:
    ``(W, count, ...)``."""
    return a[ep_idx[:, None], start[:, None] + np.arange(count)[None, :]]


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
    of every episode, within each episode's length (numpy, float64)."""
    h = horizon
    if ep.longest < h:
        raise DataFileError(f"the longest episode has {ep.longest} steps; the horizon needs {h}")
    hist = histories(ep, history)
    e, s = window_starts(ep, h, max(1, h // 2))
    return Windows(
        qpos0=ep.qpos[e, s],
        qvel0=ep.qvel[e, s],
        history=hist[e, s],
        ctrl=gather_steps(ep.ctrl, e, s, h),
        qpos=gather_steps(ep.qpos, e, s + 1, h),
        qvel=gather_steps(ep.qvel, e, s + 1, h),
    )


def unobserved_joints(scene: Scene, ep: Episodes) -> list[str]:
    """Names of the joints whose positions or velocities the data does not record."""
    from hybridsim._src.datasets.names import joint_name, joint_of_qpos, joint_of_qvel

    m = scene.mj_model
    missing = {j for j, ok in zip(joint_of_qpos(m), ep.qpos_observed, strict=True) if not ok}
    missing |= {j for j, ok in zip(joint_of_qvel(m), ep.qvel_observed, strict=True) if not ok}
    return [joint_name(m, j) for j in sorted(missing)]


def observed_joints(scene: Scene, ep: Episodes) -> list[str]:
    """Names of the joints the data records in full (positions and velocities)."""
    from hybridsim._src.datasets.names import joint_name

    missing = set(unobserved_joints(scene, ep))
    names = [joint_name(scene.mj_model, j) for j in range(scene.mj_model.njnt)]
    return [n for n in names if n not in missing]
