"""Functional JAX environments: tasks on the bundled scenes, physics alone or hybrid.

::

    import jax
    from hybridsim import envs

    env = envs.make("Reach")                      # or envs.make("Reach", impl="warp")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jax.numpy.zeros(env.action_size))
    state.obs, state.reward, state.done, state.metrics.distance

    batched = envs.wrap_for_training(env, batch_size=64)   # vmap + episodes + auto-reset

Importing this module registers every single-agent task with Gymnasium (when it is
installed: ``pip install hybridsim[envs]``) as ``hybridsim/<Task>-v0``::

    import gymnasium as gym
    import hybridsim.envs

    env = gym.make("hybridsim/Reach-v0", render_mode="rgb_array")
    vec = gym.make_vec("hybridsim/Reach-v0", num_envs=64)   # native, jit(vmap(step))
    par = hybridsim.envs.parallel_env(hybridsim.envs.multi_agent_tasks()[0])  # PettingZoo
    sb3 = hybridsim.envs.sb3_vec_env("Reach", num_envs=64)   # Stable-Baselines3 VecEnv
"""

from typing import Any as _Any

from hybridsim._src.envs.base import (
    Env,
    EnvConfig,
    EnvState,
    MultiAgentEnv,
    NoMetrics,
    PhysicsState,
    ResetSnapshot,
)
from hybridsim._src.envs.reality import RealityWrapper
from hybridsim._src.envs.registry import (
    default_config,
    make,
    multi_agent_tasks,
    register,
    registered,
    single_agent_tasks,
)
from hybridsim._src.envs.wrappers import (
    AutoResetWrapper,
    DomainRandomizationWrapper,
    EpisodeWrapper,
    RandomizeFn,
    VmapWrapper,
    Wrapper,
    wrap_for_training,
)
from hybridsim._src.errors import EnvError

__all__ = [
    "RealityWrapper",
    "AutoResetWrapper",
    "DomainRandomizationWrapper",
    "Env",
    "EnvConfig",
    "EnvError",
    "EnvState",
    "EpisodeWrapper",
    "MultiAgentEnv",
    "NoMetrics",
    "PhysicsState",
    "RandomizeFn",
    "ResetSnapshot",
    "VmapWrapper",
    "Wrapper",
    "default_config",
    "make",
    "multi_agent_tasks",
    "parallel_env",
    "register",
    "registered",
    "sb3_vec_env",
    "single_agent_tasks",
    "wrap_for_training",
]


def parallel_env(task_id: str, **config: _Any):
    """A PettingZoo ``ParallelEnv`` of the multi-agent task ``task_id`` (one of
    ``multi_agent_tasks()``); ``config``: task config overrides and ``render_mode``.
    Needs ``pettingzoo`` (``pip install hybridsim[envs]``)."""
    from hybridsim._src.envs.pettingzoo_adapter import parallel_env as _parallel_env

    return _parallel_env(task_id, **config)


def sb3_vec_env(task_id: str, num_envs: int = 1, **config: _Any):
    """A Stable-Baselines3 ``VecEnv`` of ``num_envs`` worlds of the single-agent task
    ``task_id`` over the native vector env (one jitted, vmapped call per step; auto-reset
    with ``terminal_observation``; task metrics and ``is_success`` in each info);
    ``config``: task config overrides. Needs ``stable-baselines3``."""
    from hybridsim._src.envs.sb3 import SB3VecEnv

    return SB3VecEnv(task_id, num_envs, **config)


def _register_gymnasium() -> None:
    try:
        import gymnasium  # noqa: F401
    except ImportError:  # optional: hybridsim[envs]
        return
    from hybridsim._src.envs.gym_adapter import register_gym_envs

    register_gym_envs(single_agent_tasks())


_register_gymnasium()
