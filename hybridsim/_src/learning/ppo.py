"""PPO through Brax's trainer: the model-free baseline, on nominal physics or the hybrid.

``train(config)`` runs ``brax.training.agents.ppo.train`` on the task's functional env
(``brax_compat.brax_env``; the hybrid when ``config.residual_dir``), records a ``CurvePoint``
at each of Brax's evaluations (deterministic policy, ``num_eval_envs`` episodes of the
task's ``episode_length``), and saves the trained policy as a task policy: an NNX
``BraxPPOPolicy`` whose action is the mode of Brax's ``normal_tanh`` distribution, i.e.
``tanh(mean)``, with Brax's running observation normalisation folded in::

    action = tanh(MLP((obs - obs_mean) / obs_std)[:action_size])

It writes ``config.out/policy/`` (the policy folder), ``config.out/curve.json`` and
TensorBoard scalars ``return`` and ``success_rate`` against env steps in ``config.out/tb``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from hybridsim._src.errors import EnvError, PolicyError
from hybridsim._src.learning.common import CurvePoint, TrainConfig, TrainResult
from hybridsim._src.progress import Progress


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Brax PPO's hyperparameters (the names of ``brax.training.agents.ppo.train``).

    One training iteration takes ``batch_size * num_minibatches * unroll_length`` env steps
    across ``num_envs`` parallel envs. The defaults are those of ``examples/train_reach.py``.
    """

    num_envs: int = 256
    batch_size: int = 256
    unroll_length: int = 10
    num_minibatches: int = 8
    num_updates_per_batch: int = 4
    learning_rate: float = 1e-3
    entropy_cost: float = 1e-3
    discounting: float = 0.97
    normalize_observations: bool = True
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value MLPs (swish activations)."""
    num_evals: int = 8
    """Evaluations (curve points), the one before training included; fewer when the
    budget allows fewer iterations."""
    num_eval_envs: int = 128
    """Episodes per evaluation."""

    @property
    def steps_per_iteration(self) -> int:
        """Env steps of one Brax training iteration."""
        return self.batch_size * self.num_minibatches * self.unroll_length

    def __post_init__(self):
        if (self.batch_size * self.num_minibatches) % self.num_envs:
            raise EnvError(
                f"batch_size * num_minibatches ({self.batch_size * self.num_minibatches}) "
                f"must be a multiple of num_envs ({self.num_envs})"
            )
        if self.num_evals < 2:
            raise EnvError(f"num_evals must be at least 2, got {self.num_evals}")


class ObsNorm(nnx.Variable):
    """Brax's running observation statistics (not trained by gradient)."""


class BraxPPOPolicy(nnx.Module):
    """Brax PPO's deterministic policy as a task policy: observation ``(B, in_dim)``
    float32 -> action ``(B, out_dim)`` in ``(-1, 1)``.

    ``tanh`` of the Gaussian mean of Brax's policy MLP (swish between ``hidden`` layers)
    applied to ``(obs - obs_mean) / obs_std``. Build from trained Brax parameters with
    ``policy_from_brax``.
    """

    def __init__(
        self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64), *, rngs: nnx.Rngs
    ):
        dims = (int(in_dim), *(int(h) for h in hidden), int(out_dim))
        self.obs_mean = ObsNorm(jnp.zeros(dims[0], jnp.float32))
        self.obs_std = ObsNorm(jnp.ones(dims[0], jnp.float32))
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:], strict=True)]
        )

    def __call__(self, obs: jax.Array) -> jax.Array:
        x = (jnp.asarray(obs, jnp.float32) - self.obs_mean[...]) / self.obs_std[...]
        for layer in self.layers[:-1]:
            x = jax.nn.swish(layer(x))
        return jnp.tanh(self.layers[-1](x))


def policy_from_brax(
    params: Any, in_dim: int, out_dim: int, hidden: Sequence[int]
) -> BraxPPOPolicy:
    """The ``BraxPPOPolicy`` of Brax PPO's ``params = (normalizer, policy, value)``.

    The policy MLP's last layer outputs ``2 * out_dim`` numbers (mean, pre-softplus std);
    only the mean half is kept. Without normalisation Brax's normalizer state still holds
    mean 0 and std 1 (it is only not applied), so the identity is copied then.
    """
    normalizer, policy, _ = params
    module = BraxPPOPolicy(in_dim, out_dim, hidden, rngs=nnx.Rngs(0))
    module.obs_mean[...] = jnp.asarray(normalizer.mean, jnp.float32)
    module.obs_std[...] = jnp.asarray(normalizer.std, jnp.float32)
    dense = policy["params"]
    if len(dense) != len(module.layers):
        raise PolicyError(
            f"Brax policy has {len(dense)} layers, expected {len(module.layers)} (hidden={hidden})"
        )
    for i, layer in enumerate(module.layers):
        kernel = jnp.asarray(dense[f"hidden_{i}"]["kernel"], jnp.float32)
        bias = jnp.asarray(dense[f"hidden_{i}"]["bias"], jnp.float32)
        if i == len(module.layers) - 1:
            kernel, bias = kernel[:, :out_dim], bias[:out_dim]
        layer.kernel[...] = kernel
        layer.bias[...] = bias
    return module


