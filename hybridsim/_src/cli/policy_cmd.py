"""``hybridsim policy train|eval`` and ``hybridsim plan``: learning and planning."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from hybridsim._src.learning import plan_cli, policy_eval_cli, train_cli

    p = sub.add_parser(
        "policy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train task policies through the world model (APG, SHAC, PPO) and evaluate them",
        description="Policy learning on a registered task, in nominal physics or the hybrid: "
        "analytic policy gradients (apg), a short-horizon actor-critic (shac), or Brax's PPO.",
        epilog="examples:\n  hybridsim policy train --task hybridsim/Reach-v0 --algo apg "
        "--out runs/reach_apg\n  hybridsim policy eval --task hybridsim/Reach-v0 "
        "--policy runs/reach_apg/policy --episodes 32 --json",
    )
    ps = p.add_subparsers(dest="policy_command", required=True)
    train_cli.add_parser(ps)
    policy_eval_cli.add_parser(ps)
    plan_cli.add_parser(sub)
