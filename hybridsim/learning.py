"""Policy learning and planning through the world model: analytic policy gradients
(``train_apg``), a short-horizon actor-critic (``train_shac``, unfinished: it does not
improve yet), Brax's PPO (``train_ppo``), gradient health, trajectory optimisation and
model-predictive control (``run_mpc`` with ``MPPIPlanner`` or ``GradPlanner``).

::

    from pathlib import Path
    from hybridsim import learning

    config = learning.TrainConfig(task="hybridsim/Reach-v0", algo="ppo",
                                  out=Path("runs/reach_ppo"), env_steps=2_000_000)
    result = learning.train_ppo(config, progress=print)   # policy/, curve.json, tb/

    learning.ensure_brax_compat()                # JAX 0.10's missing device_put_replicated
    brax_env = learning.brax_env(hybridsim.envs.make("Reach"))   # a brax.envs.Env

The saved policy is a task policy folder (``hybridsim.evaluation.load_policy_folder``);
``hybridsim policy eval`` runs it (docs/learning_ppo.md). Brax is optional
(``pip install hybridsim[rl]``) and imported only when used.
"""

from typing import Any as _Any

from hybridsim._src.learning.apg import APGConfig
from hybridsim._src.learning.apg import train as train_apg
from hybridsim._src.learning.common import CurvePoint, TrainConfig, TrainResult
from hybridsim._src.learning.gradients import GradientHealth, gradient_health, optimize_actions
from hybridsim._src.learning.mpc import (
    GradPlanner,
    MPCResult,
    MPPIPlanner,
    RandomPlanner,
    ZeroPlanner,
    run_mpc,
)
from hybridsim._src.learning.networks import MLPPolicy
from hybridsim._src.learning.ppo import BraxPPOPolicy, PPOConfig
from hybridsim._src.learning.ppo import train as train_ppo
from hybridsim._src.learning.shac import SHACConfig
from hybridsim._src.learning.shac import train as train_shac

__all__ = [
    "APGConfig",
    "BraxPPOPolicy",
    "CurvePoint",
    "GradPlanner",
    "GradientHealth",
    "MLPPolicy",
    "MPCResult",
    "MPPIPlanner",
    "PPOConfig",
    "RandomPlanner",
    "SHACConfig",
    "TrainConfig",
    "TrainResult",
    "ZeroPlanner",
    "brax_env",
    "ensure_brax_compat",
    "gradient_health",
    "optimize_actions",
    "run_mpc",
    "train_apg",
    "train_ppo",
    "train_shac",
]


def ensure_brax_compat() -> None:
    """Gives JAX 0.10 the ``jax.device_put_replicated`` Brax 0.14.2's trainers call
    (idempotent; ``train_ppo`` calls it itself)."""
    from hybridsim._src.learning.brax_compat import ensure_brax_compat as _ensure

    _ensure()


def brax_env(env: _Any) -> _Any:
    """A ``brax.envs.Env`` over one world of the single-agent functional env ``env``
    (``hybridsim.envs.make(...)``); its metrics add ``final_success`` when the task has
    ``success``. Needs ``brax``."""
    from hybridsim._src.learning.brax_compat import brax_env as _brax_env

    return _brax_env(env)