def run_brax_ppo(
    env: Any, config: TrainConfig, ppo: PPOConfig, on_eval: Callable[[int, dict], None]
) -> tuple[Callable, Any]:
    """Brax's PPO on the hybridsim env ``env``; ``on_eval(env_steps, metrics)`` at each of
    Brax's evaluations. Returns Brax's ``(make_policy, params)``."""
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as brax_ppo

    from hybridsim._src.learning.brax_compat import brax_env, ensure_brax_compat

    ensure_brax_compat()
    iterations = config.env_steps // ppo.steps_per_iteration
    if iterations < 1:
        raise EnvError(
            f"env_steps={config.env_steps} is below one PPO iteration "
            f"({ppo.steps_per_iteration} env steps = batch_size * num_minibatches * "
            "unroll_length)"
        )
    network_factory = functools.partial(
        ppo_networks.make_ppo_networks,
        policy_hidden_layer_sizes=ppo.hidden,
        value_hidden_layer_sizes=ppo.hidden,
    )
    make_policy, params, _ = brax_ppo.train(
        environment=brax_env(env),
        num_timesteps=config.env_steps,
        num_envs=ppo.num_envs,
        episode_length=env.episode_length,
        batch_size=ppo.batch_size,
        unroll_length=ppo.unroll_length,
        num_minibatches=ppo.num_minibatches,
        num_updates_per_batch=ppo.num_updates_per_batch,
        learning_rate=ppo.learning_rate,
        entropy_cost=ppo.entropy_cost,
        discounting=ppo.discounting,
        normalize_observations=ppo.normalize_observations,
        num_evals=min(ppo.num_evals, iterations + 1),
        num_eval_envs=ppo.num_eval_envs,
        deterministic_eval=True,
        network_factory=network_factory,
        seed=config.seed,
        progress_fn=on_eval,
    )
    return make_policy, params


def curve_point(env_steps: int, wall_s: float, metrics: dict) -> CurvePoint:
    """A ``CurvePoint`` from Brax's evaluation metrics (``eval/episode_reward``, and
    ``eval/episode_final_success`` when the task reports success)."""
    from hybridsim._src.learning.brax_compat import FINAL_SUCCESS

    success = metrics.get(f"eval/episode_{FINAL_SUCCESS}")
    return CurvePoint(
        env_steps=int(env_steps),
        wall_s=float(wall_s),
        mean_return=float(metrics["eval/episode_reward"]),
        success_rate=None if success is None else float(success),
    )


def progress_line(point: CurvePoint) -> str:
    """``ppo steps 163,840  return -41.20  success 0.31`` (the APG/SHAC line format)."""
    line = f"ppo steps {point.env_steps:,}  return {point.mean_return:.2f}"
    if point.success_rate is not None:
        line += f"  success {point.success_rate:.2f}"
    return line


def _check_out(out: Path) -> None:
    """Refuses an ``out`` that holds a finished run (a policy); an interrupted run (no
    policy yet) restarts."""
    policy = out / "policy"
    if policy.exists() and (not policy.is_dir() or any(policy.iterdir())):
        raise PolicyError(
            f"{str(out)!r} already holds a trained policy; give an empty or new --out"
        )


def train(
    config: TrainConfig, progress: Progress | None = None, ppo: PPOConfig | None = None
) -> TrainResult:
    """Trains a task policy with Brax's PPO for ``config.env_steps`` env steps (Brax
    rounds up to whole iterations per evaluation) and writes ``config.out`` (module doc).
    ``progress`` prints a line at the start and at each evaluation (``progress_line``);
    ``ppo``: hyperparameters (``PPOConfig()``)."""
    from tensorboardX import SummaryWriter

    from hybridsim._src.envs.gym_adapter import gym_id
    from hybridsim._src.envs.registry import make
    from hybridsim._src.evaluation.saved_policy import save_policy
    from hybridsim._src.evaluation.worlds import _task_name
    from hybridsim._src.io import atomic_path

    if config.algo != "ppo":
        raise EnvError(f"ppo.train got a config for algo {config.algo!r}")
    ppo = PPOConfig() if ppo is None else ppo
    progress = progress or Progress(enabled=False)
    out = Path(config.out)
    _check_out(out)
    name = _task_name(config.task)
    env = make(name, residual_dir=config.residual_dir) if config.residual_dir else make(name)
    world = "hybrid" if config.residual_dir else "physics"
    progress.say(
        f"ppo on {name} ({world}): {config.env_steps:,} env steps, {ppo.num_envs} envs; "
        "Brax compiles its programs first"
    )
    curve: list[CurvePoint] = []
    writer = SummaryWriter(str(out / "tb"))

    def on_eval(env_steps: int, metrics: dict) -> None:
        point = curve_point(env_steps, time.perf_counter() - t0, metrics)
        curve.append(point)
        writer.add_scalar("return", point.mean_return, point.env_steps)
        if point.success_rate is not None:
            writer.add_scalar("success_rate", point.success_rate, point.env_steps)
        writer.flush()
        progress.say(progress_line(point))

    t0 = time.perf_counter()
    try:
        _, params = run_brax_ppo(env, config, ppo, on_eval)
    finally:
        writer.close()
    module = policy_from_brax(params, env.observation_size, env.action_size, ppo.hidden)
    kwargs = {
        "in_dim": int(env.observation_size),
        "out_dim": int(env.action_size),
        "hidden": list(ppo.hidden),
    }
    build = {
        "module": f"{__name__}:BraxPPOPolicy",
        "kwargs": kwargs,
        "obs": ["task"],
        "task": gym_id(name),
    }
    policy_dir = save_policy(out / "policy", module, build)
    with atomic_path(out / "curve.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps([dataclasses.asdict(p) for p in curve], indent=2) + "\n")
    return TrainResult(
        policy_dir=policy_dir, curve=tuple(curve), final_return=curve[-1].mean_return
    )
