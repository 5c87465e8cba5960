"""``hybridsim eval model``: open-loop error against horizon and ensemble calibration."""

from __future__ import annotations

import argparse
import json

from hybridsim._src.progress import Progress


def _run(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.evaluation.model_eval import (
        DEFAULT_HORIZONS,
        evaluate_model,
        plot_model_report,
    )
    from hybridsim._src.residual.data import episodes_from
    from hybridsim._src.residual.fit import load_fitted

    progress = Progress(not args.quiet)
    hs.enable_compilation_cache()
    scene = hs.load_scene(args.scene)
    episodes = episodes_from(hs.load_trajectory(args.data, scene))
    fitted = load_fitted(args.residual, scene)
    neural = load_fitted(args.neural, scene) if args.neural else None
    horizons = args.horizons
    if horizons is None:  # the defaults that fit the data (documented in --help)
        horizons = [h for h in DEFAULT_HORIZONS if h <= episodes.longest] or [episodes.longest]
    with progress.phase(f"open-loop rollouts at horizons {horizons}"):
        report = evaluate_model(scene, episodes, fitted, neural, horizons, args.precision)
    for line in _table(report):
        print(line)
    if args.plot:
        path = plot_model_report(args.plot, report, f"{scene.name}: open-loop error")
        print(f"wrote {path}")
    if args.json:
        print(json.dumps(report.to_json()))
    return 0


def _table(report) -> list[str]:
    """Human-readable lines: error per horizon and model, then the calibration."""

    def cell(x):
        return f"{x:10.4g}" if x == x else f"{'n/a':>10s}"

    models = {"physics": report.physics, "hybrid": report.hybrid, "neural": report.neural}
    shown = {k: v for k, v in models.items() if v is not None}
    lines = ["open-loop qpos RMSE at horizon H (control steps):"]
    lines.append(f"{'H':>5s} {'windows':>8s}" + "".join(f"{k:>10s}" for k in shown))
    for i, h in enumerate(report.horizons):
        row = "".join(cell(v[i]) for v in shown.values())
        lines.append(f"{h:5d} {report.windows[i]:8d}{row}")
    if report.hybrid is None:
        lines.append("hybrid: none (the fitted model is pure-neural)")
    if report.neural is None:
        lines.append("neural: not given")
    gap = ", ".join(
        f"H={h}: {g:.1%}" for h, g in zip(report.horizons, report.gap_closure, strict=True)
    )
    lines.append(f"gap closure: {gap}")
    cal = report.calibration
    if cal is None:
        lines.append(f"calibration: not available ({report.calibration_note})")
        return lines
    lines.append(f"calibration of the {cal.model} ensemble ({cal.ensemble} members):")
    lines.append(f"{'H':>5s}{'spread':>10s}{'rmse':>10s}{'spearman':>10s}{'ratio':>10s}")
    for i, h in enumerate(report.horizons):
        vals = (cal.spread[i], cal.rmse[i], cal.spearman[i], cal.ratio[i])
        lines.append(f"{h:5d}" + "".join(cell(v) for v in vals))
    return lines


def add_parser(sub) -> None:
    p = sub.add_parser(
        "model",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="open-loop error against horizon of physics, hybrid and neural; calibration",
        description="Scores the world model on test trajectories: the qpos RMSE at step H "
        "of open-loop rollouts (recorded controls, windows t = 0, H, 2H, ... of every "
        "episode) of nominal physics, the hybrid (--residual, with its identified "
        "parameters) and the pure-neural model (--neural, or --residual when that is "
        "neural). With an ensemble (> 1 member) it also reports calibration: per horizon "
        "the mean ensemble spread, the RMSE of the ensemble mean, their Spearman "
        "correlation across windows and the ratio RMSE / spread. With --json the last "
        "line is one JSON object.",
        epilog="example:\n  hybridsim eval model --scene arm2 --residual runs/arm2 "
        "--data test.npz --neural runs/arm2_neural --horizons 1 5 10 25 50 "
        "--plot fidelity.png --json",
    )
    p.add_argument("--scene", required=True, help="nominal scene: bundled name or MJCF path")
    p.add_argument(
        "--residual", required=True, metavar="DIR", help="folder written by 'residual fit'"
    )
    p.add_argument("--data", required=True, help="test trajectories (.npz)")
    p.add_argument(
        "--neural",
        metavar="DIR",
        help="a pure-neural model ('residual fit --kind neural') to compare with",
    )
    p.add_argument(
        "--horizons",
        type=int,
        nargs="+",
        metavar="H",
        help="open-loop horizons in control steps (default: those of 1 5 10 25 50 that "
        "fit in the longest episode)",
    )
    p.add_argument("--plot", metavar="OUT.png", help="write error-vs-horizon and calibration")
    p.add_argument(
        "--precision",
        choices=("float32", "bfloat16"),
        default="float32",
        help="operand type of the residual's hidden matmuls at inference",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_run)
