"""MuJoCo Menagerie robots by name, through the ``mujoco-menagerie`` package.

The package downloads a robot on first use into its cache; with ``MENAGERIE_ROOT`` set to a
folder laid out like the Menagerie repository (``<root>/<name>/<entry>.xml``) it reads that
offline copy instead.
"""

from __future__ import annotations

from pathlib import Path

from hybridsim._src.errors import SceneError


def resolve_menagerie(name: str) -> Path:
    """The MJCF path of a Menagerie robot.

    Args:
      name: a Menagerie name such as ``"universal_robots_ur5e"``, optionally with an entry
        point: ``"universal_robots_ur5e:ur5e"`` (default: the robot model, not its scene).

    Raises:
      SceneError: the package is not installed, the name is unknown (the message lists close
        names), or the model cannot be found or downloaded.
    """
    try:
        import mujoco_menagerie as mm
    except ImportError:
        raise SceneError(
            f"robot {name!r} looks like a MuJoCo Menagerie name, but the mujoco-menagerie "
            "package is not installed (pip install mujoco-menagerie), or give an MJCF path"
        ) from None
    robot_name, _, entry = name.partition(":")
    try:
        robot = mm.get(robot_name)
    except mm.MenagerieError:
        import difflib

        close = difflib.get_close_matches(robot_name, mm.names(), n=5, cutoff=0.5)
        raise SceneError(
            f"no MuJoCo Menagerie robot named {robot_name!r}"
            + (f"; close names: {close}" if close else "")
        ) from None
    entry = entry or robot.default_model
    if entry not in robot.entry_names:
        raise SceneError(
            f"Menagerie robot {robot_name!r} has no entry point {entry!r}; it has "
            f"{list(robot.entry_names)}"
        )
    try:
        return Path(robot.xml(entry))
    except mm.MenagerieError as e:
        raise SceneError(
            f"could not get Menagerie robot {robot_name!r} ({e}); set MENAGERIE_ROOT to an "
            "offline copy or check the network"
        ) from None
