"""Smooth reward shaping: ``tolerance`` is 1 inside bounds and decays outside."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def tolerance(
    x: jax.Array,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> jax.Array:
    """1 where ``lo <= x <= hi``; outside, decays with the distance to the bounds so that
    it equals ``value_at_margin`` at ``margin`` away. ``x`` any shape, float; same shape out.

    ``sigmoid``: ``"gaussian"`` (never reaches 0) or ``"quadratic"`` (0 beyond ``margin``).
    With ``margin == 0`` it is the indicator of the bounds.
    """
    lo, hi = bounds
    inside = (x >= lo) & (x <= hi)
    if margin <= 0:
        return inside.astype(jnp.float32)
    dist = jnp.where(x < lo, lo - x, x - hi) / margin
    if sigmoid == "gaussian":
        scale = jnp.sqrt(-2.0 * jnp.log(value_at_margin))
        val = jnp.exp(-0.5 * (dist * scale) ** 2)
    elif sigmoid == "quadratic":
        scale = jnp.sqrt(1.0 - value_at_margin)
        val = jnp.where(jnp.abs(dist * scale) < 1.0, 1.0 - (dist * scale) ** 2, 0.0)
    else:
        raise ValueError(f"sigmoid must be 'gaussian' or 'quadratic', got {sigmoid!r}")
    return jnp.where(inside, 1.0, val).astype(jnp.float32)
