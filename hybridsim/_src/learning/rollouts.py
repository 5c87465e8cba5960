"""What APG and SHAC share: the task envs, batched policy rollouts, deterministic
evaluation, and the run folder (``policy/``, ``curve.json``, ``tb/``).

A policy here is an NNX ``graphdef`` plus its parameters ``params`` (an ``nnx.State``), so
that rollouts are pure functions of ``params`` and ``jax.grad`` differentiates them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hybridsim._src.envs.base import Env, EnvState
from hybridsim._src.errors import EnvError
from hybridsim._src.learning.common import CurvePoint, TrainConfig, TrainResult


def task_name(task: str) -> str:
    """``"hybridsim/Reach-v0"`` or ``"Reach"`` -> ``"Reach"``."""
    from hybridsim._src.evaluation.worlds import _task_name

    return _task_name(task)


def task_id(task: str) -> str:
    """The registered id of a task: ``"Reach"`` -> ``"hybridsim/Reach-v0"``."""
    return f"hybridsim/{task_name(task)}-v0"


def make_task_env(
    config: TrainConfig, *, differentiable: bool, episode_length: int | None = None
) -> Env:
    """The single-agent task env of ``config`` on MJX (impl ``"jax"``), in the hybrid when
    ``config.residual_dir`` is set; ``differentiable`` builds it for ``jax.grad``."""
    from hybridsim._src.envs.registry import make, multi_agent_tasks

    name = task_name(config.task)
    if name in multi_agent_tasks():
        raise EnvError(f"task {name!r} is multi-agent; policy training takes one agent")
    overrides: dict[str, Any] = {"impl": "jax", "differentiable": differentiable}
    if config.residual_dir is not None:
        overrides["residual_dir"] = config.residual_dir
    if episode_length is not None:
        overrides["episode_length"] = int(episode_length)
    return make(name, **overrides)


def soften_contacts(env: Env, factor: float) -> Env:
    """``env`` with every geom's contact time constant (``geom_solref[:, 0]``, s)
    multiplied by ``factor`` >= 1: softer, longer contacts whose gradients vary less
    abruptly. 1 returns ``env`` itself. Geoms with direct stiffness (negative solref)
    are left alone."""
    if factor == 1.0:
        return env
    if not factor >= 1.0:
        raise EnvError(f"soft_contact must be >= 1, got {factor!r}")
    solref = np.array(env.mj_model.geom_solref, np.float32)
    solref[:, 0] = np.where(solref[:, 0] > 0, solref[:, 0] * factor, solref[:, 0])
    return env.with_model_fields({"geom_solref": jnp.asarray(solref)})


def reset_batch(env: Env, key: jax.Array, num_envs: int) -> EnvState:
    """``num_envs`` fresh episodes: a batched EnvState (leading axis ``num_envs``)."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def rollout(
    env: Env, graphdef: Any, params: Any, state: EnvState, steps: int
) -> tuple[EnvState, jax.Array, jax.Array, jax.Array]:
    """``steps`` control steps of the deterministic policy from the batched ``state``.

    Returns the final state, ``reward (steps, B)`` (zero once an episode is done),
    ``alive (steps, B)`` (1 while the episode had not ended before that step) and
    ``obs (steps + 1, B, observation_size)``. Differentiable in ``params`` and ``state``.
    """
    step = jax.vmap(env.step)

    def body(carry, _):
        s, alive = carry
        policy = nnx.merge(graphdef, params)
        s = step(s, policy(s.obs))
        out = (s.reward * alive, alive, s.obs)
        return (s, alive * (1.0 - s.done)), out

    alive0 = 1.0 - state.done
    (final, _), (reward, alive, obs) = jax.lax.scan(body, (state, alive0), None, length=steps)
    return final, reward, alive, jnp.concatenate([state.obs[None], obs], axis=0)


def make_evaluate(env: Env, graphdef: Any, num_episodes: int, seed: int):
    """A jitted ``evaluate(params) -> (mean_return, success_rate)`` over ``num_episodes``
    full episodes (``env.episode_length`` steps) from fixed resets; ``success_rate`` is the
    mean final ``metrics.success`` (NaN when the task has none)."""
    key = jax.random.PRNGKey(seed + 1_000_003)

    @jax.jit
    def evaluate(params):
        state = reset_batch(env, key, num_episodes)
        final, reward, _, _ = rollout(env, graphdef, params, state, env.episode_length)
        success = getattr(final.metrics, "success", None)
        rate = jnp.nan if success is None else jnp.mean(success)
        return jnp.mean(jnp.sum(reward, axis=0)), rate

    return evaluate


