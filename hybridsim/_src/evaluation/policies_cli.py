"""``hybridsim eval policies``: run policies closed loop in a world, score, rank, report."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from hybridsim._src.errors import PolicyError
from hybridsim._src.progress import Progress


def load_reference(path: str | Path) -> dict[str, float]:
    """A reference file: ``{SPEC: score}``, or the JSON of an earlier ``eval policies``
    run (``{"policies": {SPEC: {"mean": score, ...}}}``, e.g. in a synthetic reality)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PolicyError(f"reference {str(path)!r} is not a readable JSON file: {e}") from None
    if isinstance(doc, dict) and isinstance(doc.get("policies"), dict):
        doc = {k: v.get("mean") if isinstance(v, dict) else v for k, v in doc["policies"].items()}
    if not isinstance(doc, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in doc.values()
    ):
        raise PolicyError(
            f"reference {str(path)!r} must map policy specs to finite scores: "
            '{"FILE.py:NAME": 0.8, ...}'
        )
    return {str(k): float(v) for k, v in doc.items()}


def _world(args: argparse.Namespace):
    import hybridsim as hs
    from hybridsim._src.evaluation import worlds

    if args.task:
        if args.init or args.init_noise:
            raise PolicyError("--task draws its own initial states: drop --init/--init-noise")
        if args.reality:
            raise PolicyError("--task runs the task's own environment: drop --reality")
        overrides = {}
        if args.residual:
            overrides["residual_dir"] = args.residual
        if args.substeps is not None:
            overrides["substeps"] = args.substeps
        world = worlds.TaskWorld(args.task, **overrides)
        scene = world.env.scene
        if args.scene and hs.load_scene(args.scene).name != scene.name:
            raise PolicyError(
                f"task {args.task!r} runs on scene {scene.name!r}, not {args.scene!r}"
            )
        return world, scene
    if not args.scene:
        raise PolicyError("give --scene SCENE (or --task NAME)")
    scene = hs.load_scene(args.scene)
    if args.reality:
        from hybridsim._src import synthetic_reality
        from hybridsim._src.evaluation.reality_world import RealityWorld

        if args.residual:
            raise PolicyError("--reality and --residual are two worlds: give one")
        effects = synthetic_reality.parse_effects(args.reality)
        return RealityWorld(scene, effects, substeps=args.substeps or 1), scene
    if args.residual:
        from hybridsim._src.residual.fit import load_fitted

        return worlds.HybridWorld(scene, load_fitted(args.residual, scene), args.backend), scene
    return worlds.PhysicsWorld(scene, args.substeps or 1, args.backend), scene


