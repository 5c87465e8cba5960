"""``hybridsim data import`` (argument parsing only)."""

from __future__ import annotations

import argparse

from hybridsim._src.errors import DataFileError


def _pairs(text: str, flag: str) -> tuple[tuple[str, str], ...]:
    """``a=b,c=d`` -> ``(("a", "b"), ("c", "d"))``."""
    pairs = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise DataFileError(f"{flag} expects NAME=TARGET[,NAME=TARGET...], found {item!r}")
        pairs.append((name.strip(), target.strip()))
    return tuple(pairs)


def _run(args: argparse.Namespace) -> int:
    from hybridsim._src.datasets.importer import (
        ImportConfig,
        check_out,
        import_dataset,
        write_imported,
    )
    from hybridsim._src.loader import load_scene
    from hybridsim._src.progress import Progress

    progress = Progress(not args.quiet)
    config = ImportConfig(
        state_key=args.state,
        action_key=args.action,
        velocity_key=args.velocity,
        joint_map=_pairs(args.joint_map, "--joint-map"),
        action_map=_pairs(args.action_map, "--action-map"),
        units=args.units,
        fps=args.fps,
        state_names=tuple(n.strip() for n in args.state_names.split(",") if n.strip()),
    )
    check_out(args.out, args.src)
    scene = load_scene(args.scene)
    imported = import_dataset(args.src, scene, config, progress=progress.say)
    for line in imported.report.lines():
        print(line)
    path = write_imported(imported, args.out)
    a = imported.arrays
    lens = a["episode_len"]
    print(
        f"wrote {path}: {len(lens)} episodes, {int(lens.min())}..{int(lens.max())} control "
        f"steps, control_dt {float(a['control_dt']):.6g} s, timestep "
        f"{float(a['timestep']):.6g} s x {int(a['substeps'])} substeps"
    )
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "import",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="import a LeRobot v3 dataset, robomimic HDF5 or .npz into the interchange .npz",
        description="Reads SRC (a LeRobot v3 dataset folder, a robomimic-style .hdf5/.h5 file "
        "or a hybridsim .npz) offline and writes the interchange .npz that 'residual fit' and "
        "'residual eval' read. State entries are matched to the scene's joints and actions "
        "to its actuators by name; velocities come from a velocity feature or are estimated "
        "from positions; joints not in the log hold the scene's initial state and are "
        "reported. Nothing is written on bad input. See docs/data_import.md.",
        epilog="example:\n  hybridsim data import data/lerobot_arm2_small --scene arm2 "
        "--out arm2_real.npz\n  hybridsim data import demos.hdf5 --scene arm2 "
        "--state robot0_joint_pos --state-names shoulder,elbow --fps 20 --out demos.npz",
    )
    p.add_argument("src", metavar="SRC", help="LeRobot v3 folder, .hdf5/.h5 or .npz")
    p.add_argument("--scene", required=True, help="bundled scene name or MJCF path")
    p.add_argument("--out", required=True, help="output interchange .npz")
    p.add_argument(
        "--state", default="observation.state", help="joint position feature (default %(default)s)"
    )
    p.add_argument("--action", default="action", help="action feature (default %(default)s)")
    p.add_argument(
        "--velocity",
        default=None,
        help="joint velocity feature (default: a '*vel*' feature named like the joints, "
        "else estimated from positions)",
    )
    p.add_argument(
        "--joint-map",
        default="",
        metavar="NAME=JOINT,...",
        help="dataset state names -> scene joint entries (e.g. elbow_flex=elbow)",
    )
    p.add_argument(
        "--action-map",
        default="",
        metavar="NAME=ACTUATOR,...",
        help="dataset action names -> scene actuators",
    )
    p.add_argument(
        "--units",
        default="rad",
        choices=["rad", "deg"],
        help="units of hinge positions and velocities in the log (default rad)",
    )
    p.add_argument(
        "--fps", type=float, default=None, help="frames per second (overrides the source's)"
    )
    p.add_argument(
        "--state-names",
        default="",
        metavar="A,B,...",
        help="names of the state entries, for sources without names (robomimic)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_run)
