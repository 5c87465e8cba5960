"""Gymnasium adapters over hybridsim's functional envs.

- ``GymEnv``: a ``gymnasium.Env`` over one world of a functional env (NumPy float32
  observations, Python ``float`` rewards, Python ``bool`` terminated/truncated, ``Box``
  spaces, ``render_mode="rgb_array"`` through the task's ``render`` (MuJoCo Warp's batch
  renderer, task markers drawn).
- ``VectorGymEnv``: a native ``gymnasium.vector.VectorEnv`` backed by the batched simulator:
  one ``jit(vmap(step))`` call advances every world, with auto-reset inside the same jitted
  call (``AutoresetMode.SAME_STEP``: a world that ends returns its reset observation and
  its last observation in ``info["final_obs"]``).

Both put the task's metrics (``hybridsim.envs`` task ``metrics``, e.g. Reach's
``distance`` and ``success``) in the ``info`` of every step, and ``is_success`` when the
task reports ``success`` (what Stable-Baselines3's ``Monitor``/``EvalCallback`` read).
Registration sets ``spec.max_episode_steps`` to the task's default ``episode_length``.

The jitted programs live in one ``_Runner`` per (task, config), shared by every adapter
of that task, so ``gymnasium.make`` twice compiles once. ``GymEnv`` runs the env's own
``jit(reset)``/``jit(step)`` and reads the episode limit on the host; ``VectorGymEnv``
runs ``jit(vmap(step))`` with the auto-reset inside.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hybridsim._src.errors import ShapeError

RENDER_WIDTH = 160
RENDER_HEIGHT = 120

_RUNNERS: dict[tuple, _Runner] = {}
_RUNNERS_LOCK = threading.Lock()


class _Runner:
    """The jitted programs of one functional env, shared by every adapter of it.

    One world (``GymEnv``): ``reset1 = jit(env.reset)``, ``step1 = jit(env.step)``, the
    env's own functions (episode limit and flags are read on the host).

    A batch (``VectorGymEnv``): ``reset(keys (B, 2) uint32) -> state`` (leading axis B)
    and ``step(state, action (B, action_size) float32, keys (B, 2) uint32) -> (state,
    obs (B, obs) float32, reward (B,) float32, terminated (B,) bool, truncated (B,)
    bool), metrics)``. ``obs`` and ``metrics`` (the task's, (B,) leaves) are those of the
    step reached; in the returned state every world that terminated or hit
    ``episode_length`` has been reset with its key.
    """

    def __init__(self, env: Any):
        import jax
        import jax.numpy as jnp

        self.env = env

        def step(state, action, keys):
            nxt = jax.vmap(env.step)(state, action)
            terminated = nxt.done > 0
            limit = jnp.logical_or(nxt.truncation > 0, nxt.step_count >= env.episode_length)
            truncated = jnp.logical_and(limit, jnp.logical_not(terminated))
            ended = jnp.logical_or(terminated, truncated)

            def reset_ended(nxt):
                fresh = jax.vmap(env.reset)(keys)

                def pick(a, b):
                    return jnp.where(ended.reshape(ended.shape + (1,) * (a.ndim - 1)), a, b)

                return jax.tree_util.tree_map(pick, fresh, nxt)

            # Most steps end no episode: skip the batched reset then.
            out = jax.lax.cond(jnp.any(ended), reset_ended, lambda s: s, nxt)
            return out, nxt.obs, nxt.reward, terminated, truncated, nxt.metrics

        self.reset1 = jax.jit(env.reset)
        self.step1 = jax.jit(env.step)
        self.reset = jax.jit(jax.vmap(env.reset))
        self.step = jax.jit(step)


def runner_for(task_id: str, config: dict[str, Any]) -> _Runner:
    """The shared ``_Runner`` of ``hybridsim.envs.make(task_id, **config)``."""
    key = (task_id, tuple(sorted((k, repr(v)) for k, v in config.items())))
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
        if runner is None:
            from hybridsim._src.envs.registry import make

            runner = _Runner(make(task_id, **config))
            _RUNNERS[key] = runner
    return runner


def _spaces(env: Any) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    obs_space = gym.spaces.Box(-np.inf, np.inf, (int(env.observation_size),), np.float32)
    low = np.broadcast_to(np.asarray(env.action_low, np.float32), (int(env.action_size),))
    high = np.broadcast_to(np.asarray(env.action_high, np.float32), (int(env.action_size),))
    act_space = gym.spaces.Box(low.copy(), high.copy(), dtype=np.float32)
    return obs_space, act_space


def _check_action(action: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    a = np.asarray(action, dtype=np.float32)
    if a.shape != shape:
        raise ShapeError(f"{what} must have shape {shape}, got {a.shape}")
    return a


def _keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 2)`` uint32 JAX PRNG keys drawn from a NumPy generator."""
    return rng.integers(0, 2**32, size=(n, 2), dtype=np.uint32)


def jax_to_host(state: Any) -> dict[str, Any]:
    """The fields a Gymnasium step returns, copied to the host in one transfer:
    obs float32, reward, done, truncation, step_count and metrics (name -> value)."""
    import jax

    obs, reward, done, trunc, count, metrics = jax.device_get(
        (
            state.obs,
            state.reward,
            state.done,
            state.truncation,
            state.step_count,
            metric_dict(state.metrics),
        )
    )
    return {
        "obs": np.asarray(obs, np.float32),
        "reward": reward,
        "done": done,
        "truncation": trunc,
        "step_count": count,
        "metrics": metrics,
    }


def metric_dict(metrics: Any) -> dict[str, Any]:
    """A task's metrics dataclass as ``{field name: value}`` (values as they are)."""
    return {f.name: getattr(metrics, f.name) for f in dataclasses.fields(metrics)}


def step_info(metrics: dict[str, Any]) -> dict[str, Any]:
    """The ``info`` of one world's step: each metric as a Python ``float``, plus
    ``is_success`` (Python ``bool``) when the task reports ``success``."""
    info: dict[str, Any] = {k: float(v) for k, v in metrics.items()}
    if "success" in info:
        info["is_success"] = info["success"] > 0.5
    return info


def vector_step_info(metrics: dict[str, Any], num_envs: int) -> dict[str, Any]:
    """The ``info`` of a vector step, Gymnasium's vector convention: each metric as a
    ``(num_envs,)`` float32 array with its mask ``_name`` (all True), plus ``is_success``
    ``(num_envs,)`` bool when the task reports ``success``."""
    info: dict[str, Any] = {}
    every = np.ones(num_envs, bool)
    for k, v in metrics.items():
        info[k] = np.asarray(v, np.float32)
        info[f"_{k}"] = every
    if "success" in info:
        info["is_success"] = info["success"] > 0.5
        info["_is_success"] = every
    return info


def frames(env: Any, state: Any, width: int, height: int) -> np.ndarray:
    """RGB frames of ``state`` (one world or a batch): ``(..., height, width, 3)`` uint8,
    through the task's ``render`` (task markers drawn)."""
    return env.render(state, width=width, height=height)


class GymEnv(gym.Env):
    """One world of a hybridsim task as a ``gymnasium.Env``.

    Observations ``(observation_size,)`` float32; actions ``(action_size,)`` float32 in
    the task's ``[action_low, action_high]``; rewards Python ``float``; ``terminated`` is
    the task's termination (or a diverged world), ``truncated`` the episode limit
    (``episode_length`` control steps of ``control_dt`` seconds). ``render()`` returns an
    ``(height, width, 3)`` uint8 frame when ``render_mode="rgb_array"``.

    Made by ``gymnasium.make("hybridsim/<Task>-v0", **config)`` after ``import
    hybridsim.envs``; keyword arguments other than ``render_mode``, ``width`` and
    ``height`` are task config overrides (``hybridsim.envs.default_config(task)``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task_id: str,
        render_mode: str | None = None,
        width: int = RENDER_WIDTH,
        height: int = RENDER_HEIGHT,
        **config: Any,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task_id = task_id
        self._runner = runner_for(task_id, config)
        self.env = self._runner.env
        self.observation_space, self.action_space = _spaces(self.env)
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / float(self.env.control_dt))}
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = self._runner.reset1(_keys(self.np_random, 1)[0])
        return np.asarray(self._state.obs, np.float32), {}

    def step(self, action: Any):
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        a = _check_action(action, self.action_space.shape, "action")
        self._state = self._runner.step1(self._state, a)
        host = jax_to_host(self._state)
        terminated = bool(host["done"] > 0)
        truncated = not terminated and (
            bool(host["truncation"] > 0) or int(host["step_count"]) >= self.env.episode_length
        )
        info = step_info(host["metrics"])
        return host["obs"], float(host["reward"]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        return frames(self.env, self._state, self.width, self.height)


class VectorGymEnv(VectorEnv):
    """``num_envs`` worlds of a hybridsim task as a native ``gymnasium.vector.VectorEnv``.

    One ``step(actions (num_envs, action_size))`` is one jitted, vmapped call over every
    world (no Python loop over sub-environments). Auto-reset is ``SAME_STEP``: a world
    that terminates or truncates is reset inside the same call; the returned observation
    is its first one of the new episode, the last one is in ``info["final_obs"]`` (object
    array, ``None`` for worlds that did not end, mask ``info["_final_obs"]``).
    Observations ``(num_envs, observation_size)`` float32, rewards ``(num_envs,)``
    float32, terminations/truncations ``(num_envs,)`` bool.

    Made by ``gymnasium.make_vec("hybridsim/<Task>-v0", num_envs=B, **config)``.
    ``render()`` returns one ``(height, width, 3)`` uint8 frame per world (a tuple).
    ``max_episode_steps`` (what ``make_vec`` passes from the spec) sets ``episode_length``
    unless ``episode_length`` is given: the task config's own field wins.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(
        self,
        task_id: str,
        num_envs: int = 1,
        render_mode: str | None = None,
        width: int = RENDER_WIDTH,
        height: int = RENDER_HEIGHT,
        max_episode_steps: int | None = None,
        **config: Any,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if max_episode_steps is not None and "episode_length" not in config:
            config = {**config, "episode_length": int(max_episode_steps)}
        self.task_id = task_id
        self._runner = runner_for(task_id, config)
        self.env = self._runner.env
        self.num_envs = int(num_envs)
        self.single_observation_space, self.single_action_space = _spaces(self.env)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.metadata = {**self.metadata, "render_fps": round(1.0 / float(self.env.control_dt))}
        self._rng = np.random.default_rng()
        self._state = None

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        """Resets every world (or those in ``options["reset_mask"] (num_envs,) bool``).

        ``seed``: an int (world i gets keys from one generator seeded with it), a sequence
        of ``num_envs`` ints or ``None``s (one generator per world; ``None`` keeps that
        world's stream), or ``None``.
        """
        super().reset(seed=None)
        if isinstance(seed, int | np.integer):
            self._rng = np.random.default_rng(int(seed))
            self.action_space.seed(int(seed))
        elif seed is not None:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or {self.num_envs} seeds, got {len(seeds)}")
            keys = np.stack(
                [
                    _keys(np.random.default_rng(s) if s is not None else self._rng, 1)[0]
                    for s in seeds
                ]
            )
            self._state = self._runner.reset(keys)
            return np.asarray(self._state.obs, np.float32), {}
        keys = _keys(self._rng, self.num_envs)
        fresh = self._runner.reset(keys)
        mask = None if options is None else options.get("reset_mask")
        if mask is not None and self._state is not None:
            import jax
            import jax.numpy as jnp

            m = np.asarray(mask, bool)
            if m.shape != (self.num_envs,):
                raise ShapeError(f"reset_mask must have shape ({self.num_envs},), got {m.shape}")
            self._state = jax.tree_util.tree_map(
                lambda a, b: jnp.where(m.reshape(m.shape + (1,) * (a.ndim - 1)), a, b),
                fresh,
                self._state,
            )
        else:
            self._state = fresh
        return np.asarray(self._state.obs, np.float32), {}

    def step(self, actions: Any):
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        a = _check_action(actions, self.action_space.shape, "actions")
        self._state, last_obs, reward, term, trunc, metrics = self._runner.step(
            self._state, a, _keys(self._rng, self.num_envs)
        )
        terminated = np.asarray(term, bool)
        truncated = np.asarray(trunc, bool)
        info = vector_step_info(metric_dict(metrics), self.num_envs)
        ended = terminated | truncated
        if ended.any():
            last = np.asarray(last_obs, np.float32)
            final = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final[i] = last[i]
            info["final_obs"] = final
            info["_final_obs"] = ended
        obs = np.asarray(self._state.obs, np.float32)
        return obs, np.asarray(reward, np.float32), terminated, truncated, info

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        return tuple(frames(self.env, self._state, self.width, self.height))


def gym_id(task_id: str) -> str:
    """The Gymnasium id of a hybridsim task: ``"hybridsim/<task_id>-v0"``."""
    return f"hybridsim/{task_id}-v0"


def register_gym_envs(task_ids: Sequence[str]) -> list[str]:
    """Registers every task as ``hybridsim/<task>-v0`` (entry point ``GymEnv``, vector
    entry point ``VectorGymEnv``, ``kwargs={"task_id": task}``, ``max_episode_steps`` the
    task's default ``episode_length``); ids already registered are left alone. Returns the
    Gymnasium ids."""
    from hybridsim._src.envs.registry import default_config

    ids = []
    for task in task_ids:
        env_id = gym_id(task)
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=f"{__name__}:GymEnv",
                vector_entry_point=f"{__name__}:VectorGymEnv",
                kwargs={"task_id": task},
                max_episode_steps=int(default_config(task).episode_length),
            )
        ids.append(env_id)
    return ids
