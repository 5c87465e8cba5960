"""``hybridsim data export``: interchange trajectories out as a LeRobot v3 dataset."""

from __future__ import annotations

import argparse
import json

from hybridsim._src.errors import DataFileError
from hybridsim._src.progress import Progress


def _export(args: argparse.Namespace) -> int:
    from hybridsim._src.datasets.lerobot_write import ExportConfig, export_lerobot

    if args.camera is None and (args.width is not None or args.height is not None):
        raise DataFileError("--width and --height size the video of --camera; give --camera NAME")
    config = ExportConfig(
        joints=tuple(j for j in (args.joints or "").split(",") if j),
        positions_only=args.positions_only,
        camera=args.camera,
        width=160 if args.width is None else args.width,
        height=120 if args.height is None else args.height,
        task=args.task,
        robot_type=args.robot_type,
        vcodec=args.vcodec,
    )
    progress = Progress(not args.quiet)
    out = export_lerobot(
        args.traj, args.scene, args.out, config, progress=progress.say, restart=args.restart
    )
    info = json.loads((out / "meta" / "info.json").read_text())
    video = f", video {config.camera} {config.width}x{config.height}" if config.camera else ""
    print(
        f"wrote {out}: LeRobot {info['codebase_version']} dataset, "
        f"{info['total_episodes']} episodes, {info['total_frames']} frames at {info['fps']} fps, "
        f"state {info['features']['observation.state']['names']}{video}"
    )
    return 0


def add_parser(sub) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "export",
        formatter_class=fmt,
        help="write trajectories (.npz) as a LeRobot v3 dataset",
        description="Writes interchange trajectories as a LeRobot v3 dataset folder (what "
        "LeRobot 0.4.4 writes): observation.state (qpos of the joints), observation.velocity "
        "(qvel), action (ctrl) and, with --camera, a rendered mp4 video. An episode of T "
        "control steps becomes T+1 frames; the last frame repeats the last action. "
        "fps = 1 / control_dt must be a whole number. Works in DIR.partial/ one episode at a "
        "time: an interrupted export resumes when rerun with the same arguments.",
        epilog="example:\n  hybridsim synthetic-reality record --scene arm2 --effects default "
        "--episodes 10 --steps 200 --seed 0 --out rec.npz\n  hybridsim data export rec.npz "
        "--format lerobot --out arm2_lerobot --camera main --width 320 --height 240",
    )
    p.add_argument("traj", metavar="TRAJ.npz", help="interchange trajectories")
    p.add_argument("--format", choices=["lerobot"], default="lerobot", help="output format")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create")
    p.add_argument(
        "--scene",
        help="bundled name or MJCF path (default: the scene named in the file's "
        "reality_metadata, written by 'synthetic-reality record')",
    )
    p.add_argument(
        "--joints",
        metavar="J1,J2",
        help="export these joints only, e.g. the robot's (default: all joints)",
    )
    p.add_argument("--positions-only", action="store_true", help="leave out observation.velocity")
    p.add_argument("--camera", metavar="NAME", help="render a video from this scene camera")
    p.add_argument("--width", type=int, help="video width in pixels, even (default 160)")
    p.add_argument("--height", type=int, help="video height in pixels, even (default 120)")
    p.add_argument(
        "--vcodec",
        choices=["libsvtav1", "h264"],
        default="libsvtav1",
        help="video encoder (default libsvtav1, AV1 as LeRobot writes)",
    )
    p.add_argument("--task", default="hybridsim", help="task text of every episode")
    p.add_argument("--robot-type", help="robot_type in meta/info.json (default: the scene name)")
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard an unfinished export of other inputs or options in DIR.partial/",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_export)
