"""The ``mjx`` backend: MJX's JAX implementation (jit, vmap, grad; any JAX device).

A thin face over ``mjx_world``, which it shares with ``warp``.
"""

from __future__ import annotations

from hybridsim._src.backends import mjx_world

NAME = "mjx"
DIFFERENTIABLE = True
TRACEABLE = True
IMPL = "jax"


def prepare(scene, batch_size, params, config):
    """See ``Backend.prepare``."""
    return mjx_world.prepare(scene, batch_size, params, config, IMPL)


def rollout(model, state, drive, learned):
    """See ``Backend.rollout``."""
    return mjx_world.rollout(model, state, drive, learned, IMPL)
