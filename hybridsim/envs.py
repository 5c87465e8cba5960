"""Functional JAX environments: tasks on the bundled scenes, physics alone or hybrid.

::

    import jax
    from hybridsim import envs

    env = envs.make("Reach")                      # or envs.make("Reach", impl="warp")
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    state = jax.jit(env.step)(state, jax.numpy.zeros(env.action_size))
    state.obs, state.reward, state.done, state.metrics.distance

    batched = envs.wrap_for_training(env, batch_size=64)   # vmap + episodes + auto-reset
"""

from hybridsim._src.envs.base import (
    Env,
    EnvConfig,
    EnvState,
    NoMetrics,
    PhysicsState,
    ResetSnapshot,
)
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
    "AutoResetWrapper",
    "DomainRandomizationWrapper",
    "Env",
    "EnvConfig",
    "EnvError",
    "EnvState",
    "EpisodeWrapper",
    "NoMetrics",
    "PhysicsState",
    "RandomizeFn",
    "ResetSnapshot",
    "VmapWrapper",
    "Wrapper",
    "default_config",
    "make",
    "multi_agent_tasks",
    "register",
    "registered",
    "single_agent_tasks",
    "wrap_for_training",
]
