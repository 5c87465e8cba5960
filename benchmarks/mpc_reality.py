"""MPC on the hybrid against MPC on nominal physics, acting in a synthetic reality.

The Reach task's synthetic reality (``RealityWrapper``: 60 ms of actuator latency and
links 1.5x heavier, on MJX) plays the real robot. A force residual is fitted on
random-action episodes recorded in that reality (open loop, no planner involved). Then
MPPI plans on the nominal model and on the hybrid, and acts in the reality, from the
same starts with the same seeds. Target (issue 13): MPC on the hybrid beats MPC on
nominal physics in the reality. Also reported: MPPI planning in the reality itself (the
best a model can do) and zero actions.

Usage::

    python benchmarks/mpc_reality.py          # about 5 min on 2 CPU cores
    python benchmarks/mpc_reality.py --quick  # smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import hybridsim as hs  # noqa: E402
from hybridsim import bench, envs, learning, residual, synthetic_reality  # noqa: E402
from hybridsim.envs import RealityWrapper  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "mpc_reality.json"
EFFECTS = "latency=3,mass_scale=1.5"
TASK = "Reach"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=16, help="MPC episodes per model")
    p.add_argument("--steps", type=int, default=100, help="control steps per MPC episode")
    p.add_argument("--horizon", type=int, default=10)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--data-episodes", type=int, default=64, help="random-action episodes")
    p.add_argument("--iters", type=int, default=1500, help="one-step optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    if args.quick:
        args.episodes, args.steps, args.samples, args.data_episodes, args.iters = 4, 30, 16, 8, 100
    return args


def record(reality, episodes: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Interchange arrays of ``episodes`` episodes of smooth random actions in ``reality``
    (the commanded controls, as a real log holds them)."""
    key_reset, key_act = jax.random.split(jax.random.key(seed))
    noise = jax.random.normal(key_act, (steps, episodes, reality.action_size))
    actions = np.zeros((steps, episodes, reality.action_size), np.float32)
    a = np.zeros((episodes, reality.action_size), np.float32)
    for t in range(steps):  # Ornstein-Uhlenbeck, about 0.6 of the range
        a = 0.9 * a + 0.3 * np.asarray(noise[t])
        actions[t] = np.clip(a, -1.0, 1.0)

    def run(keys, acts):
        s0 = jax.vmap(reality.reset)(keys)

        def body(s, u):
            s = jax.vmap(reality.step)(s, u)
            return s, (s.physics.qpos, s.physics.qvel)

        _, (q, v) = jax.lax.scan(body, s0, acts)
        return s0.physics.qpos, s0.physics.qvel, q, v

    q0, v0, q, v = jax.jit(run)(jax.random.split(key_reset, episodes), jnp.asarray(actions))
    low, high = reality.scene.ctrl_range()  # actions map linearly onto the control range
    ctrl = (low + high) / 2 + (high - low) / 2 * actions.astype(np.float64)
    return {
        "qpos": np.concatenate([np.asarray(q0)[:, None], np.swapaxes(np.asarray(q), 0, 1)], 1),
        "qvel": np.concatenate([np.asarray(v0)[:, None], np.swapaxes(np.asarray(v), 0, 1)], 1),
        "ctrl": np.swapaxes(ctrl, 0, 1),
        "control_dt": np.asarray(reality.control_dt),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hs.enable_compilation_cache()
    nominal = envs.make(TASK)
    reality = RealityWrapper(nominal, synthetic_reality.parse_effects(EFFECTS))
    t0 = time.perf_counter()
    data = record(reality, args.data_episodes, nominal.episode_length, args.seed + 100)
    with tempfile.TemporaryDirectory() as tmp:
        config = residual.FitConfig(
            residual=residual.ResidualConfig(kind="force", hidden=(256, 256)),
            one_step_iters=args.iters,
            multi_step_iters=0,
            seed=args.seed,
        )
        residual.fit(nominal.scene, residual.episodes_from(data), config, tmp)
        hybrid = envs.make(TASK, residual_dir=tmp)
    fit_s = time.perf_counter() - t0
    planner = learning.MPPIPlanner(horizon=args.horizon, samples=args.samples)
    zero = learning.ZeroPlanner()
    runs = {
        "zero actions": (nominal, zero),
        "MPPI on nominal physics": (nominal, planner),
        "MPPI on the hybrid": (hybrid, planner),
        "MPPI on the reality itself": (reality, planner),
    }
    rows = []
    for name, (model, p) in runs.items():
        r = learning.run_mpc(model, reality, p, args.episodes, args.steps, seed=args.seed)
        rows.append(
            {
                "planner": name,
                "mean_return": r.mean_return,
                "success_rate": r.success_rate,
                "returns": np.asarray(r.returns).tolist(),
                "wall_s": r.wall_s,
                "compile_s": r.compile_s,
            }
        )
    print(
        f"{TASK} acting in its synthetic reality ({EFFECTS}); {args.episodes} episodes x "
        f"{args.steps} steps, MPPI horizon {args.horizon}, {args.samples} samples; residual "
        f"fitted on {args.data_episodes} random-action episodes ({fit_s:.0f} s with recording)"
    )
    print(
        bench.aligned_table(
            ["planning model", "mean return", "success", "wall s", "compile s"],
            [
                [
                    r["planner"],
                    f"{r['mean_return']:.3f}",
                    "n/a" if r["success_rate"] is None else f"{r['success_rate']:.0%}",
                    f"{r['wall_s']:.1f}",
                    f"{r['compile_s']:.1f}",
                ]
                for r in rows
            ],
            left={0},
        )
    )
    nom, hyb = rows[1]["mean_return"], rows[2]["mean_return"]
    wins = np.mean(np.asarray(rows[2]["returns"]) > np.asarray(rows[1]["returns"]))
    bench.print_targets(
        [
            (
                "MPC on the hybrid beats MPC on nominal physics in the reality",
                hyb > nom,
                f"mean return {hyb:.3f} against {nom:.3f}; better in {wins:.0%} of episodes",
            )
        ]
    )
    meta = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "task": TASK,
        "effects": EFFECTS,
        "episodes": args.episodes,
        "steps": args.steps,
        "horizon": args.horizon,
        "samples": args.samples,
        "data_episodes": args.data_episodes,
        "iters": args.iters,
        "fit_seconds": fit_s,
    }
    print(f"wrote {bench.write_json(args.out, rows, meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
