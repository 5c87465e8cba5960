"""Gradients through rollouts: their health, and trajectory optimisation by gradient.

**Gradient health** (``gradient_health``) of the policy objective ``J(theta)``: the mean
return of a short window of the deterministic policy from fresh resets. For each seed ``s``
the analytic gradient ``g_s = dJ_s/dtheta`` (``jax.grad`` through the physics) is taken
from its own batch of resets. Reported:

- ``norm``: ``|g|`` of the mean gradient ``g = mean_s g_s`` (exploding gradients: large);
- ``variance``: ``mean_s |g_s - g|^2 / |g|^2``, the spread across seeds relative to the
  signal (chaotic contact dynamics: >> 1);
- ``cosine``: the cosine between the first seed's ``g_1`` and a zeroth-order estimate on the
  same resets, within a random ``K``-dimensional subspace: for orthonormal directions
  ``u_k``, the analytic directional derivatives ``g_1 . u_k`` against antithetic finite
  differences ``(J_1(theta + sigma u_k) - J_1(theta - sigma u_k)) / (2 sigma)`` (evolution
  strategies with orthogonal directions; in the subspace, so that K << d suffices). 1: the
  analytic gradient points where the smoothed objective rises; ~0 or negative: it is
  uninformative (e.g. through stiff contacts).

**Trajectory optimisation** (``optimize_actions``): Adam on an open-loop action sequence
``(H, action_size)`` maximising the return of ``H`` steps from a state, actions projected
onto [-1, 1] after every step; batched states optimise one sequence per world.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.flatten_util import ravel_pytree

from hybridsim._src.envs.base import Env, EnvState
from hybridsim._src.learning.rollouts import reset_batch, rollout


@dataclasses.dataclass(frozen=True)
class GradientHealth:
    """Gradient health of a policy objective (module doc)."""

    norm: float
    """|g|: norm of the seed-mean analytic gradient (return units per parameter unit)."""
    variance: float
    """mean_s |g_s - g|^2 / |g|^2 across seeds (dimensionless; NaN with one seed)."""
    cosine: float
    """Cosine between the analytic and the zeroth-order gradient in a random subspace
    (in [-1, 1]; 1: they agree)."""

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Objective:
    """A policy objective ready to differentiate: jitted ``reset(key) -> state`` (a batch
    of ``num_envs`` fresh episodes) and ``value_and_grad(params, state) -> ((J, final
    state), dJ/dparams)`` for that batch shape. Built once per run; the trainers reuse its
    compiled functions for their gradient steps and for ``health``."""

    reset: Any
    value_and_grad: Any


def window_objective(env: Env, graphdef: Any, num_envs: int, window: int) -> Objective:
    """``J(params, state)``: the mean over ``num_envs`` envs of the return of ``window``
    steps of the policy ``graphdef``/``params`` from ``state``."""

    def objective(params, state: EnvState) -> tuple[jax.Array, EnvState]:
        final, reward, _, _ = rollout(env, graphdef, params, state, window)
        return jnp.mean(jnp.sum(reward, axis=0)), final

    return Objective(
        reset=jax.jit(lambda key: reset_batch(env, key, num_envs)),
        value_and_grad=jax.jit(jax.value_and_grad(objective, has_aux=True)),
    )


def gradient_health(
    env: Env,
    policy: nnx.Module,
    seeds: Sequence[int],
    *,
    num_envs: int = 16,
    window: int = 32,
    directions: int = 8,
    sigma: float = 0.01,
) -> GradientHealth:
    """Gradient health (module doc) of ``policy`` (an NNX module: observation ``(B,
    observation_size)`` -> action) on ``env`` (built with ``differentiable=True``):
    ``num_envs`` resets per seed, ``window`` control steps, ``directions`` (K) random
    directions with finite-difference step ``sigma`` (parameter units)."""
    graphdef, params = nnx.split(policy)
    return health(
        window_objective(env, graphdef, num_envs, window), params, seeds, directions, sigma
    )


def health(
    objective: Objective,
    params: Any,
    seeds: Sequence[int],
    directions: int = 8,
    sigma: float = 0.01,
) -> GradientHealth:
    """Gradient health of ``objective`` at ``params``: one analytic gradient per seed (its
    own resets); the zeroth-order comparison on the first seed's resets (``directions``
    antithetic pairs of ``objective.value_and_grad`` calls; its values only)."""
    theta, unravel = ravel_pytree(params)
    states, flat = [], []
    for s in seeds:
        state = objective.reset(jax.random.PRNGKey(int(s)))
        _, g = objective.value_and_grad(params, state)
        states.append(state)
        flat.append(np.asarray(ravel_pytree(g)[0], np.float64))
    flat = np.stack(flat)  # (S, d)
    g = flat.mean(axis=0)
    norm = float(np.linalg.norm(g))
    spread = float(np.mean(np.sum((flat - g) ** 2, axis=1))) if len(flat) > 1 else np.nan
    rng = np.random.default_rng(int(seeds[0]))
    u, _ = np.linalg.qr(rng.standard_normal((theta.shape[0], directions)))  # (d, K)
    fd = np.empty(directions)
    for k in range(directions):
        step = jnp.asarray(sigma * u[:, k], theta.dtype)
        up = objective.value_and_grad(unravel(theta + step), states[0])[0][0]
        down = objective.value_and_grad(unravel(theta - step), states[0])[0][0]
        fd[k] = (float(up) - float(down)) / (2 * sigma)
    analytic = u.T @ flat[0]  # (K,) directional derivatives of the first seed's J
    denom = np.linalg.norm(analytic) * np.linalg.norm(fd)
    return GradientHealth(
        norm=norm,
        variance=spread / max(norm**2, 1e-30),
        cosine=float(analytic @ fd / denom) if denom > 0 else float("nan"),
    )


def optimize_actions(
    env: Env,
    state: EnvState,
    horizon: int,
    iters: int,
    lr: float,
    init: jax.Array | None = None,
) -> jax.Array:
    """Open-loop actions maximising the return of ``horizon`` steps from ``state``.

    ``env``: built with ``differentiable=True`` (``impl="jax"``). ``state``: one env's
    state, or a batch (leading axis B, as ``jax.vmap(env.reset)`` gives). ``iters`` steps of
    Adam (learning rate ``lr``, in action units) on the summed reward (``mpc.ascend``:
    actions clipped to [-1, 1] after each, a step with a non-finite gradient skipped);
    ``init``: the starting actions (default zeros), e.g. the previous plan shifted by one
    step in MPC. Returns ``(horizon, action_size)`` float32, or
    ``(B, horizon, action_size)`` for a batch. Pure and traceable: jit it with ``env``,
    ``horizon``, ``iters`` and ``lr`` static, e.g.
    ``jax.jit(functools.partial(optimize_actions, env, horizon=H, iters=I, lr=lr))``.
    """
    from hybridsim._src.learning.mpc import ascend, sequence_return

    batched = state.obs.ndim == 2
    shape = (horizon, env.action_size)
    if init is None:
        init = jnp.zeros((state.obs.shape[0], *shape) if batched else shape, jnp.float32)

    def solve(s, a0):
        return ascend(functools.partial(sequence_return, env, s), a0, iters, lr)[0]

    init = jnp.asarray(init, jnp.float32)
    return jax.vmap(solve)(state, init) if batched else solve(state, init)
