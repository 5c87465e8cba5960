"""Push: push the box onto a goal sampled at reset with a 2-DoF finger (scene ``pusher``).

Observation (14,): finger xy (m), finger velocity (m/s), box xy (m), box velocity xy
(m/s), goal xy (m), goal minus box (m), box minus finger (m). Action (2,): finger position
targets in [-1, 1], mapped to the actuators' ±0.35 m. Reward: minus the box-goal distance,
minus ``approach_weight`` times the finger-box distance, minus ``control_cost *
|action|^2``. ``metrics.success`` is 1 when the box is within ``success_radius`` of the goal.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import Env, EnvConfig, EnvState
from hybridsim._src.envs.rewards import clean_action, sample_goal


@dataclasses.dataclass(frozen=True)
class PushConfig(EnvConfig):
    substeps: int = 4
    """4 x 0.005 s: a 0.02 s control step."""
    episode_length: int = 250
    goal_x: tuple[float, float] = (0.15, 0.3)
    """Range (m) of the goal's x; the box starts at x = 0.1."""
    goal_y: tuple[float, float] = (-0.2, 0.2)
    """Range (m) of the goal's y."""
    success_radius: float = 0.05
    approach_weight: float = 0.5
    control_cost: float = 0.01
    reset_noise: float = 0.02
    """Half-width (m) of the uniform noise on the finger's initial position."""


@pytree_dataclass
class PushTask:
    goal: jax.Array
    """(2,) float32: goal position xy in m."""


@pytree_dataclass
class PushMetrics:
    box_goal_distance: jax.Array
    """() float32: box-goal distance in the table plane, m."""
    finger_box_distance: jax.Array
    """() float32: finger-box distance in the table plane, m."""
    success: jax.Array
    """() float32: 1.0 when the box is within ``success_radius`` of the goal."""


class Push(Env):
    name = "Push"

    def __init__(self, config: PushConfig | None = None):
        super().__init__(config or default_config(), "pusher")

    @property
    def observation_size(self) -> int:
        return 14

    def _observe(self, qpos, qvel, goal):
        finger, box = qpos[0:2], qpos[2:4]
        return jnp.concatenate([finger, qvel[0:2], box, qvel[2:4], goal, goal - box, box - finger])

    def _metrics(self, qpos, goal) -> PushMetrics:
        finger, box = qpos[0:2], qpos[2:4]
        dist = jnp.linalg.norm(goal - box)
        return PushMetrics(
            box_goal_distance=dist,
            finger_box_distance=jnp.linalg.norm(box - finger),
            success=(dist < self.config.success_radius).astype(jnp.float32),
        )

    def reset(self, key: jax.Array) -> EnvState:
        k_x, k_y, k_f = jax.random.split(key, 3)
        c = self.config
        goal = sample_goal(k_x, k_y, c.goal_x, c.goal_y)
        qpos = jnp.asarray(self.scene.initial_state()[0], jnp.float32)
        n = c.reset_noise
        qpos = qpos.at[0:2].add(jax.random.uniform(k_f, (2,), minval=-n, maxval=n))
        physics, _ = self._physics_reset(qpos)
        obs = self._observe(physics.qpos, physics.qvel, goal)
        metrics = self._metrics(physics.qpos, goal)
        return self._first_state(key, physics, obs, PushTask(goal=goal), metrics)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        physics, _ = self._physics_step(state.physics, self._action_to_ctrl(action))
        goal = state.task.goal
        m = self._metrics(physics.qpos, goal)
        a = clean_action(action)
        c = self.config
        reward = (
            -m.box_goal_distance
            - c.approach_weight * m.finger_box_distance
            - c.control_cost * jnp.sum(a**2)
        )
        obs = self._observe(physics.qpos, physics.qvel, goal)
        return self._finish(state, physics, obs, reward, False, m)


def default_config() -> PushConfig:
    """Push: 250 steps of 0.02 s on MJX (impl "jax"), physics alone."""
    return PushConfig()
