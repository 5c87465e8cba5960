"""What every trainer shares: its typed config, its result and its learning curve."""

from __future__ import annotations

import dataclasses
from pathlib import Path

ALGOS = ("apg", "shac", "ppo")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run. Parsed from the command line at the entry point only."""

    task: str
    """Registered task id, e.g. ``"hybridsim/Reach-v0"`` or ``"Reach"``."""
    algo: str
    """One of ``ALGOS``."""
    out: Path
    """Folder: the saved policy (``policy/``), ``curve.json`` and TensorBoard logs."""
    env_steps: int = 1_000_000
    """Budget of environment steps (control steps summed over parallel envs)."""
    seed: int = 0
    residual_dir: str | None = None
    """Train in the hybrid (``hybridsim residual fit`` folder); None: nominal physics."""

    def __post_init__(self):
        from hybridsim._src.errors import EnvError

        if self.algo not in ALGOS:
            raise EnvError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if not isinstance(self.env_steps, int) or self.env_steps < 1:
            raise EnvError(f"env_steps must be a positive int, got {self.env_steps!r}")


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    """One evaluation during training."""

    env_steps: int
    """Environment steps taken so far."""
    wall_s: float
    """Seconds since training started (compilation included)."""
    mean_return: float
    """Mean undiscounted return of the evaluation episodes."""
    success_rate: float | None
    """Fraction of evaluation episodes that ended in success (None: the task has none)."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a trainer returns (and writes to ``config.out``)."""

    policy_dir: Path
    """The saved policy folder (``hybridsim.evaluation`` policy format, task kind)."""
    curve: tuple[CurvePoint, ...]
    final_return: float
