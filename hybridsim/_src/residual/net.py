"""An ensemble MLP in Flax NNX whose last layer starts at zero.

Weights carry a leading ensemble axis E, so E members run as one batched matmul and their
disagreement is a per-sample uncertainty signal.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class EnsembleMLP(nnx.Module):
    """``x (..., in_dim) -> (E, ..., out_dim)``; SiLU hidden layers, zero-initialised output."""

    def __init__(
        self, in_dim: int, out_dim: int, hidden: tuple[int, ...], ensemble: int, rngs: nnx.Rngs
    ):
        dims = (in_dim, *hidden, out_dim)
        self.num_layers = len(dims) - 1
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            last = i == self.num_layers - 1
            if last:  # an untrained residual is exactly zero: hybrid == physics
                w = jnp.zeros((ensemble, fan_in, fan_out))
            else:
                w = jax.random.normal(rngs.params(), (ensemble, fan_in, fan_out))
                w = w * jnp.sqrt(2.0 / fan_in)
            setattr(self, f"w{i}", nnx.Param(w))
            setattr(self, f"b{i}", nnx.Param(jnp.zeros((ensemble, 1, fan_out))))

    def __call__(self, x: jax.Array) -> jax.Array:
        lead = x.shape[:-1]
        h = x.reshape(1, -1, x.shape[-1])
        for i in range(self.num_layers):
            w = getattr(self, f"w{i}")[...]
            b = getattr(self, f"b{i}")[...]
            h = jnp.einsum("eni,eio->eno", jnp.broadcast_to(h, (w.shape[0], *h.shape[1:])), w)
            h = h + b
            if i < self.num_layers - 1:
                h = jax.nn.silu(h)
        return h.reshape(h.shape[0], *lead, h.shape[-1])
