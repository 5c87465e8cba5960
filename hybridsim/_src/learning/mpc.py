"""Model-predictive control on the world model: MPPI and gradient MPC, batched over worlds.

Two environments play two roles. The *planning env* is the model (the task on nominal
physics, or on the hybrid with a fitted residual); the *acting env* is the world the
actions are applied in (the same task: nominal physics today, a reality later). Every
control step of an episode, for each of the N episodes at once (``vmap`` over worlds):

1. copy the acting env's state into the model (the physics state as is; with a residual,
   the model's own history of observed ``(qpos, qvel, ctrl)``, pushed the way the hybrid
   pushes it);
2. improve the warm-started action sequence ``(horizon, action_size)`` on the model's
   return ``R(a) = sum_t alive_t r_t`` (rewards after a terminated step count 0);
3. apply its first action in the acting env;
4. shift the sequence one step (the last action repeated): the next step's warm start.

Planners (``improve(return_fn, mean, key) -> (mean, skipped)``):

- ``MPPIPlanner`` (model-predictive path integral, Williams et al. 2017): M sequences
  ``clip(mean + noise_std * eps, -1, 1)`` (the first with ``eps = 0``), weighted by
  ``softmax((R - max R) / (temperature * std R))`` -- the temperature is relative to the
  spread of the sampled returns, so one value serves tasks of any reward scale -- and
  the mean moves to the weighted average; ``iters`` rounds per control step.
- ``GradPlanner``: ``iters`` Adam steps on ``-R(a)`` through the differentiable model
  (``EnvConfig(impl="jax", differentiable=True)``), each projected back into [-1, 1]. A
  step whose gradient has a non-finite entry is skipped and counted
  (``MPCResult.skipped_grad_steps``).
- ``ZeroPlanner`` and ``RandomPlanner``: the baselines (zero actions; uniform actions).

The whole episode -- reset, N x steps planning and acting steps -- is one compiled
program (``lax.scan`` over control steps).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import Env, EnvState
from hybridsim._src.errors import EnvError

ReturnFn = Callable[[jax.Array], jax.Array]
"""``actions (horizon, action_size) -> () float32`` return of the sequence in the model."""


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise EnvError(f"{name} must be a positive int, got {value!r}")


def _check_positive_float(name: str, value: Any) -> None:
    if not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise EnvError(f"{name} must be a positive number, got {value!r}")


@dataclasses.dataclass(frozen=True)
class MPPIPlanner:
    """Sampling MPC: softmax-weighted average of perturbed action sequences."""

    horizon: int
    """Control steps planned ahead."""
    samples: int = 128
    """Sequences M sampled per round (the first is the current mean)."""
    iters: int = 1
    """Sampling rounds per control step."""
    noise_std: float = 0.5
    """Standard deviation of the Gaussian perturbation (action units, range [-1, 1])."""
    temperature: float = 0.1
    """Softmax temperature in units of the sampled returns' standard deviation."""

    def __post_init__(self):
        for name in ("horizon", "samples", "iters"):
            _check_positive_int(name, getattr(self, name))
        for name in ("noise_std", "temperature"):
            _check_positive_float(name, getattr(self, name))

    def improve(self, return_fn: ReturnFn, mean: jax.Array, key: jax.Array):
        def round_(mean, k):
            eps = jax.random.normal(k, (self.samples, *mean.shape), mean.dtype)
            eps = eps.at[0].set(0.0)
            candidates = jnp.clip(mean + self.noise_std * eps, -1.0, 1.0)
            returns = jax.vmap(return_fn)(candidates)  # (M,)
            scale = self.temperature * jnp.std(returns) + 1e-8
            weights = jax.nn.softmax((returns - jnp.max(returns)) / scale)
            return jnp.einsum("m,mha->ha", weights, candidates), None

        mean, _ = jax.lax.scan(round_, mean, jax.random.split(key, self.iters))
        return mean, jnp.zeros((), jnp.int32)


@dataclasses.dataclass(frozen=True)
class GradPlanner:
    """Gradient MPC: Adam on the action sequence through the differentiable model."""

    horizon: int
    """Control steps planned ahead."""
    iters: int = 10
    """Gradient steps per control step."""
    learning_rate: float = 0.1
    """Adam step size (action units)."""

    def __post_init__(self):
        _check_positive_int("horizon", self.horizon)
        _check_positive_int("iters", self.iters)
        _check_positive_float("learning_rate", self.learning_rate)

    def improve(self, return_fn: ReturnFn, mean: jax.Array, key: jax.Array):
        del key
        return ascend(return_fn, mean, self.iters, self.learning_rate)


