"""Train hybridsim's Reach task with Brax's PPO trainer through the functional API.

hybridsim's envs are pure ``reset(key)``/``step(state, action)`` functions, so Brax's PPO
(``brax.training.agents.ppo.train``) runs them as they are: the library's
``hybridsim.learning.brax_env`` only renames fields (our typed ``EnvState`` rides along as
Brax's ``pipeline_state``; Brax's own wrappers add the episode limit, auto-reset and vmap),
and ``hybridsim.learning.ensure_brax_compat`` gives JAX 0.10 the function Brax 0.14.2
calls. Everything (rollouts, GAE, SGD) is one jitted JAX program per training epoch.
``hybridsim policy train --algo ppo`` (``hybridsim.learning.train_ppo``) does the same and
saves the policy; this script shows the Brax calls themselves.

After training, the deterministic policy runs ``--eval-episodes`` fresh episodes (new
random targets, ``episode_length`` control steps each) and the script prints the success
rate: the fraction of episodes whose fingertip ends within ``success_radius`` (5 cm) of
the target.

Usage::

    JAX_PLATFORMS=cpu python examples/train_reach.py                 # the recorded run
    JAX_PLATFORMS=cpu python examples/train_reach.py --timesteps 20000 --num-envs 16 --quick

Needs ``brax`` (``pip install brax``; it is in hybridsim's ``rl`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hybridsim.learning import brax_env, ensure_brax_compat


def evaluate(env: Any, policy: Any, episodes: int, seed: int) -> dict[str, float]:
    """Runs ``episodes`` fresh episodes of ``episode_length`` steps with ``policy(obs, key)``
    (deterministic) in one jitted scan; returns the success rate and mean final distance."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)

    @jax.jit
    def run(keys):
        state = jax.vmap(env.reset)(keys)

        def body(s, k):
            action, _ = policy(s.obs, k)
            return jax.vmap(env.step)(s, action), None

        steps = jax.random.split(jax.random.PRNGKey(seed + 1), env.episode_length)
        state, _ = jax.lax.scan(body, state, steps)
        return state.metrics

    metrics = run(keys)
    return {
        "success_rate": float(jnp.mean(metrics.success)),
        "final_distance_mean_m": float(jnp.mean(metrics.distance)),
        "episodes": episodes,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timesteps", type=int, default=6_000_000, help="env steps in training")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--unroll-length", type=int, default=10)
    p.add_argument("--minibatches", type=int, default=8)
    p.add_argument("--updates-per-batch", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--num-evals", type=int, default=7)
    p.add_argument("--eval-episodes", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny networks: a smoke run")
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = p.parse_args(argv)

    import functools

    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo

    import hybridsim as hs
    from hybridsim import envs

    hs.enable_compilation_cache()
    ensure_brax_compat()
    env = envs.make("Reach")
    hidden = (16,) if args.quick else (64, 64)
    network_factory = functools.partial(
        ppo_networks.make_ppo_networks,
        policy_hidden_layer_sizes=hidden,
        value_hidden_layer_sizes=hidden,
    )
    curve = []

    def progress(step: int, metrics: dict) -> None:
        r = float(metrics.get("eval/episode_reward", float("nan")))
        s = float(metrics.get("eval/episode_success", float("nan")))
        curve.append({"step": int(step), "wall_s": time.perf_counter() - t0, "reward": r})
        print(
            f"[train_reach] {step:>9,d} steps  {time.perf_counter() - t0:7.1f} s  "
            f"eval episode reward {r:8.2f}  (sum of per-step success {s:.1f})",
            file=sys.stderr,
            flush=True,
        )

    t0 = time.perf_counter()
    make_policy, params, _ = ppo.train(
        environment=brax_env(env),
        num_timesteps=args.timesteps,
        num_envs=args.num_envs,
        episode_length=env.episode_length,
        batch_size=args.batch_size,
        unroll_length=args.unroll_length,
        num_minibatches=args.minibatches,
        num_updates_per_batch=args.updates_per_batch,
        learning_rate=args.learning_rate,
        entropy_cost=1e-3,
        discounting=0.97,
        normalize_observations=True,
        reward_scaling=1.0,
        num_evals=args.num_evals,
        num_eval_envs=min(args.eval_episodes, args.num_envs),
        network_factory=network_factory,
        seed=args.seed,
        progress_fn=progress,
    )
    train_s = time.perf_counter() - t0
    result = evaluate(env, make_policy(params, deterministic=True), args.eval_episodes, 1000)
    result.update(
        task="Reach",
        timesteps=args.timesteps,
        num_envs=args.num_envs,
        train_wall_s=train_s,
        success_radius_m=env.config.success_radius,
        command=" ".join(["python", "examples/train_reach.py", *(argv or sys.argv[1:])]),
        curve=curve,
    )
    print(
        f"Reach PPO: {args.timesteps:,d} env steps in {train_s:.0f} s; success rate "
        f"{100 * result['success_rate']:.1f}% over {args.eval_episodes} episodes "
        f"(final distance < {env.config.success_radius} m; mean "
        f"{result['final_distance_mean_m']:.3f} m)"
    )
    if args.out is not None:
        with hs.atomic_path(args.out, suffix=".json") as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
