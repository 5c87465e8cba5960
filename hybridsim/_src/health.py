"""World health, written once for every backend and every consumer.

A world is flagged in ``status`` (bits of ``Status``) when a control reaching it is not
finite (``NONFINITE_CTRL``) or when its state after a control step is not finite or moves
faster than ``max_qvel`` (``DIVERGED``). A flagged world holds its last good state and is
not advanced again until it is reset.

The functions take NumPy arrays (MuJoCo C) or JAX arrays (MJX, traced or not) alike, with
any leading batch shape: ``(nu,)`` for one world under ``vmap``, ``(B, nu)`` for a batch,
``(B, T, nu)`` for a whole rollout.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridsim._src.types import Status

HELD_FIELDS = ("qpos", "qvel", "act", "time", "sensordata")
"""The fields a flagged world keeps from its last good state."""


def xp_of(*arrays: Any):
    """``jax.numpy`` if any argument is a JAX array (or tracer), else ``numpy``."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def clean_controls(u: Any) -> tuple[Any, Any]:
    """``(u with non-finite entries set to 0, ok (...,) bool)`` for controls ``u (..., nu)``;
    ``ok`` is False for a world whose control had any non-finite entry."""
    xp = xp_of(u)
    finite = xp.isfinite(u)
    return xp.where(finite, u, 0.0), xp.all(finite, axis=-1)


def state_ok(qpos: Any, qvel: Any, act: Any, max_qvel: float) -> Any:
    """``(...,)`` bool: every entry of ``qpos (..., nq)``, ``qvel (..., nv)``, ``act (..., na)``
    is finite and no speed exceeds ``max_qvel`` (rad/s or m/s)."""
    xp = xp_of(qpos, qvel, act)
    finite = (
        xp.all(xp.isfinite(qpos), axis=-1)
        & xp.all(xp.isfinite(qvel), axis=-1)
        & xp.all(xp.isfinite(act), axis=-1)
    )
    speed = xp.max(xp.abs(xp.where(xp.isfinite(qvel), qvel, 0.0)), axis=-1, initial=0.0)
    return finite & (speed <= max_qvel)


def all_ok(qpos: Any, qvel: Any, act: Any, max_qvel: float) -> bool:
    """True when ``state_ok`` holds for every world and step: one whole-array check, for
    the common case in which nothing went wrong."""
    xp = xp_of(qpos, qvel, act)
    with np.errstate(invalid="ignore"):
        return bool(
            xp.isfinite(qpos).all() and xp.isfinite(act).all() and (xp.abs(qvel) <= max_qvel).all()
        )


def next_status(status: Any, ctrl_ok: Any, healthy: Any) -> Any:
    """The ``status (...,) int32`` after one control step. Only a world that was healthy
    gets a new flag: ``NONFINITE_CTRL`` if its control was bad, else ``DIVERGED`` if its
    new state is not ``healthy``."""
    xp = xp_of(status, ctrl_ok, healthy)
    fresh = status == 0
    status = status | xp.where(fresh & ~ctrl_ok, int(Status.NONFINITE_CTRL), 0)
    status = status | xp.where(fresh & ctrl_ok & ~healthy, int(Status.DIVERGED), 0)
    return status.astype(xp.int32)


def _where(keep: Any, old: Any, new: Any) -> Any:
    xp = xp_of(keep, old, new)
    keep = keep.reshape(keep.shape + (1,) * (xp.ndim(new) - keep.ndim))
    return xp.where(keep, old, new)


def hold(keep: Any, old: Any, new: Any) -> Any:
    """``new`` with the ``HELD_FIELDS`` of ``old`` where ``keep (...,)`` is True; ``old`` and
    ``new`` are any objects with those fields and a ``replace`` method (``mjx.Data``,
    ``PhysicsState``)."""
    return new.replace(**{f: _where(keep, getattr(old, f), getattr(new, f)) for f in HELD_FIELDS})


def hold_tree(keep: Any, old: Any, new: Any) -> Any:
    """Every leaf of the pytree ``new`` replaced by ``old``'s where ``keep (...,)``."""
    return jax.tree.map(lambda o, n: _where(keep, o, n), old, new)
