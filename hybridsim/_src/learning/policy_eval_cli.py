"""``hybridsim policy eval``: a saved task policy's mean return and success rate on its task.

Episodes run in the task's functional env (the hybrid with ``--residual``): ``episodes``
worlds reset from keys split from ``seed``, ``episode_length`` control steps in one jitted
``scan(vmap(step))``, the policy fed the env observation and its output used as the action.
An episode's return is the sum of its rewards until it terminates (rewards after a
termination count 0); its success is the task's ``metrics.success`` at the last step, as
``evaluation.worlds.TaskWorld`` scores it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import numpy as np

from hybridsim._src.errors import PolicyError


@dataclasses.dataclass(frozen=True)
class TaskPolicyEval:
    """What ``evaluate_task_policy`` measured."""

    returns: np.ndarray
    """(N,) float64: each episode's undiscounted return."""
    success: np.ndarray | None
    """(N,) float64: 1.0 where the episode ended in success; None: the task has none."""

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def success_rate(self) -> float | None:
        return None if self.success is None else float(np.mean(self.success))


def evaluate_task_policy(env: Any, policy: Any, episodes: int, seed: int = 0) -> TaskPolicyEval:
    """Runs ``policy(obs (N, observation_size)) -> action (N, action_size)`` for
    ``episodes`` episodes of ``env.episode_length`` steps of the functional ``env`` (module
    doc). PolicyError when the policy's output does not fit the env's action."""
    import jax
    import jax.numpy as jnp

    if episodes < 1:
        raise PolicyError(f"episodes must be positive, got {episodes}")
    probe = jax.eval_shape(policy, jax.ShapeDtypeStruct((episodes, env.observation_size), "f4"))
    if getattr(probe, "shape", None) != (episodes, env.action_size):
        raise PolicyError(
            f"the policy maps ({episodes}, {env.observation_size}) observations to "
            f"{getattr(probe, 'shape', probe)}, the task needs ({episodes}, {env.action_size})"
        )

    @jax.jit
    def run(keys):
        state = jax.vmap(env.reset)(keys)

        def body(carry, _):
            s, ret, ended = carry
            s = jax.vmap(env.step)(s, policy(s.obs))
            ret = ret + jnp.where(ended, 0.0, s.reward)
            return (s, ret, ended | (s.done > 0)), None

        zeros = jnp.zeros(episodes, jnp.float32)
        init = (state, zeros, jnp.zeros(episodes, bool))
        (state, ret, _), _ = jax.lax.scan(body, init, None, length=env.episode_length)
        success = getattr(state.metrics, "success", None)
        return ret, success

    ret, success = run(jax.random.split(jax.random.PRNGKey(seed), episodes))
    return TaskPolicyEval(
        returns=np.asarray(ret, np.float64),
        success=None if success is None else np.asarray(success, np.float64),
    )


def cmd_eval(args: argparse.Namespace) -> int:
    import hybridsim as hs
    from hybridsim._src.envs.registry import make
    from hybridsim._src.evaluation.saved_policy import load_policy_folder
    from hybridsim._src.evaluation.worlds import _task_name

    if args.reality and args.residual:
        raise PolicyError("--reality and --residual are two worlds: give one")
    if args.episodes < 1:
        raise PolicyError(f"--episodes must be positive, got {args.episodes}")
    hs.enable_compilation_cache()
    policy = load_policy_folder(args.policy)
    if not policy.is_task_policy:
        raise PolicyError(
            f"{args.policy!r} is not a task policy (policy.json 'obs' must be ['task']); "
            "run scene policies with 'hybridsim eval policies'"
        )
    name = _task_name(args.task)
    env = make(name, residual_dir=args.residual) if args.residual else make(name)
    world = "hybrid" if args.residual else "physics"
    if args.reality:
        from hybridsim._src.envs.reality import RealityWrapper
        from hybridsim._src.synthetic_reality import parse_effects

        env, world = RealityWrapper(env, parse_effects(args.reality)), "reality"
    t0 = time.perf_counter()
    result = evaluate_task_policy(env, policy, args.episodes, args.seed)
    wall = time.perf_counter() - t0
    success = result.success_rate
    print(
        f"{name} ({world}): {args.episodes} episodes of {env.episode_length} steps in "
        f"{wall:.1f} s: mean return {result.mean_return:.3f}"
        + ("" if success is None else f", success rate {100 * success:.1f}%")
    )
    if args.json:
        doc = {
            "task": name,
            "policy": str(args.policy),
            "world": world,
            "residual": args.residual,
            "episodes": args.episodes,
            "episode_length": env.episode_length,
            "seed": args.seed,
            "mean_return": result.mean_return,
            "success_rate": success,
            "returns": result.returns.tolist(),
        }
        print(json.dumps(doc))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="a saved task policy's mean return and success rate on its task",
        description="Runs a task policy folder (policy.json 'obs': ['task'], e.g. written by "
        "'hybridsim policy train') for --episodes episodes of the task's episode length, in "
        "nominal physics or the hybrid (--residual), and prints the mean return and the "
        "success rate (where the task defines success). With --json the last line is JSON.",
        epilog="example:\n  hybridsim policy eval --task hybridsim/Reach-v0 "
        "--policy runs/reach_ppo/policy --episodes 64 --json",
    )
    p.add_argument("--task", required=True, help="registered task, e.g. hybridsim/Reach-v0")
    p.add_argument("--policy", required=True, help="saved task policy folder")
    p.add_argument("--episodes", type=int, default=32, help="episodes (32)")
    p.add_argument("--residual", help="folder of 'hybridsim residual fit': run in the hybrid")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes' resets (0)")
    p.add_argument(
        "--reality",
        metavar="EFFECTS",
        help="run in a synthetic reality of the task: effects as 'synthetic-reality record "
        "--effects' that MJX can express (latency, deadband, backlash, mass_scale, "
        "damping_scale, coulomb), e.g. 'latency=2,mass_scale=1.3'",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON (last line)")
    p.set_defaults(func=cmd_eval)
