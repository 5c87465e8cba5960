"""``hybridsim``: demo, rollout, bench and scenes. Arguments are parsed here and nowhere else."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hybridsim._src.errors import HybridsimError
from hybridsim._src.gpu import warn_if_gpu_unused

DEFAULT_SCENE = "tabletop"


def _smooth_random_ctrl(scene, batch: int, steps: int, seed: int) -> np.ndarray:
    """Ornstein-Uhlenbeck controls around the keyframe's, inside the control range."""
    rng = np.random.default_rng(seed)
    low, high = scene.ctrl_range()
    centre = np.clip(
        scene.initial_ctrl(),
        np.where(np.isfinite(low), low, -1.0),
        np.where(np.isfinite(high), high, 1.0),
    )
    span = np.where(np.isfinite(high - low), (high - low) / 2, 1.0)
    u = np.empty((batch, steps, scene.nu))
    x = np.zeros((batch, scene.nu))
    for t in range(steps):
        x += -0.05 * x + 0.15 * rng.standard_normal(x.shape)
        u[:, t] = centre + 0.5 * span * x
    return np.clip(u, low, high)


def cmd_demo(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.progress import Progress
    from hybridsim._src.render import render_frames, tile, write_png

    progress = Progress()
    hs.enable_compilation_cache()
    if args.backend != "c":
        warn_if_gpu_unused()
    out = Path(args.out)
    with progress.phase(f"loading scene {args.scene!r}"):
        model = hs.make_model(args.scene, args.batch, backend=args.backend, substeps=args.substeps)
    scene = model.scene
    ctrl = _smooth_random_ctrl(scene, args.batch, args.steps, args.seed)
    state = hs.init(model)
    # A JAX backend compiles one program per rollout length: warm up with the full length.
    warmup = ctrl[:, :2] if model.backend == "c" else ctrl
    with progress.phase(f"warm-up on backend {model.backend!r} (compiles JAX backends once)"):
        hs.rollout(model, state, warmup)
    with progress.phase(f"rolling out {args.batch} worlds x {args.steps} control steps"):
        t0 = time.perf_counter()
        traj = hs.rollout(model, state, ctrl)
        qpos = np.asarray(traj.qpos)
        wall = time.perf_counter() - t0
    physics_steps = args.batch * args.steps * args.substeps
    sim_seconds = args.batch * args.steps * model.control_dt
    sps, rtf = physics_steps / wall, sim_seconds / wall
    traj_path = hs.save_trajectory(out / "rollout.npz", traj)
    picture = None
    if not args.no_render:
        with progress.phase("rendering world 0 with MuJoCo Warp's batch renderer"):
            idx = np.linspace(0, args.steps, 8).round().astype(int)
            frames = render_frames(scene, qpos[0, idx], width=args.width, height=args.height)
            picture = write_png(out / "rollout.png", tile(frames, 4))
    flagged = int(np.count_nonzero(np.asarray(traj.status)))
    print(
        f"scene {scene.name}: nq={scene.nq} nv={scene.nv} nu={scene.nu} "
        f"timestep={scene.timestep:g}s control_dt={model.control_dt:g}s"
    )
    print(
        f"backend {traj.backend}: {args.batch} worlds x {args.steps} control steps in {wall:.3f} s"
    )
    print(f"  {sps:,.0f} physics steps/s, real-time factor {rtf:,.0f}x, {flagged} world(s) flagged")
    if picture is None:
        print(f"wrote {traj_path} (no picture: --no-render)")
    else:
        print(f"wrote {traj_path} and {picture} (8 frames of world 0)")
    if not args.no_residual:
        _demo_residual(args, out, progress)
    print(f"output folder: {out.resolve()}")
    return 0


def _demo_residual(args: argparse.Namespace, out: Path, progress) -> None:
    """Records a synthetic reality, fits a force residual, prints physics-only against hybrid
    error."""
    import hybridsim as hs
    from hybridsim import residual, synthetic_reality
    from hybridsim._src.residual.evaluate import error_vs_horizon, plot_error_vs_horizon

    scene = hs.load_scene(args.residual_scene)
    effects = synthetic_reality.parse_effects("default")
    with progress.phase(f"recording a synthetic reality of {scene.name!r}"):
        train = synthetic_reality.record(
            scene, effects, episodes=24, steps=150, seed=args.seed, substeps=2
        )
        test = synthetic_reality.record(
            scene, effects, episodes=6, steps=150, seed=args.seed + 1, substeps=2
        )
    config = residual.FitConfig(
        residual=residual.ResidualConfig(kind="force", hidden=(256, 256)),
        one_step_iters=1500,
        multi_step_iters=0,
        seed=args.seed,
    )
    with progress.phase("fitting a force residual (one-step, MuJoCo C targets)"):
        fitted = residual.fit(
            scene,
            residual.episodes_from(vars(train)),
            config,
            out / "residual",
            progress=progress.say,
        )
    horizons = [1, 5, 10, 25, 50]
    test_ep = residual.episodes_from(vars(test))
    with progress.phase("evaluating open-loop error on held-out episodes"):
        phys = error_vs_horizon(scene, test_ep, horizons)
        hyb = error_vs_horizon(scene, test_ep, horizons, fitted.residual)
    plot = plot_error_vs_horizon(
        out / "residual_error.png",
        horizons,
        {"physics only": phys, "hybrid (force residual)": hyb},
        f"{scene.name}: synthetic reality with latency, backlash, friction",
    )
    print(
        f"residual on {scene.name}: synthetic reality effects "
        + ", ".join(f"{k}={v}" for k, v in effects.active().items())
    )
    print(f"  {'horizon':>8s} {'physics qpos RMSE':>18s} {'hybrid qpos RMSE':>17s}")
    for h, p, q in zip(horizons, phys, hyb, strict=True):
        print(f"  {h:8d} {p:18.4g} {q:17.4g}")
    print(f"  gap closure at H=25: {1 - hyb[3] / phys[3]:.0%}; plot {plot}")


def cmd_rollout(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.io import load_array
    from hybridsim._src.progress import Progress

    progress = Progress(not args.quiet)
    hs.enable_compilation_cache()
    if args.backend != "c":
        warn_if_gpu_unused()
    scene = hs.load_scene(args.scene)
    ctrl = load_array(args.ctrl, "controls")
    if ctrl.ndim != 3 or ctrl.shape[2] != scene.nu:
        raise hs.DataFileError(
            f"controls file {args.ctrl!r}: expected shape (B, T, nu={scene.nu}) for scene "
            f"{scene.name!r}, found {ctrl.shape}"
        )
    bad = ~np.isfinite(ctrl)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise hs.DataFileError(
            f"controls file {args.ctrl!r} has {int(bad.sum())} non-finite value(s), the first "
            f"at [world {first[0]}, step {first[1]}, actuator {first[2]}]"
        )
    bsz, steps, _ = ctrl.shape
    params = None
    if args.randomize:
        import jax

        from hybridsim._src.randomize import load_randomize_config, randomize

        config = load_randomize_config(args.randomize)
        params = randomize(scene, jax.random.key(args.seed), bsz, config)
        progress.say(f"randomizing {sorted(config.to_dict())} per world (seed {args.seed})")
    with progress.phase(f"preparing {bsz} worlds of {scene.name!r} on backend {args.backend!r}"):
        model = hs.make_model(
            scene, bsz, backend=args.backend, substeps=args.substeps, params=params
        )
    with progress.phase(f"rolling out {steps} control steps on {model.backend!r}"):
        traj = hs.rollout(model, hs.init(model), ctrl)
    path = hs.save_trajectory(args.out, traj)
    flagged = np.flatnonzero(np.asarray(traj.status))
    if flagged.size:
        progress.say(f"warning: worlds {flagged.tolist()} were flagged (see 'status' in the file)")
    print(
        f"wrote {path}: qpos {tuple(traj.qpos.shape)}, qvel {tuple(traj.qvel.shape)}, "
        f"ctrl {tuple(traj.ctrl.shape)}, control_dt {traj.control_dt:g} s, "
        f"backend {traj.backend}"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src import bench
    from hybridsim._src.progress import Progress

    progress = Progress()
    hs.enable_compilation_cache()
    rows = bench.run_throughput(
        scenes=args.scenes,
        backends=args.backends,
        batch_sizes=args.batch_sizes,
        steps=args.steps,
        substeps=args.substeps,
        repeats=args.repeats,
        progress=progress.say,
    )
    print(bench.format_table(rows))
    bench.write_json(args.out, rows, {"command": " ".join(sys.argv)})
    print(f"wrote {args.out}")
    return 0


def cmd_scenes(args: argparse.Namespace) -> int:
    import hybridsim as hs

    rows = []
    for name in hs.bundled_scenes():
        s = hs.load_scene(name)
        m = s.mj_model
        rows.append(
            {
                "name": name,
                "nq": s.nq,
                "nv": s.nv,
                "nu": s.nu,
                "timestep": s.timestep,
                "ngeom": int(m.ngeom),
                "nkey": int(m.nkey),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'scene':12s} {'nq':>4s} {'nv':>4s} {'nu':>4s} {'timestep':>9s}")
        for r in rows:
            print(f"{r['name']:12s} {r['nq']:4d} {r['nv']:4d} {r['nu']:4d} {r['timestep']:9g}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="hybridsim",
        description="Batched physics-plus-neural hybrid simulation for robot learning.",
        formatter_class=fmt,
        epilog="examples:\n  hybridsim demo\n  hybridsim rollout --scene arm2 --ctrl u.npy "
        "--out traj.npz\n  hybridsim bench --scenes arm2 --backends c mjx",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo",
        formatter_class=fmt,
        help="batched rollout of the default scene: speed, real-time factor, a picture",
        description="Rolls out a batch of worlds of a bundled scene with smooth random "
        "controls, prints physics steps per second and the real-time factor, and writes "
        "the trajectory (rollout.npz) and a picture of world 0 (rollout.png) to --out. "
        "Then records a synthetic reality of the 2-link arm (latency, backlash, Coulomb "
        "friction, drag, a contact friction field, heavier bodies), fits a force residual to "
        "it, and prints physics-only against hybrid open-loop error (plot: residual_error.png).",
        epilog="example:\n  hybridsim demo --scene quadruped --batch 512 --steps 400",
    )
    p.add_argument("--scene", default=DEFAULT_SCENE, help=f"scene (default {DEFAULT_SCENE})")
    p.add_argument("--backend", default="auto", choices=["auto", "c", "mjx", "warp"])
    p.add_argument("--batch", type=int, default=256, help="number of worlds B")
    p.add_argument("--steps", type=int, default=500, help="control steps T")
    p.add_argument("--substeps", type=int, default=1, help="physics steps per control step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--out", default="hybridsim_out/demo", help="output folder")
    p.add_argument(
        "--residual-scene", default="arm2", help="scene of the residual part (default arm2)"
    )
    p.add_argument(
        "--no-residual", action="store_true", help="skip the synthetic reality + residual part"
    )
    p.add_argument(
        "--no-render",
        action="store_true",
        help="skip the picture (it needs warp-lang, which MuJoCo Warp's renderer runs on)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "rollout",
        formatter_class=fmt,
        help="roll out controls from a .npy file and write an interchange .npz",
        description="Every world starts from the scene's first keyframe (qpos0 if none) and "
        "follows CTRL (B, T, nu). OUT.npz holds qpos (B, T+1, nq), qvel (B, T+1, nv), "
        "ctrl (B, T, nu), control_dt (s), plus time, sensordata and per-world status.",
        epilog="example:\n  python -c \"import numpy as np; np.save('u.npy', "
        'np.zeros((4, 100, 2)))"\n  hybridsim rollout --scene arm2 --ctrl u.npy '
        "--backend c --substeps 2 --out traj.npz",
    )
    p.add_argument("--scene", required=True, help="bundled scene name or MJCF path")
    p.add_argument("--ctrl", required=True, help="controls .npy, shape (B, T, nu)")
    p.add_argument("--backend", default="auto", choices=["auto", "c", "mjx", "warp"])
    p.add_argument("--substeps", type=int, default=1, help="physics steps per control step")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument(
        "--randomize",
        help="domain randomization ranges: a .json/.toml table (e.g. the randomize.json that "
        "'scene build' writes) or a scene spec with a [randomize] table",
    )
    p.add_argument("--seed", type=int, default=0, help="randomization seed")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_rollout)

    p = sub.add_parser(
        "bench",
        formatter_class=fmt,
        help="throughput table of hybridsim against the raw libraries, as JSON too",
        description="Measures physics steps per second and the real-time factor of "
        "hybridsim rollouts and of the raw library doing the same work in the same run.",
        epilog="example:\n  hybridsim bench --scenes arm2 quadruped --backends c mjx "
        "--batch-sizes 64 1024 --steps 100 --out bench.json",
    )
    p.add_argument("--scenes", nargs="+", default=["arm2", "quadruped"])
    p.add_argument("--backends", nargs="+", default=["c"], choices=["c", "mjx", "warp"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 64, 1024])
    p.add_argument("--steps", type=int, default=200, help="physics steps per world")
    p.add_argument("--substeps", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="hybridsim_out/bench.json")
    p.set_defaults(func=cmd_bench)

    from hybridsim._src.cli import (
        data_cmd,
        envs_cmd,
        eval_cmd,
        policy_cmd,
        reconstruct_cmd,
        residual_cmd,
        scene_cmd,
        synthetic_reality_cmd,
    )

    synthetic_reality_cmd.add_parser(sub)
    residual_cmd.add_parser(sub)
    scene_cmd.add_parser(sub)
    reconstruct_cmd.add_parser(sub)
    envs_cmd.add_parser(sub)
    data_cmd.add_parser(sub)
    eval_cmd.add_parser(sub)
    policy_cmd.add_parser(sub)

    p = sub.add_parser(
        "scenes",
        help="list the bundled scenes",
        description="Lists bundled scenes with their sizes.",
        epilog="example:\n  hybridsim scenes --json",
        formatter_class=fmt,
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scenes)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HybridsimError as e:
        print(f"hybridsim {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