def _run(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.bench import aligned_table, jsonable
    from hybridsim._src.evaluation import policy_eval, ranking, report, worlds

    progress = Progress(not args.quiet)
    hs.enable_compilation_cache()
    if args.steps < 1:
        raise PolicyError(f"--steps must be >= 1, got {args.steps}")
    specs = list(dict.fromkeys(args.policy))
    policies = {spec: policy_eval.load_policy(spec) for spec in specs}
    if args.score:
        score = policy_eval.load_score(args.score)
    elif args.task:
        score = worlds.task_return
    else:
        raise PolicyError("give --score FILE.py:NAME (score(traj) -> (N,))")
    reference = load_reference(args.reference) if args.reference else None
    if reference is not None:
        unknown = sorted(set(reference) - set(specs))
        if unknown:
            raise PolicyError(
                f"reference {args.reference!r} names policies that are not evaluated: "
                f"{unknown}; --policy gave {specs}"
            )
    if args.report:
        report.check_report_dir(args.report)
    with progress.phase("loading the world"):
        world, scene = _world(args)
    qpos0, qvel0 = policy_eval.initial_states(
        scene, args.episodes, args.seed, args.init, args.init_noise
    )
    t0 = time.perf_counter()
    results = policy_eval.evaluate_policies(
        world,
        policies,
        score,
        steps=args.steps,
        qpos0=qpos0,
        qvel0=qvel0,
        seed=args.seed,
        progress=progress.say,
    )
    wall = (time.perf_counter() - t0) / max(len(results), 1)
    ok = {s: r for s, r in results.items() if r.error is None}
    errors = {s: r.error for s, r in results.items() if r.error is not None}
    summary: dict[str, Any] = {
        "policies": {
            s: {"mean": r.mean, "ci95": list(r.ci95), "n": r.n, "wall_s": r.wall_s}
            | ({} if r.success_rate is None else {"success_rate": r.success_rate})
            for s, r in ok.items()
        },
        "world": {"name": world.name, "control_dt": world.control_dt},
        "steps": args.steps,
        "episodes": args.episodes,
        "seed": args.seed,
        "wall_s_per_policy": wall,
        "errors": errors,
    }
    if reference is not None:
        ref = {s: v for s, v in reference.items() if s in ok}
        summary["reference"] = reference
        if len(ref) >= 2:
            summary["ranking"] = ranking.ranking_metrics({s: r.mean for s, r in ok.items()}, ref)
        else:
            summary["ranking"] = None
            progress.say(f"no ranking: {len(ref)} evaluated policies in the reference, need 2")
    summary = jsonable(summary)
    if args.report:
        with progress.phase(f"writing the report to {args.report}"):
            report.write_report(
                args.report,
                summary,
                results,
                scene,
                world.control_dt,
                video=not args.no_video,
                progress=progress.say,
            )
    _print_table(summary, aligned_table)
    for spec, message in errors.items():
        print(f"hybridsim eval policies: policy {spec!r} failed: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, allow_nan=False))
    return 1 if errors else 0


def _print_table(summary: dict[str, Any], aligned_table) -> None:
    ref = summary.get("reference") or {}
    pol = summary["policies"]
    success = any("success_rate" in p for p in pol.values())
    headers = ["policy", "mean", "95% CI", "n", "reference"] + (["success"] if success else [])
    body = []
    for spec, p in pol.items():
        lo, hi = p["ci95"]
        row = [spec, f"{p['mean']:.4g}", f"[{lo:.4g}, {hi:.4g}]", str(p["n"])]
        row.append(f"{ref[spec]:.4g}" if spec in ref else "")
        if success:
            row.append(f"{p['success_rate']:.0%}" if "success_rate" in p else "")
        body.append(row)
    for spec in summary["errors"]:
        body.append([spec, "error"] + [""] * (len(headers) - 2))
    w = summary["world"]
    print(f"{w['name']}: control step {w['control_dt']:g} s, {summary['steps']} steps")
    print(aligned_table(headers, body, left={0}))
    r = summary.get("ranking")
    if r:
        print(
            "ranking vs reference: "
            + ", ".join(f"{k} {v:.3g}" for k, v in r.items() if isinstance(v, float))
        )


def add_parser(sub) -> None:
    p = sub.add_parser(
        "policies",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run policies closed loop, score them with confidence intervals, rank them",
        description="Runs every --policy closed loop for --steps control steps in "
        "--episodes episodes: in the hybrid model with --residual, otherwise in nominal "
        "physics at --substeps (or in a registered task with --task), scores each episode "
        "with --score, and prints the mean and its 95%% bootstrap interval per policy. "
        "With --reference it adds Pearson, Spearman, Kendall, MMRV and top-1 regret against "
        "the reference scores. A policy that fails is reported and the others still run "
        "(exit status 1); bad input is one line and exit status 2.",
        epilog="example:\n  hybridsim eval policies --scene arm2 --substeps 4 --steps 100 "
        "--episodes 8 \\\n    --policy examples/eval/pd_policies.py:pd_kp4 "
        "--policy examples/eval/pd_policies.py:pd_kp16 \\\n"
        "    --score examples/eval/pd_policies.py:tracking_score --report runs/eval --json",
    )
    p.add_argument("--scene", help="bundled scene name or MJCF path")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--residual", help="folder of 'hybridsim residual fit': the hybrid model")
    group.add_argument(
        "--substeps", type=int, help="physics steps per control step of nominal physics (1)"
    )
    p.add_argument(
        "--reality",
        metavar="EFFECTS",
        help="run in a synthetic reality instead: the scene plus these effects (as "
        "'synthetic-reality record --effects', e.g. 'default,latency=3'), at --substeps; "
        "its --json output can serve as another run's --reference",
    )
    p.add_argument(
        "--policy",
        action="append",
        required=True,
        help="FILE.py:NAME, module:NAME or a saved policy folder; repeat for several",
    )
    p.add_argument("--score", help="FILE.py:NAME or module:NAME: score(traj) -> (N,)")
    p.add_argument("--steps", type=int, required=True, help="control steps per episode")
    p.add_argument("--episodes", type=int, default=16, help="episodes per policy (16)")
    p.add_argument("--seed", type=int, default=0, help="initial states and bootstrap seed")
    p.add_argument("--init", help="interchange .npz: start from states drawn from its steps")
    p.add_argument(
        "--init-noise",
        type=float,
        default=0.0,
        help="Gaussian noise (rad or m) on hinge and slide joint positions at the start",
    )
    p.add_argument("--reference", help="JSON {SPEC: score}: rank against these scores")
    p.add_argument("--report", help="folder for a one-page PNG + HTML report")
    p.add_argument("--no-video", action="store_true", help="no videos in the report")
    p.add_argument("--task", help="registered task, e.g. hybridsim/Reach-v0 or Reach")
    p.add_argument("--backend", default="c", choices=["c", "mjx", "warp"], help="(c)")
    p.add_argument("--json", action="store_true", help="the result as JSON on the last line")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_run)
