"""Does the world model rank policies the way the real robot does?

A synthetic reality of the 2-link arm (``hybridsim.synthetic_reality``, the default
effects with 30 ms of actuator latency: latency, backlash, Coulomb friction, drag, a
friction field, heavier links) plays the real robot. Then:

1. a force residual and a pure-neural model are fitted on Ornstein-Uhlenbeck-noise data
   recorded from the reality (open loop, no policy of the pool);
2. a pool of joint-space PD controllers of different gains (``examples/eval/pd_policies.py``'s
   ``PD``) tracks a moving target; under latency the stiff, lightly damped ones lose, so
   their ranking in the reality differs from their ranking in nominal physics;
3. every policy runs closed loop in nominal physics, the hybrid, the pure-neural model and
   the reality (``hybridsim.evaluation.evaluate_policies`` over each ``World``), scored by
   the fraction of control steps whose joint tracking error stays under 0.25 rad (a
   success rate in [0, 1], as SIMPLER's MMRV expects);
4. Pearson, Spearman, Kendall, MMRV (SIMPLER's mean maximum rank violation) and top-1
   regret of each model against the reality.

Targets: the hybrid's Spearman >= 0.9 and MMRV <= 0.05, with nominal physics clearly
below. Also reported: wall time per evaluated policy in each world.

Usage::

    python benchmarks/policy_ranking.py          # about 2 min on 2 CPU cores
    python benchmarks/policy_ranking.py --quick  # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import hybridsim as hs  # noqa: E402
from hybridsim import bench, evaluation, residual, synthetic_reality  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "policy_ranking.json"
EFFECTS = "default,latency=3"
SUBSTEPS = 2  # control_dt 10 ms on arm2's 5 ms timestep: latency 3 = 30 ms
TOLERANCE = 0.25  # rad: a control step "succeeds" when every joint is this close
GAINS = [(kp, kd) for kp in (2, 4, 8, 16, 32, 64) for kd in (0.1, 0.3)]
SPEARMAN_TARGET, MMRV_TARGET = 0.9, 0.05


def _pd_module():
    """``examples/eval/pd_policies.py`` (the PD policy family and its target motion)."""
    path = HERE.parent / "examples" / "eval" / "pd_policies.py"
    spec = importlib.util.spec_from_file_location("pd_policies", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


PD = _pd_module()


def tracking_success(traj) -> np.ndarray:
    """(N,) fraction of control steps after the start whose largest joint tracking error
    is under ``TOLERANCE``."""
    qpos = np.asarray(traj.qpos)
    q_ref, _ = PD.target(np.arange(qpos.shape[1]) * traj.control_dt)
    err = np.abs(qpos[:, 1:] - q_ref[1:]).max(axis=-1)
    return (err < TOLERANCE).mean(axis=1)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=16, help="evaluation episodes per policy")
    p.add_argument("--steps", type=int, default=300, help="control steps per episode (3 s)")
    p.add_argument("--train-episodes", type=int, default=40, help="OU-noise episodes")
    p.add_argument("--iters", type=int, default=1500, help="one-step optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    if args.quick:
        args.episodes, args.steps, args.train_episodes, args.iters = 4, 100, 8, 200
    return args


def fit_models(scene, effects, args, work: Path):
    """The force residual and the pure-neural model, fitted on OU-noise data of the
    reality (open loop)."""
    rec = synthetic_reality.record(
        scene,
        effects,
        episodes=args.train_episodes,
        steps=args.steps,
        seed=args.seed + 100,
        substeps=SUBSTEPS,
        behaviour=synthetic_reality.Behaviour(kind="ou", scale=0.8),
    )
    episodes = residual.episodes_from(vars(rec))
    fitted = {}
    for kind in ("force", "neural"):
        config = residual.FitConfig(
            residual=residual.ResidualConfig(kind=kind, hidden=(256, 256)),
            one_step_iters=args.iters,
            multi_step_iters=0,
            seed=args.seed,
        )
        fitted[kind] = residual.fit(scene, episodes, config, work / kind)
    return fitted


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hs.enable_compilation_cache()
    scene = hs.load_scene("arm2")
    effects = synthetic_reality.parse_effects(EFFECTS)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        fitted = fit_models(scene, effects, args, Path(tmp))
    fit_s = time.perf_counter() - t0
    worlds = {
        "physics": evaluation.PhysicsWorld(scene, SUBSTEPS),
        "hybrid": evaluation.HybridWorld(scene, fitted["force"]),
        "neural": evaluation.HybridWorld(scene, fitted["neural"]),
        "reality": evaluation.RealityWorld(scene, effects, substeps=SUBSTEPS),
    }
    policies = {f"PD(kp={kp:g}, kd={kd:g})": PD.PD(kp=kp, kd=kd) for kp, kd in GAINS}
    qpos0, qvel0 = evaluation.initial_states(scene, args.episodes, args.seed, init_noise=0.05)
    results = {}
    for name, world in worlds.items():
        results[name] = evaluation.evaluate_policies(
            world,
            policies,
            tracking_success,
            steps=args.steps,
            qpos0=qpos0,
            qvel0=qvel0,
            seed=args.seed,
        )
        failed = {s: r.error for s, r in results[name].items() if r.error}
        if failed:
            raise SystemExit(f"{name}: policies failed: {failed}")
    real = {s: r.mean for s, r in results["reality"].items()}
    rows = []
    for name in ("physics", "hybrid", "neural"):
        model = {s: r.mean for s, r in results[name].items()}
        metrics = evaluation.ranking_metrics(model, real)
        wall = float(np.mean([r.wall_s for r in results[name].values()]))
        rows.append({"model": name, **metrics, "wall_s_per_policy": wall})
    reality_wall = float(np.mean([r.wall_s for r in results["reality"].values()]))
    print(
        f"arm2, effects {EFFECTS}, {len(policies)} PD policies x {args.episodes} episodes x "
        f"{args.steps} control steps; score: fraction of steps within {TOLERANCE} rad"
    )
    print(
        bench.aligned_table(
            ["policy", *worlds],
            [[s, *(f"{results[w][s].mean:.3f}" for w in worlds)] for s in policies],
            left={0},
        )
    )
    print()
    keys = ["pearson", "spearman", "kendall", "mmrv", "top1_regret", "wall_s_per_policy"]
    print(
        bench.aligned_table(
            ["model against reality", *keys],
            [[r["model"], *(f"{r[k]:.3f}" for k in keys)] for r in rows],
            left={0},
        )
    )
    print(f"reality: {reality_wall:.3f} s per policy; fitting both models took {fit_s:.0f} s")
    hyb, phys = rows[1], rows[0]
    bench.print_targets(
        [
            (
                f"hybrid Spearman >= {SPEARMAN_TARGET}",
                hyb["spearman"] >= SPEARMAN_TARGET,
                f"{hyb['spearman']:.3f} (physics {phys['spearman']:.3f})",
            ),
            (
                f"hybrid MMRV <= {MMRV_TARGET}",
                hyb["mmrv"] <= MMRV_TARGET,
                f"{hyb['mmrv']:.3f} (physics {phys['mmrv']:.3f})",
            ),
        ]
    )
    meta = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "effects": EFFECTS,
        "substeps": SUBSTEPS,
        "episodes": args.episodes,
        "steps": args.steps,
        "train_episodes": args.train_episodes,
        "iters": args.iters,
        "tolerance_rad": TOLERANCE,
        "fit_seconds": fit_s,
        "reality_wall_s_per_policy": reality_wall,
        "scores": {w: {s: r.mean for s, r in res.items()} for w, res in results.items()},
    }
    print(f"wrote {bench.write_json(args.out, rows, meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
