"""What importing a real-format robot log costs in fidelity.

A synthetic reality of the 2-link arm (``hybridsim.synthetic_reality``, default effects:
latency, backlash, Coulomb friction, drag, a friction field, heavier links) is recorded at
30 Hz, which is not a whole multiple of the scene's 5 ms timestep, with episodes of
different lengths. The same recording reaches the residual two ways:

- ``full state``: hybridsim's own recording: the reality's qpos and qvel in float64;
- ``LeRobot, positions only``: exported as a LeRobot v3 dataset with joint positions only
  (``data.export_lerobot(positions_only=True)``: float32 parquet) and imported back
  (``data.import_dataset``: names mapped, velocities estimated by central differences,
  timing chosen), as a real log arrives.

The same force residual is fitted on each training set and scored on each arm's held-out
episodes: gap closure ``1 - hybrid / physics`` qpos RMSE at H = 30 frames (1 s). The
positions-only model is also scored on the full-state test set. Target: the
positions-only gap closure within 5 points of the full-state one. Also reported: the RMS
error of the estimated velocities against the reality's, and the import time.

Usage::

    python benchmarks/real_logs.py            # about 3 min on 2 CPU cores
    python benchmarks/real_logs.py --quick    # smoke run, under a minute
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import hybridsim as hs  # noqa: E402
from hybridsim import bench, data, residual, synthetic_reality  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "real_logs.json"
RATE_HZ = 30
HORIZON = 30  # frames: 1 s at 30 Hz
TARGET_POINTS = 5.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scene", default="arm2")
    p.add_argument("--train-episodes", type=int, default=40)
    p.add_argument("--test-episodes", type=int, default=12)
    p.add_argument("--min-steps", type=int, default=90, help="shortest episode (frames - 1)")
    p.add_argument("--max-steps", type=int, default=150, help="longest episode (frames - 1)")
    p.add_argument("--iters", type=int, default=1500, help="one-step optimizer steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small smoke run")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    args = p.parse_args(argv)
    if args.quick:
        args.train_episodes, args.test_episodes, args.iters = 10, 4, 200
        args.min_steps, args.max_steps = 40, 60
    if not 1 <= args.min_steps <= args.max_steps or args.max_steps < HORIZON:
        p.error(f"need 1 <= --min-steps <= --max-steps and --max-steps >= {HORIZON}")
    return args


def record(scene: hs.Scene, episodes: int, seed: int, args) -> synthetic_reality.Recording:
    return synthetic_reality.record(
        scene,
        synthetic_reality.parse_effects("default"),
        episodes=episodes,
        steps=args.max_steps,
        seed=seed,
        rate=RATE_HZ,
        min_steps=args.min_steps,
    )


def through_lerobot(rec, scene: hs.Scene, work: Path, name: str) -> tuple[dict, float]:
    """The recording as a positions-only LeRobot dataset, imported back: (arrays, seconds
    the import took)."""
    folder = work / name
    data.export_lerobot(vars(rec), scene, folder, data.ExportConfig(positions_only=True))
    t0 = time.perf_counter()
    imported = data.import_dataset(folder, scene)
    return imported.arrays, time.perf_counter() - t0


def gap(scene, episodes, fitted) -> dict[str, float]:
    phys = residual.evaluate(scene, episodes, HORIZON)["rollout_rmse"]
    hyb = residual.evaluate(scene, episodes, HORIZON, fitted.residual)["rollout_rmse"]
    return {"physics_rmse": phys, "hybrid_rmse": hyb, "gap_closure": 1.0 - hyb / phys}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hs.enable_compilation_cache()
    scene = hs.load_scene(args.scene)
    train = record(scene, args.train_episodes, args.seed, args)
    test = record(scene, args.test_episodes, args.seed + 1, args)
    full = {
        "train": residual.episodes_from(vars(train)),
        "test": residual.episodes_from(vars(test)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        tr, import_s = through_lerobot(train, scene, Path(tmp), "train")
        te, _ = through_lerobot(test, scene, Path(tmp), "test")
        imported = {"train": residual.episodes_from(tr), "test": residual.episodes_from(te)}
        config = residual.FitConfig(
            residual=residual.ResidualConfig(kind="force", hidden=(256, 256)),
            one_step_iters=args.iters,
            multi_step_iters=0,
            select_horizon=HORIZON,
            seed=args.seed,
        )
        fits = {
            name: residual.fit(scene, sets["train"], config, Path(tmp) / f"fit_{name}")
            for name, sets in (("full", full), ("lerobot", imported))
        }
    if not np.array_equal(imported["train"].length, full["train"].length):
        raise SystemExit("the import changed the episode lengths")
    valid = imported["train"].valid  # (N, T) of the imported arrays (padded to the longest)
    t = valid.shape[1]
    true_v = full["train"].qvel[:, :t][valid]
    vel_err = imported["train"].qvel[:, :t][valid] - true_v
    rows = [
        {"data": "full state", "test": "full state", **gap(scene, full["test"], fits["full"])},
        {
            "data": "LeRobot, positions only",
            "test": "LeRobot, positions only",
            **gap(scene, imported["test"], fits["lerobot"]),
        },
        {
            "data": "LeRobot, positions only",
            "test": "full state",
            **gap(scene, full["test"], fits["lerobot"]),
        },
    ]
    print(
        f"{args.scene}: reality at {RATE_HZ} Hz, {args.train_episodes} training and "
        f"{args.test_episodes} test episodes of {args.min_steps}..{args.max_steps} steps, "
        f"timestep {train.timestep * 1e3:.4g} ms x {train.substeps}; gap closure at "
        f"H = {HORIZON} frames"
    )
    print(
        bench.aligned_table(
            ["fitted on", "scored on", "physics RMSE", "hybrid RMSE", "gap closure"],
            [
                [
                    r["data"],
                    r["test"],
                    f"{r['physics_rmse']:.4g}",
                    f"{r['hybrid_rmse']:.4g}",
                    f"{r['gap_closure']:.1%}",
                ]
                for r in rows
            ],
            left={0, 1},
        )
    )
    vel_rms = float(np.sqrt(np.mean(vel_err**2)))
    true_rms = float(np.sqrt(np.mean(true_v**2)))
    frames = int(np.sum(full["train"].length + 1))
    print(
        f"estimated velocities: RMS error {vel_rms:.4g} rad/s against RMS speed "
        f"{true_rms:.4g} rad/s; import of {frames} frames took {import_s:.2f} s"
    )
    points = 100 * abs(rows[0]["gap_closure"] - rows[1]["gap_closure"])
    bench.print_targets(
        [
            (
                f"positions-only gap closure within {TARGET_POINTS:g} points of full state",
                points <= TARGET_POINTS,
                f"{rows[1]['gap_closure']:.1%} against {rows[0]['gap_closure']:.1%} "
                f"({points:.1f} points)",
            )
        ]
    )
    meta = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "scene": args.scene,
        "rate_hz": RATE_HZ,
        "horizon_frames": HORIZON,
        "train_episodes": args.train_episodes,
        "test_episodes": args.test_episodes,
        "steps": [args.min_steps, args.max_steps],
        "iters": args.iters,
        "timestep": train.timestep,
        "substeps": train.substeps,
        "velocity_rms_error": vel_rms,
        "velocity_rms": true_rms,
        "import_seconds": import_s,
        "import_frames": frames,
        "gap_points": points,
        "target_points": TARGET_POINTS,
    }
    print(f"wrote {bench.write_json(args.out, rows, meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
