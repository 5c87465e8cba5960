"""Wrappers over the functional API: episodes, auto-reset, batching, domain randomization.

Typical training stack (what ``wrap_for_training`` builds)::

    env = make("Reach")
    env = EpisodeWrapper(env)                  # truncation after episode_length steps
    env = DomainRandomizationWrapper(env, randomize, batch_size=B, key=k)  # or VmapWrapper
    env = AutoResetWrapper(env)                # ended episodes restart in the same step
    state = jax.jit(env.reset)(key)            # batched: obs (B, obs_size)
    state = jax.jit(env.step)(state, actions)  # actions (B, action_size)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridsim._src.envs.base import Env, EnvState, ResetSnapshot
from hybridsim._src.errors import ShapeError
from hybridsim._src.params import WorldParams, _check_fields, derived_fields


class Wrapper(Env):
    """Delegates everything to ``env``; subclasses override ``reset``/``step``."""

    def __init__(self, env: Env):  # no Env.__init__: nothing to compile again
        self.env = env

    def __getattr__(self, name: str) -> Any:
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def unwrapped(self) -> Env:
        return self.env.unwrapped

    @property
    def config(self):
        return self.env.config

    @property
    def scene(self):
        return self.env.scene

    @property
    def mj_model(self):
        return self.env.mj_model

    @property
    def mjx_model(self):
        return self.env.mjx_model

    @property
    def residual(self):
        return self.env.residual

    @property
    def hybrid(self) -> bool:
        return self.env.hybrid

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.env.name

    @property
    def multi_agent(self) -> bool:  # type: ignore[override]
        return self.env.multi_agent

    @property
    def control_dt(self) -> float:
        return self.env.control_dt

    @property
    def episode_length(self) -> int:
        return self.env.episode_length

    @property
    def observation_size(self) -> int:
        return self.env.observation_size

    @property
    def action_size(self) -> int:
        return self.env.action_size

    @property
    def action_low(self) -> np.ndarray:
        return self.env.action_low

    @property
    def action_high(self) -> np.ndarray:
        return self.env.action_high

    def set_residual(self, residual: Any) -> None:
        self.env.set_residual(residual)

    def with_model_fields(self, fields: dict[str, jax.Array]) -> Env:
        w = copy.copy(self)
        w.env = self.env.with_model_fields(fields)
        return w

    def render_qpos(self, state: EnvState) -> jax.Array:
        return self.env.render_qpos(state)

    def render_mocap_pos(self, state: EnvState) -> jax.Array:
        return self.env.render_mocap_pos(state)

    def render(
        self, state: EnvState, width: int = 160, height: int = 120, camera=None, params=None
    ):
        return self.env.render(state, width, height, camera, params)

    def reset(self, key: jax.Array) -> EnvState:
        return self.env.reset(key)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        return self.env.step(state, action)


class EpisodeWrapper(Wrapper):
    """Sets ``truncation = 1`` once ``step_count`` reaches ``episode_length`` (default:
    the task config's). ``done`` keeps meaning terminated."""

    def __init__(self, env: Env, episode_length: int | None = None):
        super().__init__(env)
        length = env.episode_length if episode_length is None else int(episode_length)
        if length < 1:
            raise ShapeError(f"episode_length must be positive, got {episode_length}")
        self._length = length

    @property
    def episode_length(self) -> int:
        return self._length

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        state = self.env.step(state, action)
        trunc = (state.step_count >= self._length).astype(jnp.float32)
        return state.replace(truncation=trunc)


def _batch_where(mask: jax.Array, new: Any, old: Any) -> Any:
    """``where(mask, new, old)`` leaf by leaf; ``mask`` () or (B,) broadcast on the left."""

    def pick(n, o):
        m = jnp.reshape(mask, mask.shape + (1,) * (jnp.ndim(n) - mask.ndim))
        return jnp.where(m, n, o)

    return jax.tree.map(pick, new, old)


class AutoResetWrapper(Wrapper):
    """Restarts an episode in the same ``step`` that ends it (done or truncation).

    Brax-style (default): the episode restarts from the state ``reset`` produced (kept in
    ``state.first``), so e.g. a Reach target stays the same across episodes of one env;
    cheap, no reset work per step. ``full_reset=True`` instead draws a fresh episode from
    ``reset`` with a new key (new targets, new initial noise) at the cost of one reset per
    step. The returned state carries the ending step's ``reward``, ``done``,
    ``truncation`` and ``metrics``, with the observation and physics of the new episode.
    Works on single or batched (vmapped) states.
    """

    def __init__(self, env: Env, full_reset: bool = False):
        super().__init__(env)
        self._full_reset = bool(full_reset)

    def reset(self, key: jax.Array) -> EnvState:
        state = self.env.reset(key)
        first = ResetSnapshot(
            physics=state.physics, obs=state.obs, task=state.task, metrics=state.metrics
        )
        return state.replace(first=first)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        first = state.first
        state = self.env.step(state.replace(first=None), action)
        ended = (state.done > 0) | (state.truncation > 0)
        if self._full_reset:
            keys = _split_keys(state.key)
            fresh = self.env.reset(keys[..., 1, :] if _raw(state.key) else keys[..., 1])
            new_key = keys[..., 0, :] if _raw(state.key) else keys[..., 0]
            restart = ResetSnapshot(
                physics=fresh.physics, obs=fresh.obs, task=fresh.task, metrics=fresh.metrics
            )
            first = _batch_where(ended, restart, first)
            state = state.replace(key=_batch_where(ended, fresh.key, new_key))
        return state.replace(
            physics=_batch_where(ended, first.physics, state.physics),
            obs=_batch_where(ended, first.obs, state.obs),
            task=_batch_where(ended, first.task, state.task),
            step_count=jnp.where(ended, 0, state.step_count),
            first=first,
        )


def _raw(key: jax.Array) -> bool:
    """True for raw uint32 keys (``jax.random.PRNGKey``), False for typed keys."""
    return not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)


