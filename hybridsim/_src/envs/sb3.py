"""A Stable-Baselines3 ``VecEnv`` over hybridsim's native vector env.

``SB3VecEnv(task, num_envs)`` steps every world in one jitted, vmapped call
(``gym_adapter.VectorGymEnv``) and speaks SB3's protocol: ``reset() -> obs``,
``step_async(actions)``/``step_wait() -> (obs, rewards, dones, infos)``, auto-reset with
the ended episode's last observation in ``infos[i]["terminal_observation"]`` and
``infos[i]["TimeLimit.truncated"]`` for a time-limit end, the task's metrics and
``is_success`` in every ``infos[i]``::

    from stable_baselines3 import PPO
    from hybridsim import envs

    venv = envs.sb3_vec_env("Reach", num_envs=64)   # an SB3VecEnv
    PPO("MlpPolicy", venv).learn(100_000)

Needs ``stable-baselines3``; import this module lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from hybridsim._src.envs.gym_adapter import VectorGymEnv


class SB3VecEnv(VecEnv):
    """``num_envs`` worlds of hybridsim task ``task_id`` (a registered name, e.g.
    ``"Reach"``) as an SB3 ``VecEnv``; ``config`` overrides task config fields.

    Observations ``(num_envs, observation_size)`` float32, rewards ``(num_envs,)``
    float32, dones ``(num_envs,)`` bool (terminated or truncated). ``seed(s)`` seeds the
    next ``reset`` (world i from ``s + i``, SB3's convention).
    """

    def __init__(self, task_id: str, num_envs: int = 1, **config: Any):
        self.venv = VectorGymEnv(task_id, num_envs=num_envs, **config)
        self.render_mode = self.venv.render_mode
        super().__init__(
            int(num_envs), self.venv.single_observation_space, self.venv.single_action_space
        )
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        return np.array(obs)  # writable: SB3 edits its buffers in place

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, np.float32).reshape(self.venv.action_space.shape)

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("call step_async(actions) before step_wait()")
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        infos = [self._world_info(info, i) for i in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        # Writable copies: SB3 edits rewards in place (bootstrapping on timeouts).
        return np.array(obs), np.array(reward), dones, infos

    @staticmethod
    def _world_info(info: dict[str, Any], i: int) -> dict[str, Any]:
        """World ``i``'s metrics (Python floats) and ``is_success`` (Python bool) from the
        vector env's ``info``."""
        out: dict[str, Any] = {}
        for k, v in info.items():
            if k.startswith("_") or k == "final_obs":
                continue
            out[k] = bool(v[i]) if v.dtype == bool else float(v[i])
        return out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._index_list(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise AttributeError(
            f"SB3VecEnv worlds share one batched simulator; cannot set {attr_name!r} per world"
        )

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any):
        raise AttributeError(
            f"SB3VecEnv worlds share one batched simulator; no per-world {method_name!r}"
        )

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._index_list(indices))

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return [None] * self.num_envs if frames is None else list(frames)

    def _index_list(self, indices: Any) -> list[int]:
        return list(self._get_indices(indices))
