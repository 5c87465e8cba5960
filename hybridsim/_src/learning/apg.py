"""Analytic policy gradients (APG): ``jax.grad`` of the return through the physics.

Each iteration rolls ``num_envs`` parallel envs (``jax.vmap``) ``window`` control steps
forward with the deterministic policy, from where the previous window ended, and takes
one Adam step on ``-mean window return`` with the gradient clipped to ``max_grad_norm``.
``window`` is the truncation length: the gradient flows through ``window`` steps and is
cut (``stop_gradient``) between windows. Every ``ceil(episode_length / window)`` windows
all envs restart from fresh resets. The gradient pass runs on the env built with
``differentiable=True`` (MJX, in the hybrid when ``TrainConfig.residual_dir`` is set),
with contacts softened by ``soft_contact``; evaluation runs the nominal env.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from hybridsim._src.learning import rollouts
from hybridsim._src.learning.common import TrainConfig, TrainResult
from hybridsim._src.learning.networks import MLPPolicy
from hybridsim._src.progress import Progress


@dataclasses.dataclass(frozen=True)
class APGConfig:
    """Hyperparameters of APG (the run itself: ``TrainConfig``)."""

    num_envs: int = 64
    """Parallel envs per gradient step."""
    window: int = 50
    """Truncation length: control steps the gradient flows through."""
    learning_rate: float = 3e-3
    max_grad_norm: float = 1.0
    """Global-norm clipping of the policy gradient."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the ``MLPPolicy``."""
    soft_contact: float = 1.0
    """Contact time constant multiplier of the gradient pass (>= 1; 1: the task's own)."""
    episode_length: int | None = None
    """Control steps per episode (training and evaluation); None: the task's."""
    eval_every: int = 10
    """Iterations between evaluations (the first and last iteration are evaluated too)."""
    eval_episodes: int = 32
    health_seeds: int = 3
    """Seeds (batches of ``num_envs`` resets) of the gradient health reported at each
    evaluation (0: not reported)."""
    health_directions: int = 4


def iterations(config: TrainConfig, num_envs: int, window: int) -> int:
    """Gradient steps that fit the budget ``config.env_steps`` (at least one)."""
    return max(1, config.env_steps // (num_envs * window))


def train(
    config: TrainConfig, progress: Progress | None = None, apg: APGConfig = APGConfig()
) -> TrainResult:
    """Trains an ``MLPPolicy`` with APG; writes ``config.out`` (``policy/``,
    ``curve.json``, ``tb/``) and returns the result (module doc)."""
    from hybridsim._src.learning.gradients import window_objective

    progress = progress or Progress(enabled=False)
    run = rollouts.RunFolder(config)
    env = rollouts.make_task_env(config, differentiable=True, episode_length=apg.episode_length)
    grad_env = rollouts.soften_contacts(env, apg.soft_contact)
    eval_env = rollouts.make_task_env(
        config, differentiable=False, episode_length=apg.episode_length
    )
    kwargs = {"in_dim": env.observation_size, "out_dim": env.action_size, "hidden": apg.hidden}
    policy = MLPPolicy(**kwargs, rngs=nnx.Rngs(config.seed))
    graphdef, params = nnx.split(policy)
    opt = optax.chain(optax.clip_by_global_norm(apg.max_grad_norm), optax.adam(apg.learning_rate))
    opt_state = opt.init(params)
    evaluate = rollouts.make_evaluate(eval_env, graphdef, apg.eval_episodes, config.seed)
    objective = window_objective(grad_env, graphdef, apg.num_envs, apg.window)
    update = _make_update(opt)

    n_iter = iterations(config, apg.num_envs, apg.window)
    per_episode = rollouts.windows_per_episode(env.episode_length, apg.window)
    key = jax.random.PRNGKey(config.seed)
    progress.say(
        f"apg on {env.name}{' (hybrid)' if env.hybrid else ''}: {n_iter} iterations of "
        f"{apg.num_envs} envs x {apg.window} steps (compiling ...)"
    )
    state = None
    for i in range(n_iter):
        if i % per_episode == 0:
            key, k = jax.random.split(key)
            state = objective.reset(k)
        (_, state), grads = objective.value_and_grad(params, state)
        params, opt_state = update(params, opt_state, grads)
        if i % apg.eval_every == 0 or i == n_iter - 1:
            env_steps = (i + 1) * apg.num_envs * apg.window
            _report(run, "apg", progress, evaluate, objective, params, env_steps, i, apg)
    nnx.update(policy, params)
    return run.finish(policy, kwargs, config.task)


def _make_update(opt: optax.GradientTransformation):
    """The jitted Adam step ``update(params, opt_state, grads) -> (params, opt_state)`` that
    ascends the return (``grads`` of the return)."""

    @jax.jit
    def update(params, opt_state, grads):
        grads = jax.tree.map(jnp.negative, grads)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return update


def _report(run, algo, progress, evaluate, objective, params, env_steps, i, cfg) -> None:
    """Evaluates ``params``, reports gradient health, appends to the curve and prints."""
    from hybridsim._src.learning.gradients import health

    mean_return, success = evaluate(params)
    point = rollouts.curve_point(env_steps, run.wall_s(), mean_return, success)
    gradient = None
    if cfg.health_seeds:
        seeds = [7919 * (i + 1) + s for s in range(cfg.health_seeds)]
        gradient = health(objective, params, seeds, cfg.health_directions).as_dict()
    run.record(point, gradient)
    progress.say(rollouts.progress_line(algo, point, gradient))
