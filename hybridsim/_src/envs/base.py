"""The functional environment API: ``EnvState``, ``EnvConfig`` and the abstract ``Env``.

Single-environment pure functions in the style of Brax and MuJoCo Playground::

    env = hybridsim.envs.make("CartpoleSwingup")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, action)          # action (action_size,)

Batch with ``jax.vmap`` (or ``VmapWrapper``). One ``step`` is one control step: the action
is mapped to the actuators' controls and held for ``substeps`` physics steps of MJX
(``impl="jax"``) or MuJoCo Warp (``impl="warp"``), optionally with a fitted residual
(``residual_dir``) running around the physics as in ``hybridsim.residual.hybrid_rollout``.

Actions live in ``[action_low, action_high]`` (``[-1, 1]`` for every bundled task) and are
clipped into it. A non-finite action entry is replaced by 0 for the physics, flags the
world ``Status.NONFINITE_CTRL`` and ends the episode (``done = 1``, ``reward = 0``, the
observation of the last good state is kept). A world whose physics diverges is flagged
``Status.DIVERGED`` and terminates the same way. The flag stays until the episode is reset.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.errors import EnvError, ShapeError
from hybridsim._src.loader import Scene, load_scene

IMPLS = ("jax", "warp")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """What every task's config holds. Task configs subclass it and add reward terms.

    Build with ``default_config(name)`` and change with ``dataclasses.replace`` or
    ``make(name, **overrides)``; never mutated.
    """

    impl: str = "jax"
    """Physics: ``"jax"`` (MJX, differentiable, any JAX device) or ``"warp"`` (MuJoCo
    Warp through MJX's FFI: the fast path on CUDA; runs slowly on the CPU)."""
    substeps: int = 1
    """Physics steps per control step (``control_dt = substeps * timestep``)."""
    timestep: float | None = None
    """Physics timestep in seconds; None: the scene's own."""
    episode_length: int = 1000
    """Control steps before truncation (applied by ``EpisodeWrapper``)."""
    residual_dir: str | None = None
    """Folder written by ``hybridsim residual fit`` (``meta.json``, ``weights.msgpack``):
    run the task on the hybrid simulator (physics plus the fitted residual, with any
    identified physical parameters). ``None``: physics alone. The env's physics then runs
    at the timestep the model was fitted at (e.g. a log imported at 30 Hz on a 5 ms
    scene: 4.76 ms; an explicit ``timestep`` that differs is an error), and ``substeps``
    must give the control period it was fitted at (7 there), or the env refuses."""
    max_qvel: float = 1e5
    """A world whose |qvel| exceeds this (rad/s or m/s) is flagged diverged and terminates."""
    differentiable: bool = False
    """Build the physics for ``jax.grad`` through ``step`` (impl ``"jax"`` only): MJX's
    constraint solver runs one fixed iteration, as ``make_model(differentiable=True)``."""

    def __post_init__(self):
        if self.impl not in IMPLS:
            raise EnvError(f"impl must be one of {IMPLS}, got {self.impl!r}")
        if self.differentiable and self.impl != "jax":
            raise EnvError(
                f"impl {self.impl!r} cannot be differentiated; use impl='jax' with "
                "differentiable=True"
            )
        if not isinstance(self.substeps, int) or self.substeps < 1:
            raise EnvError(f"substeps must be a positive int, got {self.substeps!r}")
        if not isinstance(self.episode_length, int) or self.episode_length < 1:
            raise EnvError(f"episode_length must be a positive int, got {self.episode_length!r}")
        if self.timestep is not None and not (
            isinstance(self.timestep, int | float) and 0 < self.timestep < float("inf")
        ):
            raise EnvError(f"timestep must be a positive number of seconds, got {self.timestep!r}")


@pytree_dataclass
class PhysicsState:
    """The simulated world of one environment (add a leading batch axis under vmap)."""

    qpos: jax.Array
    """(nq,) float32: generalized positions (m, rad; free joints: position + quaternion)."""
    qvel: jax.Array
    """(nv,) float32: generalized velocities (m/s, rad/s)."""
    act: jax.Array
    """(na,) float32: actuator activations."""
    time: jax.Array
    """() float32: simulation time in seconds since the reset."""
    ctrl: jax.Array
    """(nu,) float32: the controls applied during the last control step."""
    qacc_warmstart: jax.Array
    """(nv,) float32: the constraint solver's warm start (m/s^2, rad/s^2), carried so that
    an env rollout equals ``hybridsim.rollout`` on the same controls."""
    status: jax.Array
    """() int32: ``hybridsim.Status`` bit flags; non-zero terminates the episode."""
    history: jax.Array
    """(H, nq + nv + nu) float32: the residual's past (qpos, qvel, ctrl), most recent first;
    H = 0 without a residual."""


@pytree_dataclass
class NoMetrics:
    """Metrics of a task that reports none."""


@pytree_dataclass
class EnvState:
    """State of one environment: physics, the last observation/reward and episode flags.

    A frozen pytree: ``jax.jit``/``jax.vmap``/``jax.lax.scan`` carry it; change it with
    ``state.replace(...)``. Multi-agent tasks carry per-agent ``obs`` and ``reward``.
    """

    physics: PhysicsState
    """The simulated world (see ``PhysicsState``)."""
    obs: jax.Array
    """(observation_size,) float32; multi-agent: (num_agents, observation_size)."""
    reward: jax.Array
    """() float32 reward of the last step; multi-agent: (num_agents,)."""
    done: jax.Array
    """() float32: 1.0 when the episode terminated (task failure/success or a flagged
    world); truncation by the time limit is separate."""
    truncation: jax.Array
    """() float32: 1.0 when the episode was cut by the time limit (``EpisodeWrapper``)."""
    step_count: jax.Array
    """() int32: control steps since the reset."""
    key: jax.Array
    """PRNG key of this environment (as given to ``reset``), for tasks that sample."""
    task: Any
    """Per-task pytree dataclass (e.g. the reach target), fixed per episode."""
    metrics: Any
    """Per-task pytree dataclass of () float32 diagnostics (distances, success)."""
    first: Any = None
    """Set by ``AutoResetWrapper``: the state an ended episode restarts from."""

    @property
    def qpos(self) -> jax.Array:
        """(nq,) positions (shortcut for ``physics.qpos``)."""
        return self.physics.qpos

    @property
    def qvel(self) -> jax.Array:
        """(nv,) velocities (shortcut for ``physics.qvel``)."""
        return self.physics.qvel


@pytree_dataclass
class ResetSnapshot:
    """What ``AutoResetWrapper`` restores when an episode ends."""

    physics: PhysicsState
    obs: jax.Array
    task: Any
    metrics: Any


def _float():
    return jnp.float32


def _fitted_timing(config: EnvConfig, fitted: Any) -> EnvConfig:
    """The config with the physics timestep a fitted model was fitted at (when it
    recorded one)."""
    if fitted.timestep is None:
        return config
    if config.timestep is not None and abs(config.timestep - fitted.timestep) > 1e-12:
        raise EnvError(
            f"timestep={config.timestep:g} s, but the model in {config.residual_dir!r} was "
            f"fitted at {fitted.timestep:g} s x {fitted.substeps} substeps (leave timestep None)"
        )
    return dataclasses.replace(config, timestep=fitted.timestep)


class Env(abc.ABC):
    """A task on a scene: pure ``reset(key)`` and ``step(state, action)``.

    Subclasses implement ``reset``, ``step`` and ``observation_size``; they use
    ``_physics_reset``/``_physics_step``/``_finish`` so that physics, residual, health
    flags and NaN handling work the same in every task.
    """

    name: str = ""
    """The registry name of the task."""
    multi_agent: bool = False

    def __init__(self, config: EnvConfig, scene: str | Path | mujoco.MjModel | Scene):
        from hybridsim._src import sim

        scene = load_scene(scene)
        fitted = None
        if config.residual_dir is not None:
            from hybridsim._src.residual.fit import load_fitted

            fitted = load_fitted(config.residual_dir, scene)
            config = _fitted_timing(config, fitted)
        self._config = config
        self._scene = scene.with_timestep(config.timestep) if config.timestep else scene
        m = self._scene.mj_model
        if config.differentiable:  # MJX differentiates its solver only at a fixed count
            m = copy.copy(m)
            m.opt.iterations = 1
        self._mx = sim.device_model(m, config.impl)
        self._residual = None
        if fitted is not None:
            self._use_fitted(fitted)
        low, high = self._scene.ctrl_range()
        low = np.where(np.isfinite(low), low, -1.0)
        high = np.where(np.isfinite(high), high, 1.0)
        self._ctrl_mid = jnp.asarray((low + high) / 2, jnp.float32)
        self._ctrl_half = jnp.asarray((high - low) / 2, jnp.float32)
        self._ctrl_low = jnp.asarray(low, jnp.float32)
        self._ctrl_high = jnp.asarray(high, jnp.float32)

    # ----------------------------------------------------------------- construction

    def _use_fitted(self, fitted: Any) -> None:
        from hybridsim._src import sim

        if fitted.sysid:  # identified parameters, with the constants derived from them
            from hybridsim._src.params import derived_fields

            one = {k: np.asarray(v, np.float64)[None] for k, v in fitted.sysid.items()}
            one.update(derived_fields(self._scene.mj_model, one))
            fields = {k: jnp.asarray(v[0], jnp.float32) for k, v in one.items()}
            self._mx = sim.world_with_fields(self._mx, fields)
        if fitted.residual is not None:
            self.set_residual(fitted.residual)

    def set_residual(self, residual: Any) -> None:
        """Runs this env on the hybrid simulator with ``residual`` (a
        ``hybridsim.residual.Residual``); ``None`` goes back to physics alone.

        Meant for construction (``residual_dir`` in the config calls it); call it before
        jitting ``reset``/``step``.
        """
        if residual is None:
            self._residual = None
            return
        dims = residual.dims
        s = self._scene
        if residual.config.kind not in ("force", "state"):
            raise EnvError(
                f"environments run physics plus a 'force' or 'state' residual; got kind "
                f"{residual.config.kind!r} (the pure-learned baseline has no physics)"
            )
        if (s.nq, s.nv, s.nu) != (dims.nq, dims.nv, dims.nu):
            raise ShapeError(
                f"residual was made for nq={dims.nq}, nv={dims.nv}, nu={dims.nu}; scene "
                f"{s.name!r} has nq={s.nq}, nv={s.nv}, nu={s.nu}"
            )
        if abs(dims.control_dt - self.control_dt) > 1e-9:
            raise ShapeError(
                f"residual was fitted at control_dt={dims.control_dt:g} s; task {self.name!r} "
                f"steps {self.control_dt:g} s (pass substeps="
                f"{round(dims.control_dt / s.timestep)} for timestep {s.timestep:g} s)"
            )
        if dims.timestep and abs(dims.timestep - s.timestep) > 1e-12 * max(dims.timestep, 1.0):
            raise ShapeError(
                f"residual was fitted with physics timestep {dims.timestep:g} s; task "
                f"{self.name!r} steps {s.timestep:g} s (set timestep={dims.timestep!r})"
            )
        self._residual = residual

    def with_model_fields(self, fields: dict[str, jax.Array]) -> Env:
        """A shallow copy whose physics uses these MjModel field values (one world's,
        e.g. ``body_mass (nbody,)``); used by ``DomainRandomizationWrapper`` under vmap."""
        from hybridsim._src import sim

        env = copy.copy(self)
        env._mx = sim.world_with_fields(self._mx, fields)
        return env

    # ----------------------------------------------------------------- properties

    @property
    def config(self) -> EnvConfig:
        return self._config

    @property
    def scene(self) -> Scene:
        """The scene (compiled ``MjModel`` in ``scene.mj_model``)."""
        return self._scene

    @property
    def mj_model(self) -> mujoco.MjModel:
        return self._scene.mj_model

    @property
    def mjx_model(self) -> Any:
        """The device model (``mjx.Model``) the physics runs on."""
        return self._mx

    @property
    def residual(self) -> Any:
        """The ``Residual`` this env runs with, or ``None`` (physics alone)."""
        return self._residual

    @property
    def hybrid(self) -> bool:
        return self._residual is not None

    @property
    def unwrapped(self) -> Env:
        return self

    @property
    def control_dt(self) -> float:
        """Seconds per ``step``: ``substeps * timestep``."""
        return self._config.substeps * self._scene.timestep

    @property
    def episode_length(self) -> int:
        """Control steps per episode before truncation."""
        return self._config.episode_length

    @property
    def action_size(self) -> int:
        """Entries of one action (per agent for multi-agent tasks)."""
        return self._scene.nu

    @property
    def action_low(self) -> np.ndarray:
        """(action_size,) float32 lower bound of actions."""
        return -np.ones(self.action_size, np.float32)

    @property
    def action_high(self) -> np.ndarray:
        """(action_size,) float32 upper bound of actions."""
        return np.ones(self.action_size, np.float32)

    @property
    @abc.abstractmethod
    def observation_size(self) -> int:
        """Entries of one observation (per agent for multi-agent tasks)."""

    # ----------------------------------------------------------------- the API

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> EnvState:
        """A new episode. ``key``: a JAX PRNG key. Pure; jit- and vmap-able."""

    @abc.abstractmethod
    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """One control step with ``action (action_size,)`` float (multi-agent:
        ``(num_agents, action_size)``). Pure; jit- and vmap-able."""

    def render_qpos(self, state: EnvState) -> jax.Array:
        """``(..., nq)`` positions to draw (``hybridsim._src.render.render_frames``)."""
        return state.physics.qpos

    def render_mocap_pos(self, state: EnvState) -> jax.Array:
        """``(..., nmocap, 3)`` positions (m) of the scene's mocap bodies to draw (task
        markers such as the reach target); default: the first keyframe's."""
        m = self.mj_model
        d = mujoco.MjData(m)
        if m.nkey > 0:
            mujoco.mj_resetDataKeyframe(m, d, 0)
        base = jnp.asarray(d.mocap_pos, jnp.float32)
        return jnp.broadcast_to(base, state.physics.qpos.shape[:-1] + base.shape)

    def render(
        self,
        state: EnvState,
        width: int = 160,
        height: int = 120,
        camera: str | None = None,
        params: Any = None,
    ) -> np.ndarray:
        """RGB frames of ``state`` (single or batched): ``(..., height, width, 3)`` uint8,
        from MuJoCo Warp's batch renderer (CPU or CUDA), camera ``main`` by default.
        ``params``: per-frame ``WorldParams`` (one row per world of the batch), e.g. the
        randomized colours, lights and camera poses of ``DomainRandomizationWrapper``."""
        from hybridsim._src.render import render_frames

        qpos = np.asarray(self.render_qpos(state))
        lead = qpos.shape[:-1]
        mocap = None
        if self.mj_model.nmocap:
            mocap = np.asarray(self.render_mocap_pos(state))
            mocap = mocap.reshape(-1, *mocap.shape[-2:])
        frames = render_frames(
            self.scene,
            qpos.reshape(-1, qpos.shape[-1]),
            width=width,
            height=height,
            camera=camera,
            mocap_pos=mocap,
            params=params,
        )
        return frames.reshape(*lead, height, width, 3)

    # ----------------------------------------------------------------- helpers for tasks

    def _action_to_ctrl(self, action: jax.Array) -> jax.Array:
        """(nu,) controls from an action in [-1, 1]: the actuator's control range, linearly
        ([-1, 1] itself for an actuator without a range: the action is its control).
        Non-finite entries pass through so the physics flags the world."""
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        return self._ctrl_mid + self._ctrl_half * a

    def _physics_reset(
        self, qpos: jax.Array, qvel: jax.Array | None = None
    ) -> tuple[PhysicsState, Any]:
        """A PhysicsState at ``qpos (nq,)``, ``qvel (nv,)`` (default 0) and the ``mjx.Data``
        after ``mjx.forward`` (site and body positions filled in, for observations)."""
        from mujoco import mjx

        from hybridsim._src import sim

        s = self._scene
        f = _float()
        qpos = jnp.asarray(qpos, f)
        qvel = jnp.zeros(s.nv, f) if qvel is None else jnp.asarray(qvel, f)
        act = jnp.asarray(s.initial_state()[2], f)
        d = sim.world_data(
            self._mx, s.mj_model, self._config.impl, qpos, qvel, act, jnp.zeros((), f)
        )
        d = d.replace(ctrl=jnp.asarray(s.initial_ctrl(), d.ctrl.dtype))
        d = mjx.forward(self._mx, d)
        if self._residual is None:
            history = jnp.zeros((0, s.nq + s.nv + s.nu), f)
        else:
            from hybridsim._src.residual.model import initial_history

            history = initial_history(self._residual, qpos, qvel).astype(f)
        physics = PhysicsState(
            qpos=qpos,
            qvel=qvel,
            act=act,
            time=jnp.zeros((), f),
            ctrl=jnp.asarray(s.initial_ctrl(), f),
            qacc_warmstart=jnp.zeros(s.nv, f),
            status=jnp.zeros((), jnp.int32),
            history=history,
        )
        return physics, d

    def _physics_step(self, physics: PhysicsState, ctrl: jax.Array) -> tuple[PhysicsState, Any]:
        """One control step of the physics (plus residual) with ``ctrl (nu,)``; returns the
        new PhysicsState and the ``mjx.Data`` after the last substep, with its
        position-derived fields (``site_xpos``, ``xpos``, ...) recomputed for the new
        ``qpos`` (velocity-derived fields are those of the last substep)."""
        from hybridsim._src import sim

        s, cfg, f = self._scene, self._config, _float()
        d = sim.world_data(
            self._mx, s.mj_model, cfg.impl, physics.qpos, physics.qvel, physics.act, physics.time
        )
        d = d.replace(qacc_warmstart=physics.qacc_warmstart.astype(d.qacc_warmstart.dtype))
        learned = None
        if self._residual is not None:
            from hybridsim._src.control_step import Learned
            from hybridsim._src.residual.model import ResidualPart

            res = self._residual
            carry = (physics.history, jnp.zeros((), f), jnp.zeros((), jnp.int32))
            learned = Learned(params=res, carry=carry, part=ResidualPart(res.config.kind))
        nd, status, learned = sim.world_control_step(
            self._mx,
            d,
            physics.status,
            ctrl,
            learned,
            substeps=cfg.substeps,
            max_qvel=cfg.max_qvel,
            control_dt=self.control_dt,
        )
        history = physics.history if learned is None else learned.carry[0]
        # Position-derived fields (site_xpos, xpos, ...) of the returned state, not of the
        # last substep's start: observations and rewards read the state they report.
        from mujoco import mjx

        nd = mjx.kinematics(self._mx, nd)
        new = PhysicsState(
            qpos=nd.qpos.astype(f),
            qvel=nd.qvel.astype(f),
            act=nd.act.astype(f),
            time=nd.time.astype(f),
            ctrl=jnp.where(jnp.isfinite(ctrl), ctrl, 0.0).astype(f),
            qacc_warmstart=nd.qacc_warmstart.astype(f),
            status=status,
            history=history.astype(f),
        )
        return new, nd

    def _first_state(
        self, key: jax.Array, physics: PhysicsState, obs: jax.Array, task: Any, metrics: Any
    ) -> EnvState:
        f = _float()
        reward_shape = (obs.shape[0],) if self.multi_agent else ()
        return EnvState(
            physics=physics,
            obs=obs.astype(f),
            reward=jnp.zeros(reward_shape, f),
            done=jnp.zeros((), f),
            truncation=jnp.zeros((), f),
            step_count=jnp.zeros((), jnp.int32),
            key=key,
            task=task,
            metrics=metrics,
        )

    def _finish(
        self,
        state: EnvState,
        physics: PhysicsState,
        obs: jax.Array,
        reward: jax.Array,
        terminated: jax.Array,
        metrics: Any,
    ) -> EnvState:
        """The next EnvState; a flagged world terminates with reward 0 and keeps its last
        good observation."""
        f = _float()
        flagged = physics.status != 0
        obs = jnp.where(flagged, state.obs, obs.astype(f))
        reward = jnp.where(flagged, 0.0, reward).astype(f)
        done = (flagged | jnp.asarray(terminated, bool)).astype(f)
        return state.replace(
            physics=physics,
            obs=obs,
            reward=reward,
            done=done,
            step_count=state.step_count + 1,
            metrics=metrics,
        )


def site_id(m: mujoco.MjModel, name: str) -> int:
    """Id of the site ``name``; a SceneError naming the scene's sites if missing."""
    from hybridsim._src.errors import SceneError

    i = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, name)
    if i < 0:
        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_SITE, j) for j in range(m.nsite)]
        raise SceneError(f"the scene has no site {name!r}; its sites: {names}")
    return int(i)


