"""Env-steps per second of every registered task, against the physics core alone.

For each task, in one process: the functional env stack (``wrap_for_training``: episode
limit, vmap over B, auto-reset) as ``jit(scan(step))`` over T control steps with uniform
random actions, against ``hs.rollout`` on backend ``mjx`` for the same scene, B, T and
substeps (random controls). The ratio is what the env layer (observations, rewards,
flags, auto-reset) costs on top of the physics. Compile time is measured separately (the
first call; JAX's persistent cache may hold programs from earlier runs).

    JAX_PLATFORMS=cpu python benchmarks/env_tasks.py                   # B=64, T=100
    JAX_PLATFORMS=cpu python benchmarks/env_tasks.py --tasks Reach --batch-size 256
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np

import hybridsim as hs
from hybridsim import bench, envs


def _time(fn, repeats: int) -> tuple[float, float]:
    """(first call seconds, median of ``repeats`` later calls)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def measure(name: str, batch: int, steps: int, repeats: int) -> dict:
    env = envs.make(name)
    stack = envs.wrap_for_training(env, batch_size=batch)
    shape = (
        (batch, env.num_agents, env.action_size) if env.multi_agent else (batch, env.action_size)
    )

    @jax.jit
    def run(key):
        state = stack.reset(key)

        def body(s, k):
            return stack.step(s, jax.random.uniform(k, shape, minval=-1.0, maxval=1.0)), ()

        final, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
        return final.obs

    first_env, env_s = _time(lambda: run(jax.random.PRNGKey(0)), repeats)

    model = hs.make_model(env.scene, batch, backend="mjx", substeps=env.config.substeps)
    state = hs.init(model)
    ctrl = bench.random_controls(env.scene, batch, steps)
    first_raw, raw_s = _time(lambda: hs.rollout(model, state, ctrl).qpos, repeats)
    n = batch * steps
    return {
        "task": name,
        "scene": env.scene.name,
        "batch_size": batch,
        "control_steps": steps,
        "substeps": env.config.substeps,
        "env_steps_per_s": n / env_s,
        "core_steps_per_s": n / raw_s,
        "env_over_core": env_s / raw_s,
        "env_first_call_s": first_env,
        "core_first_call_s": first_raw,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(envs.registered()))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=100, help="control steps per timed call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/env_tasks_cpu.json")
    args = p.parse_args(argv)
    hs.enable_compilation_cache()
    rows = []
    for name in args.tasks:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(measure(name, args.batch_size, args.steps, args.repeats))
    headers = ["task", "B", "env steps/s", "core steps/s", "env/core time", "compile env, core (s)"]
    body = [
        [
            r["task"],
            str(r["batch_size"]),
            f"{r['env_steps_per_s']:,.0f}",
            f"{r['core_steps_per_s']:,.0f}",
            f"{r['env_over_core']:.2f}x",
            f"{r['env_first_call_s']:.1f}, {r['core_first_call_s']:.1f}",
        ]
        for r in rows
    ]
    print(bench.aligned_table(headers, body, left={0}))
    path = bench.write_json(args.out, rows, {"command": " ".join(sys.argv)})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
