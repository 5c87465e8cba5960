"""The ``warp`` backend: MJX with ``impl="warp"`` (MuJoCo Warp kernels through JAX's FFI).

The fast path on CUDA; it also runs (slowly) on the CPU. Not differentiable. A thin face
over ``mjx_world``, which it shares with ``mjx``.
"""

from __future__ import annotations

from hybridsim._src.backends import mjx_world

NAME = "warp"
DIFFERENTIABLE = False
TRACEABLE = True
IMPL = "warp"


def prepare(scene, batch_size, params, config):
    """See ``Backend.prepare``."""
    return mjx_world.prepare(scene, batch_size, params, config, IMPL)


def rollout(model, state, drive, learned):
    """See ``Backend.rollout``."""
    return mjx_world.rollout(model, state, drive, learned, IMPL)
