"""``hybridsim plan``: model-predictive control of a task on the model (nominal or hybrid)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from hybridsim._src.errors import EnvError
from hybridsim._src.progress import Progress

ALGOS = ("mppi", "grad", "zero", "random")
DEFAULT_ITERS = {"mppi": 1, "grad": 10}


def _planner(args: argparse.Namespace):
    from hybridsim._src.learning import mpc

    iters = DEFAULT_ITERS.get(args.algo, 1) if args.iters is None else args.iters
    if args.algo == "mppi":
        return mpc.MPPIPlanner(
            horizon=args.horizon,
            samples=args.samples,
            iters=iters,
            noise_std=args.noise_std,
            temperature=args.temperature,
        )
    if args.algo == "grad":
        return mpc.GradPlanner(horizon=args.horizon, iters=iters, learning_rate=args.lr)
    if args.algo == "zero":
        return mpc.ZeroPlanner(horizon=args.horizon)
    return mpc.RandomPlanner(horizon=args.horizon)


def _run(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.envs.registry import make
    from hybridsim._src.evaluation.worlds import _task_name
    from hybridsim._src.learning import mpc

    progress = Progress(not args.quiet)
    planner = _planner(args)
    if args.episodes < 1:
        raise EnvError(f"--episodes must be >= 1, got {args.episodes}")
    if args.steps is not None and args.steps < 1:
        raise EnvError(f"--steps must be >= 1, got {args.steps}")
    hs.enable_compilation_cache()
    task = _task_name(args.task)
    with progress.phase(f"making the task {task!r} (acting) and its model (planning)"):
        act_env = make(task)
        if args.reality:
            from hybridsim._src.envs.reality import RealityWrapper
            from hybridsim._src.synthetic_reality import parse_effects

            act_env = RealityWrapper(act_env, parse_effects(args.reality))
        plan_env = make(
            task, residual_dir=args.residual, differentiable=isinstance(planner, mpc.GradPlanner)
        )
    steps = act_env.episode_length if args.steps is None else args.steps
    with progress.phase(
        f"{args.algo} MPC: {args.episodes} episodes x {steps} steps, horizon {args.horizon}"
    ):
        result = mpc.run_mpc(plan_env, act_env, planner, args.episodes, steps, args.seed)
    success = "n/a" if result.success_rate is None else f"{result.success_rate:.0%}"
    print(
        f"{task} {args.algo} MPC on the {'hybrid' if args.residual else 'nominal'} model: "
        f"mean_return {result.mean_return:.4g}, success_rate {success} "
        f"({args.episodes} episodes x {steps} steps, {result.wall_s:.2f} s "
        f"+ {result.compile_s:.1f} s compiling)"
    )
    if result.skipped_grad_steps:
        print(f"  {result.skipped_grad_steps} gradient steps skipped (non-finite gradient)")
    if args.json:
        summary = {
            "task": task,
            "algo": args.algo,
            "model": "hybrid" if args.residual else "nominal",
            "residual": args.residual,
            "acting": "reality" if args.reality else "nominal",
            "planner": {"kind": type(planner).__name__, **dataclasses.asdict(planner)},
            "episodes": args.episodes,
            "steps": steps,
            "seed": args.seed,
            "mean_return": result.mean_return,
            "success_rate": result.success_rate,
            "returns": [float(r) for r in result.returns],
            "wall_s": result.wall_s,
            "compile_s": result.compile_s,
            "skipped_grad_steps": result.skipped_grad_steps,
        }
        print(json.dumps(summary, allow_nan=False))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plan",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="model-predictive control of a task on the model (MPPI or gradient MPC)",
        description="Runs --episodes episodes of a registered task in parallel. At every "
        "control step the planner improves a --horizon step action sequence on the model "
        "(nominal physics, or the hybrid with --residual) from the current state, applies "
        "its first action to the task and shifts the sequence (warm start). 'mppi' samples "
        "--samples sequences and averages them softmax-weighted by return; 'grad' takes "
        "--iters Adam steps through the differentiable model; 'zero' and 'random' are "
        "baselines. Prints mean_return and success_rate; bad input is one line and exit "
        "status 2.",
        epilog="examples:\n  hybridsim plan --task hybridsim/Reach-v0 --algo mppi --horizon 20 "
        "--episodes 16 --json\n  hybridsim plan --task hybridsim/Reach-v0 --algo grad "
        "--horizon 20 --iters 10 --episodes 16 --residual runs/arm2 --json",
    )
    p.add_argument("--task", required=True, help="registered task, e.g. hybridsim/Reach-v0")
    p.add_argument("--algo", required=True, choices=ALGOS, help="planner (or baseline)")
    p.add_argument("--horizon", type=int, required=True, help="control steps planned ahead")
    p.add_argument(
        "--residual", help="folder of 'hybridsim residual fit': plan on the hybrid model"
    )
    p.add_argument(
        "--reality",
        metavar="EFFECTS",
        help="act in a synthetic reality of the task (effects MJX can express, e.g. "
        "'latency=2,mass_scale=1.3'); default: act in nominal physics",
    )
    p.add_argument("--episodes", type=int, default=16, help="parallel episodes (16)")
    p.add_argument("--steps", type=int, help="control steps per episode (the task's length)")
    p.add_argument("--seed", type=int, default=0, help="initial states and sampling seed")
    p.add_argument(
        "--iters", type=int, help="mppi: sampling rounds (1); grad: Adam steps (10) per step"
    )
    p.add_argument("--samples", type=int, default=128, help="mppi: sequences sampled (128)")
    p.add_argument("--noise-std", type=float, default=0.5, help="mppi: action noise (0.5)")
    p.add_argument("--temperature", type=float, default=0.1, help="mppi: in return std units (0.1)")
    p.add_argument("--lr", type=float, default=0.1, help="grad: Adam step size (0.1)")
    p.add_argument("--json", action="store_true", help="the result as JSON on the last line")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_run)
