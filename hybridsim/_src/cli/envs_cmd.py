"""``hybridsim envs list``: the registered tasks with their sizes."""

from __future__ import annotations

import argparse
import json


def cmd_envs_list(args: argparse.Namespace) -> int:
    from hybridsim import envs
    from hybridsim._src.bench import aligned_table

    rows = []
    for name in envs.registered():
        env = envs.make(name)
        rows.append(
            {
                "name": name,
                "scene": env.scene.name,
                "agents": list(getattr(env, "agents", ())) or None,
                "observation_size": env.observation_size,
                "action_size": env.action_size,
                "control_dt": env.control_dt,
                "episode_length": env.episode_length,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ["task", "scene", "agents", "obs", "action", "control_dt (s)", "episode steps"]
    body = [
        [
            r["name"],
            r["scene"],
            ", ".join(r["agents"]) if r["agents"] else "1",
            str(r["observation_size"]),
            str(r["action_size"]),
            f"{r['control_dt']:g}",
            str(r["episode_length"]),
        ]
        for r in rows
    ]
    print(aligned_table(header, body, left={0, 1, 2}))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``envs`` (with its ``list`` subcommand) to the ``hybridsim`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "envs",
        formatter_class=fmt,
        help="list the environment tasks (functional JAX API in hybridsim.envs)",
        description="Tasks on the bundled scenes, each with a default config; sizes are per "
        "agent for multi-agent tasks.",
        epilog="example:\n  hybridsim envs list\n  hybridsim envs list --json",
    )
    sub = p.add_subparsers(dest="envs_command", required=True)
    r = sub.add_parser(
        "list",
        formatter_class=fmt,
        help="print every registered task",
        description="Prints every registered task: scene, agents, observation and action "
        "sizes, control step and episode length.",
        epilog="example:\n  hybridsim envs list --json",
    )
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    r.set_defaults(func=cmd_envs_list)