def windows_per_episode(episode_length: int, window: int) -> int:
    """Gradient windows of ``window`` steps that cover one episode (the last may run past
    the episode's end)."""
    return math.ceil(episode_length / window)


class RunFolder:
    """The output folder of one training run: ``policy/`` (the task policy),
    ``curve.json`` (a JSON list of CurvePoint objects, each with an optional
    ``"gradient"`` object of gradient health) and ``tb/`` (TensorBoard scalars).

    A folder holding a finished run (``policy/policy.json``) is refused; an interrupted
    run's ``curve.json`` and ``tb/`` are replaced.
    """

    def __init__(self, config: TrainConfig):
        from hybridsim._src.errors import PolicyError

        self.out = Path(config.out)
        if (self.out / "policy" / "policy.json").exists():
            raise PolicyError(
                f"{str(self.out)!r} holds a finished run (policy/policy.json); give an empty "
                "or new --out"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in (self.out / "tb", self.out / "policy"):
            if stale.exists():
                shutil.rmtree(stale)
        (self.out / "curve.json").unlink(missing_ok=True)
        self.start = time.perf_counter()
        self.points: list[dict[str, Any]] = []
        self._tb = None

    def wall_s(self) -> float:
        return time.perf_counter() - self.start

    def scalar(self, tag: str, value: float, env_steps: int) -> None:
        """One TensorBoard scalar at ``env_steps``."""
        if self._tb is None:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.out / "tb"))
        self._tb.add_scalar(tag, float(value), int(env_steps))

    def record(self, point: CurvePoint, gradient: dict[str, float] | None = None) -> None:
        """Appends ``point`` (and gradient health) to ``curve.json`` and TensorBoard."""
        row: dict[str, Any] = dataclasses.asdict(point)
        if row["success_rate"] is not None and math.isnan(row["success_rate"]):
            row["success_rate"] = None
        self.scalar("eval/return", point.mean_return, point.env_steps)
        if row["success_rate"] is not None:
            self.scalar("eval/success_rate", row["success_rate"], point.env_steps)
        if gradient is not None:
            row["gradient"] = gradient
            for k, v in gradient.items():
                self.scalar(f"gradient/{k}", v, point.env_steps)
        self.points.append(row)
        (self.out / "curve.json").write_text(json.dumps(self.points, indent=1))

    def curve(self) -> tuple[CurvePoint, ...]:
        names = [f.name for f in dataclasses.fields(CurvePoint)]
        return tuple(CurvePoint(**{k: p[k] for k in names}) for p in self.points)

    def save_policy(self, module: nnx.Module, kwargs: dict[str, Any], task: str) -> Path:
        """Writes the ``MLPPolicy`` ``module`` as the task policy folder ``policy/``."""
        from hybridsim._src.evaluation.saved_policy import save_policy
        from hybridsim._src.learning.networks import policy_build

        return save_policy(self.out / "policy", module, policy_build(kwargs, task_id(task)))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    def finish(self, module: nnx.Module, kwargs: dict[str, Any], task: str) -> TrainResult:
        """Saves the trained ``module`` (``save_policy``), closes the logs and returns the
        run's result."""
        policy_dir = self.save_policy(module, kwargs, task)
        self.close()
        curve = self.curve()
        return TrainResult(policy_dir=policy_dir, curve=curve, final_return=curve[-1].mean_return)


def curve_point(env_steps: int, wall_s: float, mean_return: Any, success: Any) -> CurvePoint:
    rate = float(success)
    return CurvePoint(
        env_steps=int(env_steps),
        wall_s=float(wall_s),
        mean_return=float(mean_return),
        success_rate=None if math.isnan(rate) else rate,
    )


def progress_line(algo: str, point: CurvePoint, gradient: dict[str, float] | None) -> str:
    """``apg  steps 12,800  return -41.2  success 0.31  grad |g| 3.1 cos 0.87``."""
    line = f"{algo} steps {point.env_steps:,}  return {point.mean_return:.2f}"
    if point.success_rate is not None:
        line += f"  success {point.success_rate:.2f}"
    if gradient is not None:
        line += (
            f"  grad norm {gradient['norm']:.3g} var {gradient['variance']:.3g} "
            f"cos {gradient['cosine']:.2f}"
        )
    return line