def body_id(m: mujoco.MjModel, name: str) -> int:
    """Id of the body ``name``; a SceneError if missing."""
    from hybridsim._src.errors import SceneError

    i = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
    if i < 0:
        raise SceneError(f"the scene has no body {name!r}")
    return int(i)


class MultiAgentEnv(Env):
    """An env whose agents share one scene and one episode.

    Arrays stay typed, with the agent axis first in the order of ``agents``: ``obs
    (num_agents, observation_size)``, ``reward (num_agents,)``, ``step``'s ``action
    (num_agents, action_size)``; ``done`` and ``truncation`` are shared. ``obs_dict`` and
    ``action_array`` convert at the API boundary (dicts keyed by agent name).
    """

    multi_agent = True
    agents: tuple[str, ...] = ()
    """Agent names, in the order of the agent axis."""

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def action_size(self) -> int:
        """Entries of one agent's action."""
        return self._scene.nu // self.num_agents

    def obs_dict(self, obs: jax.Array) -> dict[str, jax.Array]:
        """``(..., num_agents, observation_size)`` -> {agent: (..., observation_size)}."""
        return {a: obs[..., i, :] for i, a in enumerate(self.agents)}

    def reward_dict(self, reward: jax.Array) -> dict[str, jax.Array]:
        """``(..., num_agents)`` -> {agent: (...)}."""
        return {a: reward[..., i] for i, a in enumerate(self.agents)}

    def action_array(self, actions: dict[str, Any]) -> jax.Array:
        """{agent: (..., action_size)} -> ``(..., num_agents, action_size)``."""
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ShapeError(f"actions are missing for agent(s) {missing}; agents: {self.agents}")
        return jnp.stack([jnp.asarray(actions[a], jnp.float32) for a in self.agents], axis=-2)
