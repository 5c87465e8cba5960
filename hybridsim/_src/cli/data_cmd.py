"""``hybridsim data import`` and ``hybridsim data export``: real robot data in and out."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from hybridsim._src.datasets import export_cli, import_cli

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "data",
        formatter_class=fmt,
        help="import real robot logs (LeRobot v3, robomimic HDF5) and export LeRobot datasets",
        description="Real robot data in and out of the interchange .npz that 'residual fit' "
        "and 'residual eval' read.",
        epilog="examples:\n  hybridsim data import my_lerobot_dataset --scene arm2 "
        "--out train.npz\n  hybridsim data export rollouts.npz --format lerobot "
        "--out my_export --camera main",
    )
    ds = p.add_subparsers(dest="data_command", required=True)
    import_cli.add_parser(ds)
    export_cli.add_parser(ds)
