"""``hybridsim residual fit`` and ``hybridsim residual eval``."""

from __future__ import annotations

import argparse
import json

from hybridsim._src.progress import Progress


def _fit(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.residual.data import episodes_from
    from hybridsim._src.residual.fit import FitConfig, fit
    from hybridsim._src.residual.model import ResidualConfig

    progress = Progress(not args.quiet)
    hs.enable_compilation_cache()
    scene = hs.load_scene(args.scene)
    episodes = episodes_from(hs.load_trajectory(args.data, scene))
    sysid = tuple(s for s in (args.sysid or "").split(",") if s)
    kind = "force" if args.kind == "none" else args.kind
    config = FitConfig(
        residual=ResidualConfig(
            kind=kind,
            history=args.history,
            hidden=tuple(args.hidden),
            ensemble=args.ensemble,
            seed=args.seed,
            dofs=tuple(args.dofs or ()),
        ),
        one_step_iters=args.iters,
        multi_step_iters=args.multi_step_iters,
        horizon=args.horizon,
        learning_rate=args.lr,
        sysid=sysid,
        sysid_only=args.kind == "none",
        seed=args.seed,
    )
    if config.sysid_only and not sysid:
        raise hs.ShapeError("--kind none fits physical parameters only: give --sysid FIELDS")
    fitted = fit(scene, episodes, config, args.out, progress=progress.say)
    for entry in fitted.log:
        if "skipped" in entry:  # e.g. the multi-step phase on a scene MJX cannot run
            print(entry["skipped"])
    scored = [e for e in fitted.log if "val" in e]
    vals = [e["val"] for e in scored if e["phase"] == scored[-1]["phase"]] if scored else []
    kept = min(vals, default=float("nan"))
    start = " (the starting point: training did not improve on it)" if vals[:1] == [kept] else ""
    print(
        f"wrote {args.out}: kind {args.kind}, sysid {list(fitted.sysid) or 'none'}, "
        f"validation score of the kept model {kept:.4g}{start}"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.residual.data import episodes_from
    from hybridsim._src.residual.evaluate import evaluate
    from hybridsim._src.residual.fit import load_fitted

    hs.enable_compilation_cache()
    scene = hs.load_scene(args.scene)
    episodes = episodes_from(hs.load_trajectory(args.data, scene))
    fitted = load_fitted(args.model, scene)
    result = {"physics": evaluate(scene, episodes, args.horizon)}
    if fitted.sysid:
        result["sysid"] = evaluate(scene, episodes, args.horizon, params=fitted.sysid)
    if fitted.residual is not None:
        result["hybrid"] = evaluate(
            scene,
            episodes,
            args.horizon,
            fitted.residual,
            params=fitted.sysid or None,
            precision=args.precision,
        )
    if fitted.residual is not None and args.adapt_steps > 0:
        result["hybrid_adapted"] = evaluate(
            scene,
            episodes,
            args.horizon,
            fitted.residual,
            params=fitted.sysid or None,
            precision=args.precision,
            adapt_steps=args.adapt_steps,
        )
    best = result.get("hybrid", result.get("sysid"))
    result["gap_closure"] = 1.0 - best["rollout_rmse"] / result["physics"]["rollout_rmse"]
    if args.json:
        print(json.dumps(result))
    else:
        for name, r in result.items():
            if isinstance(r, dict):
                print(
                    f"{name:8s} one-step NMSE {r['one_step_nmse']:.4g}  "
                    f"rollout RMSE@{args.horizon} {r['rollout_rmse']:.4g}"
                )
        print(f"gap closure {result['gap_closure']:.1%}")
    return 0


def add_parser(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "residual",
        help="fit and evaluate learned residual dynamics",
        description="Learned residual dynamics on top of physics.",
        formatter_class=fmt,
        epilog="example:\n  hybridsim residual fit --scene arm2 --data train.npz "
        "--out runs/arm2\n  hybridsim residual eval --scene arm2 --model runs/arm2 "
        "--data test.npz --horizon 50 --json",
    )
    rs = p.add_subparsers(dest="residual_command", required=True)
    f = rs.add_parser(
        "fit",
        formatter_class=fmt,
        help="fit a residual (and/or physical parameters)",
        description="Fits a residual to trajectories in the interchange format: one-step "
        "regression onto targets computed with MuJoCo C, then an unrolled multi-step loss "
        "through differentiable MJX. Checkpoints in --out; an interrupted fit resumes.",
        epilog="example:\n  hybridsim synthetic-reality record --scene arm2 --effects default "
        "--episodes 30 --steps 200 --seed 0 --out train.npz\n  hybridsim residual fit "
        "--scene arm2 --data train.npz --out runs/arm2 --kind force --sysid dof_damping",
    )
    f.add_argument("--scene", required=True, help="nominal scene: bundled name or MJCF path")
    f.add_argument("--data", required=True, help="training trajectories (.npz)")
    f.add_argument("--out", required=True, help="output folder")
    f.add_argument(
        "--kind",
        default="force",
        choices=["force", "state", "neural", "none"],
        help="residual kind; 'none' fits --sysid parameters only",
    )
    f.add_argument(
        "--sysid",
        default="",
        help="comma-separated MjModel fields to identify, e.g. dof_damping,body_mass",
    )
    f.add_argument("--history", type=int, default=4, help="past control steps in the features")
    f.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    f.add_argument(
        "--dofs",
        nargs="+",
        metavar="JOINT",
        help="joints the residual acts on (default: all), e.g. the robot's, not free objects",
    )
    f.add_argument("--ensemble", type=int, default=1)
    f.add_argument("--iters", type=int, default=2000, help="one-step optimizer steps")
    f.add_argument("--multi-step-iters", type=int, default=100)
    f.add_argument("--horizon", type=int, default=8, help="multi-step unroll length")
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=_fit)
    e = rs.add_parser(
        "eval",
        formatter_class=fmt,
        help="physics-only against hybrid error on test data",
        description="Scores physics only, system identification (if fitted) and the hybrid "
        "on test trajectories: one-step NMSE and qpos RMSE at step H of open-loop rollouts "
        "from windows t = 0, H, 2H, ...; gap_closure = 1 - hybrid/physics rollout RMSE.",
        epilog="example:\n  hybridsim residual eval --scene arm2 --model runs/arm2 "
        "--data test.npz --horizon 50 --json",
    )
    e.add_argument("--scene", required=True)
    e.add_argument("--model", required=True, help="folder written by 'residual fit'")
    e.add_argument("--data", required=True, help="test trajectories (.npz)")
    e.add_argument("--horizon", type=int, default=50)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="operand type of the residual's hidden matmuls at inference",
    )
    e.add_argument(
        "--adapt-steps",
        type=int,
        default=0,
        metavar="K",
        help="also score the hybrid adapted to the payload: before each window, a mass scale "
        "estimated from the last K recorded steps (key 'hybrid_adapted')",
    )
    e.set_defaults(func=_eval)
