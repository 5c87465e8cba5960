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

    def __call__(self, x: jax.Array, hidden_dtype: jax.typing.DTypeLike | None = None) -> jax.Array:
        """``hidden_dtype`` (e.g. ``jnp.bfloat16``), when given, is the operand type of the
        hidden-to-hidden matmuls (accumulated in float32); the first and last layers stay
        in the input's precision."""
        lead = x.shape[:-1]
        h = x.reshape(1, -1, x.shape[-1])
        for i in range(self.num_layers):
            w = getattr(self, f"w{i}")[...]
            b = getattr(self, f"b{i}")[...]
            h = jnp.broadcast_to(h, (w.shape[0], *h.shape[1:]))
            low = hidden_dtype is not None and 0 < i < self.num_layers - 1
            h = _batched_matmul(h, w, hidden_dtype if low else None)
            h = h + b
            if i < self.num_layers - 1:
                h = jax.nn.silu(h)
        return h.reshape(h.shape[0], *lead, h.shape[-1])


def _batched_matmul(h: jax.Array, w: jax.Array, operand_dtype) -> jax.Array:
    """``(E, N, I) @ (E, I, O) -> (E, N, O)``, a plain matmul when E is 1 (faster on CPU)."""
    acc = h.dtype
    if operand_dtype is not None:
        h, w = h.astype(operand_dtype), w.astype(operand_dtype)
    if h.shape[0] == 1:
        return jnp.matmul(h[0], w[0], preferred_element_type=acc)[None]
    return jnp.einsum("eni,eio->eno", h, w, preferred_element_type=acc)
