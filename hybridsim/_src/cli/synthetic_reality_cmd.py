"""``hybridsim synthetic-reality record``: record a synthetic reality to a file.

A synthetic reality is a scene plus effects the nominal model does not know (a synthetic
sim-to-real gap); ``hybridsim.synthetic_reality`` makes it.
"""

from __future__ import annotations

import argparse
import json

_SPEC_HELP = (
    "comma-separated key=value items and presets, later ones win, e.g. "
    "'latency=2,backlash=0.05,coulomb=0.3,friction_field=0.5,noise=0.001' or 'default,latency=4'. "
    "Keys: latency (control steps), deadband, backlash (fractions of half the ctrl range), "
    "torque_speed (no-load speed, rad/s or m/s), coulomb (N m or N), coulomb_eps (rad/s or m/s), "
    "damping_scale, mass_scale, drag, friction_field (amplitude < 1), friction_k (rad/m), "
    "noise (std of the recorded qpos/qvel). Presets: default, none (default: none)"
)


def cmd_synthetic_reality_record(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src import synthetic_reality
    from hybridsim._src.progress import Progress

    progress = Progress(not args.quiet)
    effects = synthetic_reality.parse_effects(args.effects)
    behaviour = synthetic_reality.Behaviour(kind=args.behaviour, scale=args.scale)
    scene = hs.load_scene(args.scene)
    active = effects.active()
    what = ", ".join(f"{k}={v:g}" for k, v in active.items()) or "none"
    with progress.phase(
        f"recording {args.episodes} episodes x {args.steps} control steps of {scene.name!r} "
        f"with effects {what}"
    ):
        rec = synthetic_reality.record(
            scene,
            effects,
            episodes=args.episodes,
            steps=args.steps,
            seed=args.seed,
            substeps=args.substeps,
            behaviour=behaviour,
            initial_noise=args.initial_noise,
            progress=progress.say,
            rate=args.rate,
            min_steps=args.min_steps,
        )
    path = hs.save_trajectory(
        args.out,
        rec,
        reality_applied_ctrl=rec.applied_ctrl,
        reality_metadata=json.dumps(dict(rec.metadata), sort_keys=True),
    )
    print(
        f"wrote {path}: qpos {rec.qpos.shape}, qvel {rec.qvel.shape}, ctrl {rec.ctrl.shape} "
        f"(commanded), control_dt {rec.control_dt:g} s, scene {scene.name}, effects {what}"
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``synthetic-reality`` (with its ``record`` subcommand) to the ``hybridsim``
    subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "synthetic-reality",
        formatter_class=fmt,
        help="record a synthetic reality (a synthetic sim-to-real gap), to test residual learning",
        description="A synthetic reality is a scene plus effects the nominal model does not know "
        "(a synthetic sim-to-real gap: latency, deadband, backlash, torque-speed limits, "
        "Coulomb friction, drag, damping and mass scales, a contact friction field, sensor "
        "noise), run on MuJoCo C (hybridsim.synthetic_reality).",
        epilog="example:\n  hybridsim synthetic-reality record --scene arm2 --effects default "
        "--episodes 16 --steps 200 --seed 0 --out real.npz",
    )
    sub = p.add_subparsers(dest="synthetic_reality_command", required=True)
    r = sub.add_parser(
        "record",
        formatter_class=fmt,
        help="record episodes of a behaviour policy to an interchange .npz",
        description="Runs EPISODES episodes of STEPS control steps from the scene's first "
        "keyframe with a behaviour policy (OU noise or random sinusoids around the keyframe "
        "ctrl) and writes qpos (N, T+1, nq), qvel (N, T+1, nv), the COMMANDED ctrl "
        "(N, T, nu) and control_dt (s), plus reality_applied_ctrl (what reached the "
        "actuators) and reality_metadata (JSON). The same seed gives the same arrays.",
        epilog="example:\n  hybridsim synthetic-reality record --scene pusher "
        "--effects latency=2,backlash=0.05,coulomb=0.3,friction_field=0.5,noise=0.001 "
        "--episodes 32 --steps 400 --seed 1 --substeps 2 --behaviour sine --out real.npz",
    )
    r.add_argument("--scene", required=True, help="bundled scene name or MJCF path")
    r.add_argument("--effects", default="none", metavar="SPEC", help=_SPEC_HELP)
    r.add_argument("--episodes", type=int, required=True, help="number of episodes N")
    r.add_argument("--steps", type=int, required=True, help="control steps T per episode")
    r.add_argument("--seed", type=int, required=True, help="seed (>= 0); same seed, same data")
    r.add_argument("--substeps", type=int, default=1, help="physics steps per control step")
    r.add_argument(
        "--rate",
        type=float,
        help="record at this many frames per second instead of every --substeps timesteps "
        "(e.g. 30: the reality steps a timestep that divides 1/30 s, written to the file)",
    )
    r.add_argument(
        "--min-steps",
        type=int,
        help="episodes of different lengths, uniform in [MIN_STEPS, STEPS] (episode_len)",
    )
    r.add_argument("--behaviour", default="ou", choices=["ou", "sine"], help="behaviour policy")
    r.add_argument(
        "--scale", type=float, default=0.5, help="behaviour size, fraction of half the ctrl range"
    )
    r.add_argument(
        "--initial-noise",
        type=float,
        default=0.0,
        help="std of the start qpos noise on hinge/slide joints (rad or m)",
    )
    r.add_argument("--out", required=True, help="output .npz")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_synthetic_reality_record)
