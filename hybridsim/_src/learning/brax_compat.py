"""Brax on hybridsim: the JAX compatibility shim and the Brax env adapter.

- ``ensure_brax_compat()``: Brax 0.14.2's trainers call ``jax.device_put_replicated``,
  which JAX 0.10 removed. The library calls this (idempotent) right before it runs a Brax
  trainer; nothing is patched at import time.
- ``brax_env(env)``: a ``brax.envs.Env`` over one world of a hybridsim functional env.
  hybridsim's envs are already pure ``reset(key)``/``step(state, action)`` functions, so
  the adapter only renames fields: our typed ``EnvState`` rides along as Brax's
  ``pipeline_state``; Brax's own wrappers add the episode limit, auto-reset and vmap.

This module imports Brax; import it lazily (``hybridsim._src.learning.ppo`` does).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from brax.envs.base import Env as BraxBase
from brax.envs.base import State as BraxState

from hybridsim._src.envs.base import Env, EnvState
from hybridsim._src.errors import EnvError

FINAL_SUCCESS = "final_success"
"""Metric added by the adapter when the task has ``metrics.success``: the success flag on
the step that ends an episode (termination or ``episode_length``), 0 elsewhere. Summed over
an episode by Brax's wrappers it is the episode's success at its last step, so Brax's
``eval/episode_final_success`` is the success rate (``TaskWorld``'s definition)."""


def ensure_brax_compat() -> None:
    """Gives JAX 0.10 the ``jax.device_put_replicated`` Brax 0.14.2 calls: stack the value
    once per device (``jax.pmap`` shards a leading device axis). No-op when JAX has it."""
    try:
        jax.device_put_replicated  # noqa: B018 - probing a removed attribute
    except AttributeError:
        jax.device_put_replicated = _device_put_replicated


def _device_put_replicated(x: Any, devices: list) -> Any:
    """``x`` with a leading axis of ``len(devices)`` copies, leaf by leaf."""
    return jax.tree.map(lambda a: jnp.stack([jnp.asarray(a)] * len(devices)), x)


def _metrics(env: Env, s: EnvState) -> dict[str, jax.Array]:
    """The task's metrics as Brax wants them (name -> () float32), plus ``FINAL_SUCCESS``
    when the task reports success."""
    out = {k: jnp.asarray(v, jnp.float32) for k, v in dataclasses.asdict(s.metrics).items()}
    if "success" in out:
        ended = (s.done > 0) | (s.step_count >= env.episode_length)
        out[FINAL_SUCCESS] = jnp.where(ended, out["success"], 0.0)
    return out


class BraxEnv(BraxBase):
    """One world of the hybridsim env ``env`` as a ``brax.envs.Env`` (pure, unbatched).

    ``obs (observation_size,)`` float32, ``reward ()`` and ``done ()`` (termination only:
    Brax's ``EpisodeWrapper`` adds the time limit) are the env's; ``metrics`` are the task's
    metrics by field name (see ``FINAL_SUCCESS``); ``pipeline_state`` is the ``EnvState``.
    """

    def __init__(self, env: Env):
        self.env = env

    def reset(self, rng: jax.Array) -> BraxState:
        s = self.env.reset(rng)
        return BraxState(
            pipeline_state=s,
            obs=s.obs,
            reward=s.reward,
            done=s.done,
            metrics=_metrics(self.env, s),
        )

    def step(self, state: BraxState, action: jax.Array) -> BraxState:
        s = self.env.step(state.pipeline_state, action)
        # Keep what Brax's wrappers put in metrics: the scan carry's structure.
        metrics = {**state.metrics, **_metrics(self.env, s)}
        return state.replace(
            pipeline_state=s, obs=s.obs, reward=s.reward, done=s.done, metrics=metrics
        )

    @property
    def observation_size(self) -> int:
        return int(self.env.observation_size)

    @property
    def action_size(self) -> int:
        return int(self.env.action_size)

    @property
    def backend(self) -> str:
        return "mjx"


def brax_env(env: Env) -> BraxEnv:
    """A ``brax.envs.Env`` over the hybridsim functional env ``env`` (single world)."""
    if env.multi_agent:
        raise EnvError(f"task {env.name!r} is multi-agent; Brax's trainers need a single agent")
    return BraxEnv(env)
