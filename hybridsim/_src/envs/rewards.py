"""Reward helpers shared by the tasks: ``tolerance`` (1 inside bounds, decays outside),
``clean_action`` (what a control cost reads) and ``sample_goal`` (a goal in a box)."""

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


def clean_action(action: jax.Array) -> jax.Array:
    """The action a control cost reads: float32, non-finite entries 0, clipped to [-1, 1]."""
    return jnp.clip(jnp.nan_to_num(jnp.asarray(action, jnp.float32)), -1.0, 1.0)


def sample_goal(
    k_x: jax.Array, k_y: jax.Array, x_range: tuple[float, float], y_range: tuple[float, float]
) -> jax.Array:
    """(2,) float32 goal (m), uniform in ``x_range`` x ``y_range`` (one key per axis)."""
    return jnp.stack(
        [
            jax.random.uniform(k_x, (), minval=x_range[0], maxval=x_range[1]),
            jax.random.uniform(k_y, (), minval=y_range[0], maxval=y_range[1]),
        ]
    )
