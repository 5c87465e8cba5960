"""The synthetic reality as an evaluation world: policies run closed loop on it.

``RealityWorld`` satisfies the ``World`` protocol of ``worlds.py`` (``name``, ``control_dt``,
``run``), so the same ``evaluate_policies`` call that scores policies in physics or in the
hybrid model scores them in the reality that the model is meant to predict.
"""

from __future__ import annotations

import numpy as np

from hybridsim._src.loader import Scene, load_scene
from hybridsim._src.synthetic_reality import (
    Effects,
    Recording,
    _check_counts,
    _check_effects,
    _timing,
    run_policy,
)
from hybridsim._src.types import Policy


class RealityWorld:
    """A synthetic reality (``scene`` plus unmodelled ``effects``) that runs policies.

    ``run`` is ``synthetic_reality.run_policy`` with this world's scene, effects and timing:
    N episodes in lockstep on MuJoCo C, the policy seeing noisy states when the effects
    have sensor noise. Meant for N <= 64 episodes and T <= 300 steps.
    """

    name: str
    """``"reality"``."""
    scene: Scene
    """The nominal scene (the effects are added when it runs)."""
    effects: Effects
    """What the nominal model does not know."""
    substeps: int
    """Physics steps per control step (chosen from ``rate`` when one is given)."""
    rate: float | None
    """Control rate in Hz, or None for ``substeps`` scene timesteps per control step."""
    control_dt: float
    """Seconds per control step: ``substeps * timestep``."""

    def __init__(
        self,
        scene: Scene | str,
        effects: Effects,
        substeps: int = 1,
        rate: float | None = None,
    ) -> None:
        scene = load_scene(scene)
        _check_effects(effects)
        _check_counts(substeps=substeps)
        timed_scene, timed_substeps, _ = _timing(scene, rate, substeps)
        self.name = "reality"
        self.scene = scene
        self.effects = effects
        self.substeps = timed_substeps
        self.rate = rate
        self.control_dt = timed_substeps * timed_scene.timestep

    def run(
        self,
        policy: Policy,
        qpos0: np.ndarray,
        qvel0: np.ndarray | None,
        steps: int,
        seed: int,
    ) -> Recording:
        """``policy`` closed loop for ``steps`` control steps from ``qpos0 (N, nq)``,
        ``qvel0 (N, nv)`` (None: at rest); ``seed`` draws the sensor noise. Returns the
        Recording (qpos ``(N, T+1, nq)``, qvel, ctrl ``(N, T, nu)``, control_dt, status
        ``(N,)`` zeros). Raises what ``run_policy`` raises."""
        return run_policy(
            self.scene,
            self.effects,
            policy,
            qpos0,
            qvel0,
            steps,
            substeps=self.substeps,
            seed=seed,
            rate=self.rate,
        )

    def __repr__(self) -> str:
        timing = f"rate={self.rate}" if self.rate is not None else f"substeps={self.substeps}"
        return (
            f"RealityWorld({self.scene.name!r}, {self.effects.active() or 'no effects'}, {timing})"
        )
