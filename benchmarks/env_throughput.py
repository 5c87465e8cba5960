"""Env-steps per second: hybridsim's CartpoleSwingup against MuJoCo Playground's, and the
cost of hybridsim's Gymnasium vector env over the functional API.

Rows, all measured in one process on the same machine:

- ``functional``: hybridsim's ``CartpoleSwingup`` (``hybridsim.envs.make``), the program
  ``jit(lambda s, a: lax.scan(vmap(env.step), s, a))`` over ``T`` env steps of ``B``
  worlds (actions ``(T, B, nu)`` uniform in ``[-1, 1]``, drawn once up front);
- ``playground``: MuJoCo Playground's ``CartpoleSwingup``
  (``mujoco_playground.registry.load("CartpoleSwingup", config_overrides={"impl": "jax"})``,
  its JAX implementation), the same scanned program over its ``step``;
- ``gym_vector``: ``gymnasium.make_vec("hybridsim/CartpoleSwingup-v0", num_envs=B)``
  stepped ``T`` times from Python with NumPy actions (what a PyTorch / SB3 user sees:
  device-to-host copies and Python bools/floats included);
- ``physics_ours`` / ``physics_playground``: plain ``mjx.step`` of each task's own MJCF
  model (no env code), the same scanned program: separates what the scene costs from
  what the env code around it costs.

Compile time (first call minus the best timed call) is reported separately and excluded
from the rates. Each case gets one warm-up call; then ``--repeats`` rounds call every case
of one B in turn (so load from other processes hits all alike) and the fastest call of
each case counts. Env-steps/s = B x T / seconds; ``physics steps/s`` multiplies by the physics steps
each env step takes (the task config's ``substeps``; Playground's ``n_substeps``).

Usage::

    JAX_PLATFORMS=cpu python benchmarks/env_throughput.py               # B = 64, 1024
    JAX_PLATFORMS=cpu python benchmarks/env_throughput.py --quick       # B = 8, T = 10

Playground is optional (``pip install playground``); without it its rows are recorded as
skipped with the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim import bench

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "env_throughput.json"
TASK = "CartpoleSwingup"
RATIO_TARGET = 1.0
RATIO_B = 1024


@dataclasses.dataclass(frozen=True)
class _Case:
    """One prepared measurement: ``call()`` runs ``steps`` env steps of ``batch`` worlds."""

    impl: str
    batch: int
    steps: int
    substeps: int
    call: Callable[[], Any]


def _timed(call: Callable[[], Any]) -> float:
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(call())
    return time.perf_counter() - t0


def run_cases(cases: list[_Case], repeats: int) -> list[dict]:
    """Times prepared cases: one warm-up (compile) call each, then ``repeats`` rounds that
    call every case once in turn (load from other processes hits all alike); the fastest
    call of each case counts."""
    first = [_timed(c.call) for c in cases]
    times: list[list[float]] = [[] for _ in cases]
    for _ in range(repeats):
        for i, c in enumerate(cases):
            times[i].append(_timed(c.call))
    return [
        _row(c.impl, c.batch, c.steps, c.substeps, f, min(t))
        for c, f, t in zip(cases, first, times, strict=True)
    ]


def _scanned(reset, step, action_size: int, batch: int, steps: int, seed: int):
    """A zero-argument call running ``scan(vmap(step))`` over ``steps`` env steps of
    ``batch`` worlds from a fixed batched reset state."""
    import jax
    import jax.numpy as jnp

    keys = jax.random.split(jax.random.PRNGKey(seed), batch)
    state0 = jax.block_until_ready(jax.jit(jax.vmap(reset))(keys))
    rng = np.random.default_rng(seed)
    actions = jnp.asarray(rng.uniform(-1.0, 1.0, (steps, batch, action_size)), jnp.float32)

    @jax.jit
    def run(state, acts):
        def body(s, a):
            s = jax.vmap(step)(s, a)
            return s, s.reward

        return jax.lax.scan(body, state, acts)

    return lambda: run(state0, actions)


def _row(impl: str, batch: int, steps: int, substeps: int, first: float, best: float) -> dict:
    sps = batch * steps / best
    return {
        "impl": impl,
        "task": TASK,
        "batch_size": batch,
        "env_steps": steps,
        "substeps": substeps,
        "seconds": best,
        "env_sps": sps,
        "physics_sps": sps * substeps,
        "first_seconds": first,
        "compile_seconds": max(first - best, 0.0),
    }


def _skip(impl: str, batch: int, steps: int, reason: str) -> dict:
    return {"impl": impl, "task": TASK, "batch_size": batch, "env_steps": steps, "error": reason}


def measure_functional(batch: int, steps: int, seed: int) -> _Case | dict:
    from hybridsim import envs

    env = envs.make(TASK)
    call = _scanned(env.reset, env.step, env.action_size, batch, steps, seed)
    return _Case("functional", batch, steps, env.config.substeps, call)


def measure_playground(batch: int, steps: int, seed: int) -> _Case | dict:
    try:
        from mujoco_playground import registry
    except ImportError as e:
        return _skip("playground", batch, steps, f"mujoco_playground not importable: {e}")
    env = registry.load(TASK, config_overrides={"impl": "jax"})
    call = _scanned(env.reset, env.step, env.action_size, batch, steps, seed)
    return _Case("playground", batch, steps, int(env.n_substeps), call)


def measure_gym_vector(batch: int, steps: int, seed: int) -> _Case | dict:
    import gymnasium as gym

    import hybridsim.envs  # noqa: F401 - registers the hybridsim/ namespace

    venv = gym.make_vec(f"hybridsim/{TASK}-v0", num_envs=batch)
    venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = venv.single_action_space.low, venv.single_action_space.high
    actions = rng.uniform(low, high, (steps, batch, low.shape[0])).astype(np.float32)

    def call():
        for a in actions:
            venv.step(a)

    return _Case("gym_vector", batch, steps, venv.unwrapped.env.config.substeps, call)


def _physics_only(impl: str, mj_model: Any, batch: int, steps: int, seed: int) -> _Case:
    """Plain ``mjx.step`` (``impl="jax"``) of ``mj_model``, ``scan(vmap(step))`` over
    ``steps`` steps with random controls: the physics alone, no env around it."""
    import jax
    import jax.numpy as jnp
    from mujoco import mjx

    mx = mjx.put_model(mj_model, impl="jax")
    d0 = jax.block_until_ready(jax.vmap(lambda _: mjx.make_data(mx))(jnp.arange(batch)))
    rng = np.random.default_rng(seed)
    u = jnp.asarray(rng.uniform(-1.0, 1.0, (steps, batch, mj_model.nu)), jnp.float32)

    @jax.jit
    def run(d, u):
        def body(d, uu):
            d = jax.vmap(lambda dd, a: mjx.step(mx, dd.replace(ctrl=a)))(d, uu)
            return d, d.qpos

        return jax.lax.scan(body, d, u)

    return _Case(impl, batch, steps, 1, lambda: run(d0, u))


def measure_physics_ours(batch: int, steps: int, seed: int) -> _Case | dict:
    from hybridsim import envs

    return _physics_only("physics_ours", envs.make(TASK).mj_model, batch, steps, seed)


def measure_physics_playground(batch: int, steps: int, seed: int) -> _Case | dict:
    try:
        from mujoco_playground import registry
    except ImportError as e:
        return _skip("physics_playground", batch, steps, f"mujoco_playground not importable: {e}")
    model = registry.load(TASK, config_overrides={"impl": "jax"}).mj_model
    return _physics_only("physics_playground", model, batch, steps, seed)


MEASURES = {
    "functional": measure_functional,
    "playground": measure_playground,
    "gym_vector": measure_gym_vector,
    "physics_ours": measure_physics_ours,
    "physics_playground": measure_physics_playground,
}


def format_rows(rows: list[dict]) -> str:
    headers = ("impl", "B", "T", "env steps/s", "physics steps/s", "compile s", "best call s")
    body = []
    for r in rows:
        if r.get("error"):
            continue
        body.append(
            (
                r["impl"],
                str(r["batch_size"]),
                str(r["env_steps"]),
                bench.format_rate(r["env_sps"]),
                bench.format_rate(r["physics_sps"]),
                f"{r['compile_seconds']:.2f}",
                f"{r['seconds']:.3f}",
            )
        )
    notes = [
        f"(not measured) {r['impl']} B={r['batch_size']}: {r['error']}"
        for r in rows
        if r.get("error")
    ]
    return "\n".join([bench.aligned_table(headers, body, left={0}), *notes])


def targets(rows: list[dict]) -> list[tuple[str, bool | None, str]]:
    def rate(impl, b):
        for r in rows:
            if r["impl"] == impl and r["batch_size"] == b and not r.get("error"):
                return r["env_sps"]
        return None

    out = []
    for b in sorted({r["batch_size"] for r in rows}):
        env, phys = rate("functional", b), rate("physics_ours", b)
        if env is not None and phys is not None:
            out.append(
                (
                    f"hybridsim env code cost at B={b} (information)",
                    None,
                    f"env-steps/s {env / phys:.2f}x the plain mjx.step rate of its scene",
                )
            )
        pg, pphys = rate("playground", b), rate("physics_playground", b)
        if pg is not None and pphys is not None:
            out.append(
                (
                    f"Playground env code cost at B={b} (information)",
                    None,
                    f"env-steps/s {pg / pphys:.2f}x the plain mjx.step rate of its scene",
                )
            )
    ours, theirs = rate("functional", RATIO_B), rate("playground", RATIO_B)
    name = f"{TASK} env-steps/s vs Playground (JAX) at B={RATIO_B} >= {RATIO_TARGET}"
    if ours is None or theirs is None:
        out.append((name, None, "not measured"))
    else:
        ratio = ours / theirs
        out.append((name, ratio >= RATIO_TARGET, f"ratio {ratio:.2f}"))
    for b in sorted({r["batch_size"] for r in rows}):
        f, g = rate("functional", b), rate("gym_vector", b)
        if f is not None and g is not None:
            out.append(
                (
                    f"Gymnasium vector env cost at B={b} (information)",
                    None,
                    f"{g / f:.2f}x the functional API's env-steps/s",
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 1024])
    p.add_argument("--steps", type=int, default=100, help="env steps per timed call (T)")
    p.add_argument("--gym-steps", type=int, default=50, help="T for the gym_vector rows")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--impls", nargs="+", default=list(MEASURES), choices=list(MEASURES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="B = 8, T = 10, one repeat")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.steps, args.gym_steps, args.repeats = [8], 10, 10, 1
    rows = []
    for b in args.batch_sizes:
        cases, skipped = [], []
        for impl in args.impls:
            t = args.gym_steps if impl == "gym_vector" else args.steps
            print(f"[env_throughput] {impl} B={b} T={t}: build", file=sys.stderr, flush=True)
            case = MEASURES[impl](b, t, args.seed)
            (cases if isinstance(case, _Case) else skipped).append(case)
        print(f"[env_throughput] B={b}: timing {len(cases)} cases", file=sys.stderr, flush=True)
        rows += run_cases(cases, args.repeats) + skipped
    print(format_rows(rows))
    verdicts = targets(rows)
    bench.print_targets(verdicts)
    meta = {
        "command": " ".join(["python", "benchmarks/env_throughput.py", *(argv or sys.argv[1:])]),
        "targets": [{"name": n, "ok": ok, "detail": d} for n, ok, d in verdicts],
    }
    try:
        from importlib.metadata import version

        meta["playground"] = version("playground")
    except Exception:  # noqa: BLE001 - optional package
        meta["playground"] = None
    path = bench.write_json(args.out, rows, meta)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