def _split_keys(key: jax.Array) -> jax.Array:
    """Splits one key or a batch of keys in two: (..., 2, [2])."""
    lead = key.shape[:-1] if _raw(key) else key.shape
    fn = jax.random.split
    for _ in lead:
        fn = jax.vmap(fn)
    return fn(key)


def _batch_keys(key: jax.Array, batch_size: int | None) -> jax.Array:
    """(B, ...) keys: ``key`` split in ``batch_size`` if it is a single key."""
    single = key.ndim == (1 if _raw(key) else 0)
    if single:
        if batch_size is None:
            raise ShapeError("a single key needs batch_size to split it into one per world")
        return jax.random.split(key, batch_size)
    if batch_size is not None and key.shape[0] != batch_size:
        raise ShapeError(f"expected {batch_size} keys, got a batch of {key.shape[0]}")
    return key


class VmapWrapper(Wrapper):
    """Batches the env with ``jax.vmap``: ``reset(key)`` takes one key (split into
    ``batch_size``) or ``(B,)`` keys; ``step`` takes ``action (B, action_size)``."""

    def __init__(self, env: Env, batch_size: int | None = None):
        super().__init__(env)
        self.batch_size = batch_size

    def reset(self, key: jax.Array) -> EnvState:
        return jax.vmap(self.env.reset)(_batch_keys(key, self.batch_size))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        return jax.vmap(self.env.step)(state, action)


RandomizeFn = Callable[[Any, jax.Array, int], WorldParams]
"""``(mj_model, key, batch_size) -> WorldParams`` with ``(B, ...)`` MjModel field arrays."""


class DomainRandomizationWrapper(Wrapper):
    """Batches the env over B worlds whose physics differ (MjModel fields per world).

    ``randomize(mj_model, key, batch_size) -> WorldParams`` (e.g. a function from
    ``hybridsim.randomize`` with its config bound, or your own) is called once here;
    ``reset``/``step`` then vmap the env over the per-world fields (``in_axes=0``) as well as
    the states, like MuJoCo Playground's randomization wrapper. ``params`` gives the
    WorldParams directly instead.
    """

    def __init__(
        self,
        env: Env,
        randomize: RandomizeFn | None = None,
        batch_size: int | None = None,
        key: jax.Array | None = None,
        params: WorldParams | dict[str, Any] | None = None,
    ):
        super().__init__(env)
        if params is None:
            if randomize is None or batch_size is None:
                raise ShapeError("give either params, or randomize and batch_size")
            key = jax.random.PRNGKey(0) if key is None else key
            params = randomize(env.mj_model, key, int(batch_size))
        fields = params.fields if isinstance(params, WorldParams) else dict(params)
        if not fields:
            raise ShapeError("domain randomization needs at least one per-world field")
        bsz = (
            batch_size if batch_size is not None else int(np.shape(next(iter(fields.values())))[0])
        )
        m = env.mj_model
        # the same checks as make_model: known per-world fields, shapes, finite values
        fields = dict(_check_fields(m, int(bsz), fields).fields)
        # each world's derived constants (subtree masses, inverse weights), as make_model does
        fields.update(derived_fields(m, fields))
        self.batch_size = int(bsz)
        self.fields = {k: jnp.asarray(v, jnp.float32) for k, v in fields.items()}
        """Field name -> (B, ...) float32 per-world values."""

    def render(
        self, state: EnvState, width: int = 160, height: int = 120, camera=None, params=None
    ):
        """Frames of the B worlds, each with its own randomized appearance (colours, lights,
        camera pose) unless ``params`` is given."""
        if params is None:
            params = WorldParams({k: np.asarray(v) for k, v in self.fields.items()})
        return self.env.render(state, width, height, camera, params)

    def reset(self, key: jax.Array) -> EnvState:
        def one(fields, k):
            return self.env.with_model_fields(fields).reset(k)

        return jax.vmap(one)(self.fields, _batch_keys(key, self.batch_size))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        def one(fields, s, a):
            return self.env.with_model_fields(fields).step(s, a)

        return jax.vmap(one)(self.fields, state, action)


def wrap_for_training(
    env: Env,
    batch_size: int,
    episode_length: int | None = None,
    randomize: RandomizeFn | None = None,
    key: jax.Array | None = None,
    full_reset: bool = False,
) -> Env:
    """Episode limit, batching over ``batch_size`` worlds (with domain randomization when
    ``randomize`` is given) and auto-reset, in that order."""
    env = EpisodeWrapper(env, episode_length)
    if randomize is not None:
        env = DomainRandomizationWrapper(env, randomize, batch_size, key)
    else:
        env = VmapWrapper(env, batch_size)
    return AutoResetWrapper(env, full_reset=full_reset)
