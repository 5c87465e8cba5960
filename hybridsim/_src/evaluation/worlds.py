"""Worlds a policy is evaluated in, closed loop: nominal physics, the hybrid, a task.

A world runs ``policy(obs: Observation) -> ctrl (N, nu)`` for ``steps`` control steps from
N initial states and returns a trajectory with NumPy arrays ``qpos (N, T+1, nq)``,
``qvel (N, T+1, nv)``, ``ctrl (N, T, nu)``, ``status (N,)`` and ``control_dt`` (s). Every
world satisfies the ``World`` protocol, so ``evaluate_policies`` runs any of them, and the
synthetic reality's ``RealityWorld`` too.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hybridsim._src.errors import PolicyError
from hybridsim._src.loader import Scene
from hybridsim._src.types import Observation, Policy, Trajectory


@runtime_checkable
class World(Protocol):
    """Something a policy runs in closed loop."""

    name: str
    """What the world is, for tables and reports: ``"physics"``, ``"hybrid"``, ..."""
    control_dt: float
    """Seconds per control step."""

    def run(
        self, policy: Policy, qpos0: np.ndarray, qvel0: np.ndarray, steps: int, seed: int
    ) -> Any:
        """``steps`` control steps of ``policy`` from ``qpos0 (N, nq)``, ``qvel0 (N, nv)``
        (``seed`` for worlds that sample); a trajectory of NumPy arrays (module doc)."""


def _numpy(traj: Trajectory) -> Trajectory:
    """The trajectory with NumPy arrays (JAX ones come back from ``mjx``/``warp``)."""
    import jax

    return jax.tree.map(np.asarray, traj)


@dataclasses.dataclass(frozen=True)
class PhysicsWorld:
    """Nominal physics: the scene as it is, ``substeps`` physics steps per control step,
    optionally with identified physical parameters ``params`` (MjModel field -> value of
    the field's own shape, as ``Fitted.sysid``)."""

    scene: Scene
    substeps: int = 1
    backend: str = "c"
    params: dict[str, np.ndarray] | None = None
    name: str = "physics"

    @property
    def control_dt(self) -> float:
        return self.substeps * self.scene.timestep

    def run(
        self, policy: Policy, qpos0: np.ndarray, qvel0: np.ndarray, steps: int, seed: int = 0
    ) -> Trajectory:
        from hybridsim._src import sim

        model = sim.make_model(
            self.scene,
            len(qpos0),
            backend=self.backend,
            substeps=self.substeps,
            params=_per_world(self.params, len(qpos0)),
        )
        state = sim.init(model, qpos=qpos0, qvel=qvel0)
        return _numpy(sim.rollout(model, state, policy=policy, steps=steps))


def _per_world(params: dict[str, np.ndarray] | None, n: int) -> dict[str, np.ndarray] | None:
    if not params:
        return None
    return {k: np.broadcast_to(v, (n, *np.shape(v))) for k, v in params.items()}


class HybridWorld:
    """Physics plus a fitted residual (``load_fitted``), stepped as it was fitted: the
    scene at ``fitted.timestep`` with ``fitted.substeps`` per control step, with the
    identified parameters. Named ``"hybrid"``; ``"neural"`` for a pure-neural residual
    (no physics, no parameters) and ``"sysid"`` for a fit of parameters only."""

    def __init__(self, scene: Scene, fitted: Any, backend: str = "c"):
        self.fitted = fitted
        self.backend = backend
        self.scene = scene.with_timestep(fitted.timestep) if fitted.timestep else scene
        res = fitted.residual
        if fitted.substeps is not None:
            self.substeps = int(fitted.substeps)
        elif res is not None:
            self.substeps = max(1, round(res.dims.control_dt / self.scene.timestep))
        else:
            self.substeps = 1
        kind = None if res is None else res.config.kind
        self.name = {None: "sysid", "neural": "neural"}.get(kind, "hybrid")
        self.params = None if kind == "neural" else (fitted.sysid or None)

    @property
    def control_dt(self) -> float:
        return self.substeps * self.scene.timestep

    def run(
        self, policy: Policy, qpos0: np.ndarray, qvel0: np.ndarray, steps: int, seed: int = 0
    ) -> Trajectory:
        from hybridsim._src import sim
        from hybridsim._src.residual.model import hybrid_rollout

        n = len(qpos0)
        model = sim.make_model(
            self.scene,
            n,
            backend=self.backend,
            substeps=self.substeps,
            params=_per_world(self.params, n),
        )
        state = sim.init(model, qpos=qpos0, qvel=qvel0)
        if self.fitted.residual is None:
            return _numpy(sim.rollout(model, state, policy=policy, steps=steps))
        out = hybrid_rollout(model, self.fitted.residual, state, policy=policy, steps=steps)
        return _numpy(out.traj)


@dataclasses.dataclass(frozen=True)
class TaskTrajectory:
    """A task's closed-loop episodes: the World trajectory fields plus the task's own
    ``reward (N, T)`` (zero after an episode ends), ``success (N,)`` (``metrics.success``
    at the last step, NaN when the task reports none) and ``done (N,)``."""

    qpos: np.ndarray
    qvel: np.ndarray
    ctrl: np.ndarray
    status: np.ndarray
    reward: np.ndarray
    success: np.ndarray
    done: np.ndarray
    control_dt: float


def task_return(traj: TaskTrajectory) -> np.ndarray:
    """The score of a task episode: its return, the sum of the task's rewards ``(N,)``."""
    return np.sum(traj.reward, axis=1)


class TaskWorld:
    """A registered task (``hybridsim.envs.make(name)``) run closed loop on its own physics.

    Episodes start from ``env.reset(key)`` with keys split from ``seed`` (the task draws
    its own targets and initial states; ``qpos0``/``qvel0`` give only the number N). The
    policy sees an ``Observation`` of the env's physics state (``qpos``, ``qvel``, ``time``;
    ``sensordata`` is ``(N, 0)``: tasks do not carry sensor values), as NumPy arrays, and
    its controls are mapped linearly from the actuators' control ranges to the task's
    actions in [-1, 1]. A task policy (``policy.is_task_policy``, e.g. a saved APG/SHAC/PPO
    policy) instead gets the env's observation ``(N, observation_size)`` and its output is
    the action ``(N, action_size)``; ``ctrl`` records the controls that action maps to.
    Score episodes with ``task_return``.
    """

    def __init__(self, task: str, **overrides: Any):
        import jax

        from hybridsim._src.envs.registry import make

        self.env = make(_task_name(task), **overrides)
        self.name = f"task {self.env.name}"
        self.control_dt = float(self.env.control_dt)
        self._reset = jax.jit(jax.vmap(self.env.reset))
        self._step = jax.jit(jax.vmap(self.env.step))
        low, high = self.env.scene.ctrl_range()
        finite = np.isfinite(low) & np.isfinite(high)
        self._mid = np.where(finite, (low + high) / 2, 0.0)
        self._half = np.where(finite, (high - low) / 2, 1.0)

    def run(
        self, policy: Policy, qpos0: np.ndarray, qvel0: np.ndarray, steps: int, seed: int = 0
    ) -> TaskTrajectory:
        import jax

        from hybridsim._src.backends.base import policy_controls

        n, nu = len(qpos0), self.env.scene.nu
        task_policy = bool(getattr(policy, "is_task_policy", False))
        trained_on = getattr(policy, "task", None)
        if task_policy and trained_on and _task_name(trained_on) != self.env.name:
            raise PolicyError(
                f"the task policy {getattr(policy, 'path', policy)!r} was trained on "
                f"{trained_on!r}, not on task {self.env.name!r}"
            )
        state = self._reset(jax.random.split(jax.random.PRNGKey(seed), n))
        qpos, qvel, ctrl, reward = [np.asarray(state.qpos, np.float64)], [], [], []
        qvel.append(np.asarray(state.qvel, np.float64))
        done = np.zeros(n, bool)
        for _ in range(steps):
            obs = Observation(
                qpos=qpos[-1],
                qvel=qvel[-1],
                time=np.asarray(state.physics.time, np.float64),
                sensordata=np.zeros((n, 0)),
            )
            if task_policy:
                action = np.asarray(policy_controls(n, nu, policy, state.obs), np.float64)
                u = self._mid + self._half * np.clip(action, -1.0, 1.0)
            else:
                u = np.asarray(policy_controls(n, nu, policy, obs), np.float64)
                action = (u - self._mid) / self._half
            state = self._step(state, action.astype(np.float32))
            reward.append(np.where(done, 0.0, np.asarray(state.reward, np.float64)))
            done |= np.asarray(state.done) > 0
            qpos.append(np.asarray(state.qpos, np.float64))
            qvel.append(np.asarray(state.qvel, np.float64))
            ctrl.append(u)
        success = getattr(state.metrics, "success", None)
        return TaskTrajectory(
            qpos=np.stack(qpos, 1),
            qvel=np.stack(qvel, 1),
            ctrl=np.stack(ctrl, 1),
            status=np.asarray(state.physics.status),
            reward=np.stack(reward, 1),
            success=np.full(n, np.nan) if success is None else np.asarray(success, np.float64),
            done=done,
            control_dt=self.control_dt,
        )


def _task_name(task: str) -> str:
    """``"hybridsim/Reach-v0"`` or ``"Reach"`` -> ``"Reach"``."""
    name = task.removeprefix("hybridsim/")
    if name.endswith("-v0"):
        name = name[: -len("-v0")]
    return name
