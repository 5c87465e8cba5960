"""The one hybrid control step that every rollout, environment and baseline goes through.

A control step reads as a pipeline of pure stages::

    u, ctrl_ok = clean_controls(u)                  # non-finite controls -> 0, flagged
    qfrc, pending, carry = learned.before(...)      # learned part: forces, memory
    x = physics(x, u, qfrc)                         # `substeps` physics steps (backend)
    qpos, qvel = learned.after(pending, x)          # learned part: state correction
    status = next_status(status, ctrl_ok, state_ok(x))
    x, carry = hold(flagged, last good, new)        # flagged worlds keep their last state

``physics`` is the backend's: ``substeps`` calls of ``mjx.step`` on one world (``mjx`` and
``warp``), one ``mujoco.rollout`` call over the batch (``c``), or nothing at all for a
learned part that replaces the physics (the pure-neural baseline).

A learned part (the residual today; memory, appearance and policies later) enters through
``LearnedPart``, a static, hashable object whose traced parameters and per-world memory
travel beside it in ``Learned``. Its functions see arrays with any leading batch shape:
one world under ``vmap`` on the JAX backends, the whole batch on ``c``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import numpy as np

from hybridsim._src import health
from hybridsim._src.dataclasses import pytree_dataclass, static_field

Physics = Callable[[Any, Any, Any], Any]
"""``physics(x, u, qfrc) -> x``: advances worlds ``x`` (an object with ``qpos, qvel, act,
time, sensordata`` and ``replace``) by one control step with controls ``u (..., nu)`` and
applied generalized forces ``qfrc (..., nv)`` (N or N m; ``None``: none)."""


class LearnedPart(abc.ABC):
    """A learned part on the control step. Implementations are frozen, hashable dataclasses
    (static under ``jax.jit``); arrays they need come in as ``params`` and ``carry``."""

    replaces_physics: bool = False
    """True for a model that predicts the whole next state (no physics runs)."""
    corrects_state: bool = False
    """True when ``after`` changes the state (else it is not called)."""

    @abc.abstractmethod
    def initial_carry(self, params: Any, qpos: Any, qvel: Any) -> Any:
        """Per-world memory of worlds starting at ``qpos (..., nq)``, ``qvel (..., nv)``."""

    @abc.abstractmethod
    def before(self, params: Any, carry: Any, qpos: Any, qvel: Any, ctrl: Any) -> tuple:
        """Before the physics: ``(qfrc (..., nv) or None, pending, carry)``. ``qfrc`` is
        written into ``qfrc_applied`` for every physics substep; ``pending`` is handed to
        ``after``; ``carry`` is the updated memory."""

    @abc.abstractmethod
    def after(self, params: Any, pending: Any, qpos: Any, qvel: Any) -> tuple[Any, Any]:
        """After the physics: the corrected ``(qpos, qvel)``. On ``c`` it is called with
        NumPy float64 arrays (write it for either, as ``correct_state`` is), so that a
        correction keeps MuJoCo C's precision."""


@pytree_dataclass
class Learned:
    """A learned part with its parameters and its per-world memory."""

    params: Any
    """Traced parameters (e.g. a ``Residual``)."""
    carry: Any
    """Per-world memory, leading batch axis ``B`` (e.g. the residual's history)."""
    part: LearnedPart = static_field()


def _like(x: Any, ref: Any) -> Any:
    if isinstance(ref, np.ndarray):
        return np.asarray(x, ref.dtype)
    return x.astype(ref.dtype)


def control_step(
    physics: Physics,
    x: Any,
    status: Any,
    u: Any,
    learned: Learned | None,
    max_qvel: float,
) -> tuple[Any, Any, Learned | None]:
    """One control step of worlds ``x`` with controls ``u (..., nu)``: returns ``(x, status,
    learned)``. ``status (...,)`` int32 holds ``Status`` bits; a world already flagged, or
    flagged now, keeps its last good ``qpos, qvel, act, time, sensordata`` and memory."""
    u, ctrl_ok = health.clean_controls(u)
    qfrc, pending, carry = None, None, None
    if learned is not None:
        qfrc, pending, carry = learned.part.before(learned.params, learned.carry, x.qpos, x.qvel, u)
    new = physics(x, u, qfrc)
    if learned is not None and learned.part.corrects_state:
        q, v = learned.part.after(learned.params, pending, new.qpos, new.qvel)
        new = new.replace(qpos=_like(q, new.qpos), qvel=_like(v, new.qvel))
    healthy = health.state_ok(new.qpos, new.qvel, new.act, max_qvel)
    status = health.next_status(status, ctrl_ok, healthy)
    keep = status != 0
    new = health.hold(keep, x, new)
    if learned is not None:
        learned = learned.replace(carry=health.hold_tree(keep, learned.carry, carry))
    return new, status, learned
