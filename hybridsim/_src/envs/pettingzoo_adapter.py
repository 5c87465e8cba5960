"""PettingZoo ``ParallelEnv`` over a multi-agent hybridsim task.

A multi-agent functional env steps every agent at once: ``obs (num_agents,
observation_size)``, ``action (num_agents, action_size)``, ``reward (num_agents,)``, with
one ``done``/``truncation`` for the shared scene. ``ParallelEnvAdapter`` turns that into
dicts keyed by agent name (the task's ``agents`` when it names them, else
``agent_0``, ``agent_1``, ...). The episode ends for every agent at once (termination of
the task or ``episode_length`` control steps), after which ``agents`` is empty until
``reset``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from hybridsim._src.envs.gym_adapter import _keys, frames, jax_to_host, runner_for
from hybridsim._src.errors import EnvError, ShapeError


def _agent_names(env: Any, n: int) -> list[str]:
    names = getattr(env, "agents", None) or None
    if names is None:
        return [f"agent_{i}" for i in range(n)]
    names = [str(a) for a in names]
    if len(names) != n:
        raise EnvError(f"task {env.name!r} names {len(names)} agents but observes {n}")
    return names


class ParallelEnvAdapter(ParallelEnv):
    """A multi-agent hybridsim task as a PettingZoo ``ParallelEnv``.

    Per agent: observation ``(observation_size,)`` float32 in an unbounded ``Box``, action
    ``(action_size,)`` float32 in ``[action_low, action_high]``, reward Python ``float``,
    terminated/truncated Python ``bool``. ``render()`` (``render_mode="rgb_array"``)
    returns one ``(height, width, 3)`` uint8 frame of the shared scene.

    Made by ``hybridsim.envs.parallel_env(task_id, **config)``.
    """

    metadata = {"name": "hybridsim", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        task_id: str,
        render_mode: str | None = None,
        width: int = 160,
        height: int = 120,
        **config: Any,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task_id = task_id
        self._runner = runner_for(task_id, config)
        self.env = self._runner.env
        if not getattr(self.env, "multi_agent", False):
            raise EnvError(
                f"task {task_id!r} is single-agent; use gymnasium.make('hybridsim/{task_id}-v0')"
            )
        n = int(self.env.num_agents)
        self.possible_agents = _agent_names(self.env, n)
        self.agents: list[str] = []
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.metadata = {**self.metadata, "name": f"hybridsim/{task_id}"}
        self._obs_space = gym.spaces.Box(
            -np.inf, np.inf, (int(self.env.observation_size),), np.float32
        )
        size = int(self.env.action_size)
        low = np.broadcast_to(np.asarray(self.env.action_low, np.float32), (size,)).copy()
        high = np.broadcast_to(np.asarray(self.env.action_high, np.float32), (size,)).copy()
        self._act_space = {
            a: gym.spaces.Box(low, high, dtype=np.float32) for a in self.possible_agents
        }
        self._rng = np.random.default_rng()
        self._state = None

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> gym.spaces.Box:
        return self._act_space[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(int(seed))
            for i, a in enumerate(self.possible_agents):
                self._act_space[a].seed(int(seed) + i)
        self._state = self._runner.reset1(_keys(self._rng, 1)[0])
        self.agents = list(self.possible_agents)
        obs = np.asarray(self._state.obs, np.float32)
        return {a: obs[i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        if self._state is None or not self.agents:
            raise EnvError("call reset() before step() (the episode has ended)")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise EnvError(f"actions missing for agents {missing}; expected {self.agents}")
        size = int(self.env.action_size)
        act = np.zeros((len(self.possible_agents), size), np.float32)
        for i, a in enumerate(self.possible_agents):
            if a in actions:
                v = np.asarray(actions[a], np.float32)
                if v.shape != (size,):
                    raise ShapeError(f"action of {a!r} must have shape ({size},), got {v.shape}")
                act[i] = v
        self._state = self._runner.step1(self._state, act)
        host = jax_to_host(self._state)
        terminated = bool(host["done"] > 0)
        truncated = not terminated and (
            bool(host["truncation"] > 0) or int(host["step_count"]) >= self.env.episode_length
        )
        names = self.agents
        obs = {a: host["obs"][i] for i, a in enumerate(self.possible_agents) if a in names}
        rewards = {
            a: float(host["reward"][i]) for i, a in enumerate(self.possible_agents) if a in names
        }
        terms = dict.fromkeys(names, terminated)
        truncs = dict.fromkeys(names, truncated)
        infos = {a: {} for a in names}
        if terminated or truncated:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        if self._state is None:
            raise EnvError("call reset() before render()")
        return frames(self.env, self._state, self.width, self.height)

    def close(self) -> None:
        self._state = None


def parallel_env(task_id: str, **config: Any) -> ParallelEnvAdapter:
    """A PettingZoo ``ParallelEnv`` of the multi-agent task ``task_id``
    (``hybridsim.envs.multi_agent_tasks()``); ``config``: task config overrides, plus
    ``render_mode="rgb_array"``, ``width``, ``height``."""
    return ParallelEnvAdapter(task_id, **config)