@dataclasses.dataclass(frozen=True)
class ZeroPlanner:
    """Baseline: zero actions."""

    horizon: int = 1

    def __post_init__(self):
        _check_positive_int("horizon", self.horizon)

    def improve(self, return_fn: ReturnFn, mean: jax.Array, key: jax.Array):
        return jnp.zeros_like(mean), jnp.zeros((), jnp.int32)


@dataclasses.dataclass(frozen=True)
class RandomPlanner:
    """Baseline: actions uniform in [-1, 1]."""

    horizon: int = 1

    def __post_init__(self):
        _check_positive_int("horizon", self.horizon)

    def improve(self, return_fn: ReturnFn, mean: jax.Array, key: jax.Array):
        a = jax.random.uniform(key, mean.shape, mean.dtype, -1.0, 1.0)
        return a, jnp.zeros((), jnp.int32)


Planner = MPPIPlanner | GradPlanner | ZeroPlanner | RandomPlanner


def ascend(
    return_fn: ReturnFn, actions: jax.Array, iters: int, learning_rate: float
) -> tuple[jax.Array, jax.Array]:
    """``iters`` Adam steps maximising ``return_fn(actions)``, projected into [-1, 1]: the
    trajectory optimiser of gradient MPC and of ``gradients.optimize_actions``.

    ``actions (H, A)``; returns the improved ``(H, A)`` and the () int32 number of steps
    skipped for a non-finite gradient."""
    import optax

    opt = optax.adam(learning_rate)
    grad_fn = jax.grad(lambda a: -return_fn(a))

    def step(carry, _):
        a, opt_state = carry
        g = grad_fn(a)
        finite = jnp.all(jnp.isfinite(g))
        updates, new_opt_state = opt.update(jnp.where(finite, g, 0.0), opt_state, a)
        new_a = jnp.clip(optax.apply_updates(a, updates), -1.0, 1.0)
        a = jnp.where(finite, new_a, a)
        opt_state = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_opt_state, opt_state)
        return (a, opt_state), finite

    (actions, _), finite = jax.lax.scan(step, (actions, opt.init(actions)), None, length=iters)
    return actions, jnp.sum(~finite).astype(jnp.int32)


def sequence_return(env: Env, state: EnvState, actions: jax.Array) -> jax.Array:
    """() float32 return of ``actions (H, action_size)`` from ``state`` (one world) in
    ``env``: the sum of rewards, those after a terminated step counted 0."""

    def step(carry, a):
        s, alive, total = carry
        s = env.step(s, a)
        return (s, alive * (1.0 - s.done), total + alive * s.reward), None

    one = jnp.ones((), jnp.float32)
    (_, _, total), _ = jax.lax.scan(step, (state, one, 0.0 * one), actions)
    return total


@pytree_dataclass
class _Carry:
    """What the MPC loop carries from one control step to the next (one world)."""

    state: EnvState
    """The acting env's state."""
    plan: jax.Array
    """(H, action_size) float32: the warm-started action sequence."""
    history: jax.Array
    """(Hr, nq + nv + nu) float32: the model's residual history (Hr = 0 without one)."""
    alive: jax.Array
    """() float32: 0 once the acting episode terminated."""
    total: jax.Array
    """() float32: return so far."""
    skipped: jax.Array
    """() int32: gradient steps skipped for a non-finite gradient."""


@dataclasses.dataclass(frozen=True)
class MPCResult:
    """``run_mpc``'s episodes, one entry per episode where an array."""

    mean_return: float
    success_rate: float | None
    """Fraction of episodes whose last step is a success (None: the task has none)."""
    returns: np.ndarray
    """(N,) float64 undiscounted returns in the acting env."""
    wall_s: float
    """Seconds the compiled episodes ran (compilation excluded)."""
    compile_s: float
    """Seconds to compile the episodes (cache hits make it small)."""
    skipped_grad_steps: int
    """Gradient steps skipped over all episodes for a non-finite gradient (grad MPC)."""


def _model_history(plan_env: Env, qpos: jax.Array, qvel: jax.Array) -> jax.Array:
    """The model's residual history for a world starting at ``qpos, qvel``."""
    s = plan_env.scene
    if plan_env.residual is None:
        return jnp.zeros((0, s.nq + s.nv + s.nu), jnp.float32)
    from hybridsim._src.residual.model import initial_history

    return initial_history(plan_env.residual, qpos, qvel).astype(jnp.float32)


def _model_view(plan_env: Env, state: EnvState, history: jax.Array) -> EnvState:
    """The acting env's state as the planning model sees it: the model's own residual
    memory, and the task's state without what a reality adds (its actuators' memory)
    unless the model is that reality."""
    from hybridsim._src.envs.reality import RealityTask, RealityWrapper

    task = state.task
    if isinstance(task, RealityTask) and not isinstance(plan_env, RealityWrapper):
        task = task.inner
    return state.replace(physics=state.physics.replace(history=history), task=task)


