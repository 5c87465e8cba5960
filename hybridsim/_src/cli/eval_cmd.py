"""``hybridsim eval policies`` and ``hybridsim eval model``: the world model as evaluator."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from hybridsim._src.evaluation import model_cli, policies_cli

    p = sub.add_parser(
        "eval",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="evaluate and rank policies in the world model; score the model itself",
        description="The world model as evaluator: 'policies' runs policies closed loop in "
        "physics or the hybrid and ranks them against a reference; 'model' reports the "
        "model's open-loop error against horizon.",
        epilog="examples:\n  hybridsim eval policies --scene arm2 --residual runs/arm2 "
        "--policy examples/eval/pd_policies.py:pd_kp4 --policy "
        "examples/eval/pd_policies.py:pd_kp16 --score examples/eval/pd_policies.py:tracking_score "
        "--steps 100 --json\n  hybridsim eval model --scene arm2 --residual runs/arm2 "
        "--data test.npz --json",
    )
    es = p.add_subparsers(dest="eval_command", required=True)
    policies_cli.add_parser(es)
    model_cli.add_parser(es)
