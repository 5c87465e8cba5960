"""Short-horizon actor-critic (SHAC, Xu et al. 2022; AHAC-style windows) through the physics.

Each iteration rolls ``num_envs`` envs ``window`` (h) steps forward with the
deterministic policy from where the previous window ended and ascends, by ``jax.grad``
through the physics, the actor objective

    J = mean_envs [ sum_{t<h} gamma^t r_t + gamma^h V(s_h) ]

(rewards after an episode's end are 0, and so is ``V`` there), the critic ``V`` held fixed.
The critic then regresses, for ``critic_iters`` full-batch Adam steps, onto TD(lambda)
targets of the window's states:

    G_{h} = V(s_h),   G_t = r_t + gamma * c_t * ((1 - lambda) V(s_{t+1}) + lambda G_{t+1})

(``c_t``: 0 when the episode ended at step t). Windows, resets, the differentiable env,
soft contacts, evaluation and the run folder are as in APG (``apg`` module doc).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import EnvState
from hybridsim._src.learning import rollouts
from hybridsim._src.learning.apg import APGConfig, _make_update, _report, iterations
from hybridsim._src.learning.common import TrainConfig, TrainResult
from hybridsim._src.learning.gradients import Objective
from hybridsim._src.learning.networks import MLPPolicy, ValueNet
from hybridsim._src.progress import Progress


@pytree_dataclass
class Window:
    """One actor window of ``B`` envs and ``h`` steps, gradients stopped, for the critic."""

    final: EnvState
    """The batched state after the window (where the next window starts)."""
    obs: jax.Array
    """(h+1, B, observation_size) float32: the states' observations, s_0 ... s_h."""
    reward: jax.Array
    """(h, B) float32: rewards, 0 after an episode's end."""
    alive: jax.Array
    """(h+1, B) float32: 1 while the episode had not ended before s_t."""


@dataclasses.dataclass(frozen=True)
class SHACConfig(APGConfig):
    """Hyperparameters of SHAC (the run itself: ``TrainConfig``): APG's, for the actor
    (``window`` is h, the control steps the actor gradient flows through before the
    critic takes over), plus the critic's."""

    window: int = 32
    learning_rate: float = 2e-3
    """Actor's Adam learning rate."""
    gamma: float = 0.99
    lam: float = 0.95
    """lambda of the critic's TD(lambda) targets."""
    critic_learning_rate: float = 5e-3
    critic_iters: int = 32


def train(
    config: TrainConfig, progress: Progress | None = None, shac: SHACConfig = SHACConfig()
) -> TrainResult:
    """Trains an ``MLPPolicy`` with SHAC; writes ``config.out`` as APG does."""
    progress = progress or Progress(enabled=False)
    run = rollouts.RunFolder(config)
    env = rollouts.make_task_env(config, differentiable=True, episode_length=shac.episode_length)
    grad_env = rollouts.soften_contacts(env, shac.soft_contact)
    eval_env = rollouts.make_task_env(
        config, differentiable=False, episode_length=shac.episode_length
    )
    kwargs = {"in_dim": env.observation_size, "out_dim": env.action_size, "hidden": shac.hidden}
    rngs = nnx.Rngs(config.seed)
    policy = MLPPolicy(**kwargs, rngs=rngs)
    graphdef, params = nnx.split(policy)
    critic_def, critic = nnx.split(ValueNet(env.observation_size, shac.hidden, rngs=rngs))
    actor_opt = optax.chain(
        optax.clip_by_global_norm(shac.max_grad_norm), optax.adam(shac.learning_rate)
    )
    critic_opt = optax.chain(
        optax.clip_by_global_norm(shac.max_grad_norm), optax.adam(shac.critic_learning_rate)
    )
    actor_state, critic_state = actor_opt.init(params), critic_opt.init(critic)
    reset = jax.jit(lambda key: rollouts.reset_batch(grad_env, key, shac.num_envs))
    actor_vg = _actor_value_and_grad(grad_env, graphdef, critic_def, shac)
    update = _make_update(actor_opt)
    fit_critic = _critic_fit(critic_def, critic_opt, shac)
    evaluate = rollouts.make_evaluate(eval_env, graphdef, shac.eval_episodes, config.seed)

    n_iter = iterations(config, shac.num_envs, shac.window)
    per_episode = rollouts.windows_per_episode(env.episode_length, shac.window)
    key = jax.random.PRNGKey(config.seed)
    progress.say(
        f"shac on {env.name}{' (hybrid)' if env.hybrid else ''}: {n_iter} iterations of "
        f"{shac.num_envs} envs x {shac.window} steps (compiling ...)"
    )
    state = None
    for i in range(n_iter):
        if i % per_episode == 0:
            key, k = jax.random.split(key)
            state = reset(k)
        (_, window), grads = actor_vg(params, critic, state)
        params, actor_state = update(params, actor_state, grads)
        critic, critic_state = fit_critic(critic, critic_state, window)
        state = window.final
        if i % shac.eval_every == 0 or i == n_iter - 1:
            env_steps = (i + 1) * shac.num_envs * shac.window
            objective = Objective(reset=reset, value_and_grad=_with_final(actor_vg, critic))
            _report(run, "shac", progress, evaluate, objective, params, env_steps, i, shac)
    nnx.update(policy, params)
    return run.finish(policy, kwargs, config.task)