def _check_envs(plan_env: Env, act_env: Env, planner: Planner) -> None:
    for role, env in (("planning", plan_env), ("acting", act_env)):
        if env.multi_agent:
            raise EnvError(f"MPC plans single-agent tasks; the {role} env {env.name!r} has agents")
    if plan_env.name != act_env.name:
        raise EnvError(f"planning env {plan_env.name!r} and acting env {act_env.name!r} differ")
    if abs(plan_env.control_dt - act_env.control_dt) > 1e-9:
        raise EnvError(
            f"the planning env steps {plan_env.control_dt:g} s, the acting env "
            f"{act_env.control_dt:g} s: give them the same control period"
        )
    if isinstance(planner, GradPlanner) and not plan_env.config.differentiable:
        raise EnvError(
            "gradient MPC needs a differentiable planning env: make it with impl='jax', "
            "differentiable=True"
        )


def _episodes(plan_env: Env, act_env: Env, planner: Planner):
    """The jittable ``(reset_keys (N,), plan_keys (steps, N)) -> (final _Carry (N,))``."""
    from hybridsim._src.residual.model import push_history

    shape = (planner.horizon, act_env.action_size)

    def start(key):
        state = act_env.reset(key)
        return _Carry(
            state=state,
            plan=jnp.zeros(shape, jnp.float32),
            history=_model_history(plan_env, state.qpos, state.qvel),
            alive=jnp.ones((), jnp.float32),
            total=jnp.zeros((), jnp.float32),
            skipped=jnp.zeros((), jnp.int32),
        )

    def control_step(c: _Carry, key) -> _Carry:
        s = c.state
        model_state = _model_view(plan_env, s, c.history)
        plan, skipped = planner.improve(
            lambda a: sequence_return(plan_env, model_state, a), c.plan, key
        )
        new = act_env.step(s, plan[0])
        # the model's memory holds what was commanded (as the residual's training data)
        commanded = jnp.nan_to_num(act_env._action_to_ctrl(plan[0]))
        history = push_history(c.history, s.qpos, s.qvel, commanded)
        return _Carry(
            state=new,
            plan=jnp.concatenate([plan[1:], plan[-1:]]),
            history=history,
            alive=c.alive * (1.0 - new.done),
            total=c.total + c.alive * new.reward,
            skipped=c.skipped + skipped,
        )

    def run(reset_keys, plan_keys):
        carry = jax.vmap(start)(reset_keys)

        def body(carry, keys):
            return jax.vmap(control_step)(carry, keys), None

        carry, _ = jax.lax.scan(body, carry, plan_keys)
        return carry

    return run


def run_mpc(
    plan_env: Env,
    act_env: Env,
    planner: Planner,
    episodes: int,
    steps: int | None = None,
    seed: int = 0,
) -> MPCResult:
    """Runs ``episodes`` MPC episodes of ``steps`` control steps (default: the acting env's
    episode length) in ``act_env``, planning with ``planner`` in ``plan_env``.

    ``plan_env``, ``act_env``: unwrapped single-world envs of the same task and control
    period (``hybridsim.envs.make``); for ``GradPlanner`` the planning env is made with
    ``differentiable=True``. Episodes start from ``act_env.reset`` with keys
    ``jax.random.split(PRNGKey(seed), episodes)`` (as ``hybridsim policy eval``), so
    planners compared at one seed face the same targets and initial states.
    """
    _check_positive_int("episodes", episodes)
    steps = act_env.episode_length if steps is None else steps
    _check_positive_int("steps", steps)
    _check_envs(plan_env, act_env, planner)
    root = jax.random.PRNGKey(seed)
    reset_keys = jax.random.split(root, episodes)
    plan_keys = jax.random.split(jax.random.fold_in(root, 1), (steps, episodes))
    t0 = time.perf_counter()
    lowered = jax.jit(_episodes(plan_env, act_env, planner)).lower(reset_keys, plan_keys)
    compiled = lowered.compile()
    t1 = time.perf_counter()
    final = jax.block_until_ready(compiled(reset_keys, plan_keys))
    wall = time.perf_counter() - t1
    returns = np.asarray(final.total, np.float64)
    success = getattr(final.state.metrics, "success", None)
    return MPCResult(
        mean_return=float(returns.mean()),
        success_rate=None if success is None else float(np.mean(np.asarray(success) > 0)),
        returns=returns,
        wall_s=wall,
        compile_s=t1 - t0,
        skipped_grad_steps=int(np.sum(np.asarray(final.skipped))),
    )
