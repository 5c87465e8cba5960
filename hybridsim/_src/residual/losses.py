"""The losses of ``fit`` and their update steps: module-level pure functions.

Everything that varies between fits (trainable parameters, optimizer state, the residual
with its normalisation, the physics model, the data) is an argument; the optimizer is a
static, hashable ``OptimizerConfig``. The jit caches are therefore keyed by shapes and
static structure only: a second fit on other data of the same shapes compiles nothing.

``trainable`` is ``{"net": nnx.State, "theta": {field: (field shape,) log-multipliers}}``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.residual.data import Windows
from hybridsim._src.residual.model import Residual, apply, hybrid_rollout
from hybridsim._src.residual.optimizer import OptimizerConfig, make_optimizer
from hybridsim._src.residual.sysid import sysid_values

MULTI_STEP_QVEL_WEIGHT = 0.1
"""Weight of the normalised qvel error against the qpos error in the multi-step loss."""


@pytree_dataclass
class StateScales:
    """Scales the multi-step errors are divided by: the data's spread per entry."""

    qpos: Any
    """(nq,) m or rad"""
    qvel: Any
    """(nv,) m/s or rad/s"""
    qpos_weight: Any
    """(nq,) 1 for recorded qpos entries, 0 for entries the data does not observe"""
    qvel_weight: Any
    """(nv,) 1 for recorded qvel entries, 0 for the others"""


def one_step_loss(trainable: Any, res: Residual, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error of the residual's outputs on targets ``y (N, O)`` from features
    ``x (N, F)``, each output divided by its scale (outputs of scale 0 count as 1; their
    targets are zero)."""
    pred = apply(res.replace(params=trainable["net"]), x)  # (E, N, O)
    scale = jnp.where(res.output_scale > 0, res.output_scale, 1.0)
    return jnp.mean(((pred - y) / scale) ** 2)


def multi_step_loss(
    trainable: Any, res: Residual | None, model: Any, scales: StateScales, w: Windows
) -> jax.Array:
    """Unrolls the hybrid (or the physics alone, ``res`` None) from each window's start over
    its controls on ``model`` (a differentiable ``mjx`` SimModel of W worlds) and returns
    the mean squared normalised qpos error plus ``MULTI_STEP_QVEL_WEIGHT`` times the qvel
    one, over the entries the data observes. ``trainable["theta"]`` scales the identified
    fields of every world."""
    from hybridsim._src import sim

    bsz = model.batch_size
    fields = {
        k: jnp.broadcast_to(v, (bsz, *v.shape))
        for k, v in sysid_values(model.scene, trainable["theta"]).items()
    }
    model = model.replace(params=fields) if fields else model
    state = sim.init(model).replace(qpos=w.qpos0, qvel=w.qvel0)
    if res is not None:
        res = res.replace(params=trainable["net"])
        traj = hybrid_rollout(model, res, state, w.ctrl, history=w.history).traj
    else:
        traj = sim.rollout(model, state, w.ctrl)
    eq = (traj.qpos[:, 1:] - w.qpos) / scales.qpos * scales.qpos_weight
    ev = (traj.qvel[:, 1:] - w.qvel) / scales.qvel * scales.qvel_weight
    return jnp.mean(eq**2) + MULTI_STEP_QVEL_WEIGHT * jnp.mean(ev**2)


def _apply_gradient(opt: OptimizerConfig, trainable, opt_state, grads):
    updates, opt_state = make_optimizer(opt).update(grads, opt_state, trainable)
    return optax.apply_updates(trainable, updates), opt_state


@functools.partial(jax.jit, static_argnames="opt")
def one_step_update(trainable, opt_state, res, x, y, *, opt: OptimizerConfig):
    """One optimizer step on ``one_step_loss``: ``(trainable, opt_state, loss)``."""
    loss, grads = jax.value_and_grad(one_step_loss)(trainable, res, x, y)
    return (*_apply_gradient(opt, trainable, opt_state, grads), loss)


@functools.partial(jax.jit, static_argnames="opt")
def multi_step_update(trainable, opt_state, res, model, scales, windows, *, opt: OptimizerConfig):
    """One optimizer step on ``multi_step_loss``: ``(trainable, opt_state, loss)``."""
    loss, grads = jax.value_and_grad(multi_step_loss)(trainable, res, model, scales, windows)
    return (*_apply_gradient(opt, trainable, opt_state, grads), loss)


one_step_loss_jit = jax.jit(one_step_loss)
multi_step_loss_jit = jax.jit(multi_step_loss)
