"""The networks of APG and SHAC: a tanh-squashed MLP policy and an MLP value function.

Both are Flax NNX modules whose constructor arguments are JSON values, so a policy saves
as a task-policy folder (``hybridsim.evaluation.save_policy`` with ``"obs": ["task"]``)
and loads back with ``load_policy_folder``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx


class MLP(nnx.Module):
    """``in_dim -> hidden... -> out_dim``, tanh (smooth: gradients through long rollouts
    stay bounded) between layers, a linear last layer scaled by ``last_scale``."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int],
        *,
        rngs: nnx.Rngs,
        last_scale: float = 1.0,
    ):
        dims = (int(in_dim), *(int(h) for h in hidden))
        self.hidden = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:], strict=True)]
        )
        init = nnx.initializers.variance_scaling(last_scale**2, "fan_in", "truncated_normal")
        self.out = nnx.Linear(dims[-1], int(out_dim), kernel_init=init, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.hidden:
            x = jnp.tanh(layer(x))
        return self.out(x)


class MLPPolicy(nnx.Module):
    """A task policy: observation ``(B, in_dim)`` float32 -> action ``(B, out_dim)`` in
    ``(-1, 1)`` (``tanh`` of an MLP; deterministic). The default network of APG and SHAC.

    ``hidden``: widths of the hidden layers (a list in ``policy.json``).
    """

    def __init__(
        self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64), *, rngs: nnx.Rngs
    ):
        # A small last layer: initial actions near 0, away from tanh's flat ends.
        self.net = MLP(in_dim, out_dim, hidden, rngs=rngs, last_scale=0.1)

    def __call__(self, obs: jax.Array) -> jax.Array:
        return jnp.tanh(self.net(jnp.asarray(obs, jnp.float32)))


class ValueNet(nnx.Module):
    """SHAC's critic: observation ``(B, in_dim)`` -> value ``(B,)`` (expected discounted
    return, in reward units). Its last layer starts small: an untrained critic adds little
    to the actor's objective (nor a random slope)."""

    def __init__(self, in_dim: int, hidden: Sequence[int] = (64, 64), *, rngs: nnx.Rngs):
        self.net = MLP(in_dim, 1, hidden, rngs=rngs, last_scale=0.1)

    def __call__(self, obs: jax.Array) -> jax.Array:
        return self.net(jnp.asarray(obs, jnp.float32))[..., 0]


def policy_build(policy_kwargs: dict, task: str) -> dict:
    """The ``build`` of ``save_policy`` for an ``MLPPolicy`` of ``policy_kwargs`` on the
    registered ``task`` (e.g. ``"hybridsim/Reach-v0"``)."""
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in policy_kwargs.items()}
    return {
        "module": "hybridsim._src.learning.networks:MLPPolicy",
        "kwargs": kwargs,
        "obs": ["task"],
        "task": task,
    }
