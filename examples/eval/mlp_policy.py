"""A small Flax NNX policy network, to save as a policy folder (``save_policy``)."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx


class MLPPolicy(nnx.Module):
    """``(B, in_dim)`` observations -> ``(B, out_dim)`` controls in [-1, 1] (tanh)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 32, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(in_dim, hidden, rngs=rngs)
        self.out = nnx.Linear(hidden, out_dim, rngs=rngs)

    def __call__(self, x):
        return jnp.tanh(self.out(jnp.tanh(self.hidden(x))))
