"""``hybridsim policy train``: APG, SHAC or PPO on a registered task (nominal or hybrid)."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path

from hybridsim._src.errors import EnvError
from hybridsim._src.learning.common import ALGOS, TrainConfig


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="train a task policy: analytic policy gradients, SHAC or PPO",
        description="Trains a task policy (observation -> action in [-1, 1]) on a registered "
        "task, in nominal physics or in the hybrid (--residual). apg and shac differentiate "
        "through the MJX rollouts; ppo is Brax's model-free trainer. Writes OUT/policy (a "
        "policy folder that `hybridsim eval policies --task` and the envs run), "
        "OUT/curve.json (return and success rate against env steps and wall time, with "
        "gradient health for apg/shac) and OUT/tb (TensorBoard). Progress goes to stderr; "
        "the last stdout line is a JSON summary.",
        epilog="example:\n  hybridsim policy train --task hybridsim/Reach-v0 --algo apg "
        "--steps 200000 --out runs/reach_apg",
    )
    p.add_argument("--task", required=True, help="registered task, e.g. hybridsim/Reach-v0")
    p.add_argument("--algo", required=True, choices=ALGOS)
    p.add_argument("--residual", metavar="DIR", help="train in the hybrid: a residual fit folder")
    p.add_argument("--steps", type=int, default=1_000_000, help="env-step budget (default 1e6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    g = p.add_argument_group("apg / shac")
    g.add_argument("--num-envs", type=int, default=None, help="parallel envs (default 64)")
    g.add_argument("--window", type=int, default=None, help="gradient window, control steps")
    g.add_argument("--episode-length", type=int, default=None, help="default: the task's")
    g.add_argument("--soft-contact", type=float, default=None, help="contact softening >= 1")
    g.add_argument("--eval-every", type=int, default=None, help="iterations between evals")
    g.add_argument("--learning-rate", type=float, default=None, help="the policy's Adam rate")
    g.add_argument(
        "--health-seeds", type=int, default=None, help="gradient-health seeds per eval (0: off)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from hybridsim._src.progress import Progress

    config = TrainConfig(
        task=args.task,
        algo=args.algo,
        out=args.out,
        env_steps=args.steps,
        seed=args.seed,
        residual_dir=args.residual,
    )
    progress = Progress(enabled=not args.quiet)
    hyper = {
        "num_envs": args.num_envs,
        "window": args.window,
        "episode_length": args.episode_length,
        "soft_contact": args.soft_contact,
        "eval_every": args.eval_every,
        "learning_rate": args.learning_rate,
        "health_seeds": args.health_seeds,
    }
    hyper = {k: v for k, v in hyper.items() if v is not None}
    if args.algo == "apg":
        from hybridsim._src.learning import apg

        result = apg.train(config, progress, apg.APGConfig(**hyper))
    elif args.algo == "shac":
        from hybridsim._src.learning import shac

        result = shac.train(config, progress, shac.SHACConfig(**hyper))
    else:
        if hyper:
            raise EnvError(f"ppo takes none of the apg/shac options {sorted(hyper)}")
        try:
            ppo = importlib.import_module("hybridsim._src.learning.ppo")
        except ModuleNotFoundError as e:
            if e.name != "hybridsim._src.learning.ppo":
                raise
            raise EnvError("ppo: not available") from None
        result = ppo.train(config, progress)
    last = result.curve[-1]
    summary = {
        "policy": str(result.policy_dir),
        "final_return": result.final_return,
        "success_rate": last.success_rate,
        "env_steps": last.env_steps,
        "wall_s": last.wall_s,
    }
    print(json.dumps(summary))
    return 0