def _with_final(actor_vg, critic):
    """``actor_vg`` as an ``Objective.value_and_grad`` (critic fixed)."""

    def value_and_grad(params, state):
        (value, window), grads = actor_vg(params, critic, state)
        return (value, window.final), grads

    return value_and_grad


def _actor_value_and_grad(env, graphdef: Any, critic_def: Any, shac: SHACConfig):
    """Jitted ``(params, critic, state) -> ((J, Window), dJ/dparams)``."""
    h, gamma = shac.window, shac.gamma
    discount = gamma ** jnp.arange(h, dtype=jnp.float32)

    def objective(params, critic, state):
        final, reward, alive, obs = rollouts.rollout(env, graphdef, params, state, h)
        end_alive = alive[-1] * (1.0 - final.done)
        value = nnx.merge(critic_def, critic)(final.obs)
        j = jnp.mean(discount @ reward + gamma**h * end_alive * value)
        alive = jnp.concatenate([alive, end_alive[None]], axis=0)
        window = Window(final=final, obs=obs, reward=reward, alive=alive)
        return j, jax.lax.stop_gradient(window)

    return jax.jit(jax.value_and_grad(objective, has_aux=True))


def _critic_fit(critic_def: Any, opt: optax.GradientTransformation, shac: SHACConfig):
    """Jitted ``(critic, opt_state, window) -> (critic, opt_state)``: TD(lambda) targets of
    the window (module doc), then ``critic_iters`` Adam steps on their squared error."""
    gamma, lam = shac.gamma, shac.lam

    @jax.jit
    def fit(critic, opt_state, window):
        obs, reward, alive = window.obs, window.reward, window.alive
        values = nnx.merge(critic_def, critic)(obs) * alive  # (h+1, B)

        def back(g_next, t):
            r, cont, v_next = t
            g = r + gamma * cont * ((1 - lam) * v_next + lam * g_next)
            return g, g

        _, targets = jax.lax.scan(
            back, values[-1], (reward, alive[1:], values[1:]), reverse=True
        )  # (h, B)
        weight = alive[:-1]

        def loss(c):
            pred = nnx.merge(critic_def, c)(obs[:-1])
            return jnp.sum(weight * (pred - targets) ** 2) / jnp.maximum(jnp.sum(weight), 1.0)

        def it(carry, _):
            c, s = carry
            updates, s = opt.update(jax.grad(loss)(c), s, c)
            return (optax.apply_updates(c, updates), s), None

        (critic, opt_state), _ = jax.lax.scan(it, (critic, opt_state), None, shac.critic_iters)
        return critic, opt_state

    return fit
