"""CoopPush (multi-agent): two fingers push one heavy box onto a goal (scene ``pusher2``).

Agents ``finger_a`` and ``finger_b`` each control one 2-DoF finger. The box is too heavy
for one finger's 10 N to slide it, so they must push together. Per-agent observation
(16,): own finger xy (m) and velocity (m/s), the other finger's xy, box xy and velocity
xy, goal xy, goal minus box, box minus own finger. Per-agent action (2,): own finger's
position targets in [-1, 1] (±0.35 m). Per-agent reward: minus the box-goal distance,
minus ``approach_weight`` times own finger-box distance, minus ``control_cost *
|own action|^2``. ``metrics.success`` is 1 when the box is within ``success_radius``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import EnvConfig, EnvState, MultiAgentEnv
from hybridsim._src.envs.rewards import clean_action, sample_goal


@dataclasses.dataclass(frozen=True)
class CoopPushConfig(EnvConfig):
    substeps: int = 4
    """4 x 0.005 s: a 0.02 s control step."""
    episode_length: int = 250
    goal_x: tuple[float, float] = (0.1, 0.25)
    """Range (m) of the goal's x; the box starts at the origin."""
    goal_y: tuple[float, float] = (-0.15, 0.15)
    success_radius: float = 0.06
    approach_weight: float = 0.5
    control_cost: float = 0.01
    reset_noise: float = 0.02
    """Half-width (m) of the uniform noise on the fingers' initial positions."""


@pytree_dataclass
class CoopPushTask:
    goal: jax.Array
    """(2,) float32: goal position xy in m."""


@pytree_dataclass
class CoopPushMetrics:
    box_goal_distance: jax.Array
    """() float32: box-goal distance in the table plane, m."""
    success: jax.Array
    """() float32: 1.0 when the box is within ``success_radius`` of the goal."""


class CoopPush(MultiAgentEnv):
    name = "CoopPush"
    agents = ("finger_a", "finger_b")

    def __init__(self, config: CoopPushConfig | None = None):
        super().__init__(config or default_config(), "pusher2")

    @property
    def observation_size(self) -> int:
        return 16

    def _observe(self, qpos, qvel, goal):
        fingers = qpos[0:4].reshape(2, 2)
        fvel = qvel[0:4].reshape(2, 2)
        box, bvel = qpos[4:6], qvel[4:6]

        def one(i):
            own, other = fingers[i], fingers[1 - i]
            return jnp.concatenate([own, fvel[i], other, box, bvel, goal, goal - box, box - own])

        return jnp.stack([one(0), one(1)])

    def _metrics(self, qpos, goal) -> CoopPushMetrics:
        dist = jnp.linalg.norm(goal - qpos[4:6])
        return CoopPushMetrics(
            box_goal_distance=dist,
            success=(dist < self.config.success_radius).astype(jnp.float32),
        )

    def reset(self, key: jax.Array) -> EnvState:
        k_x, k_y, k_f = jax.random.split(key, 3)
        c = self.config
        goal = sample_goal(k_x, k_y, c.goal_x, c.goal_y)
        qpos = jnp.asarray(self.scene.initial_state()[0], jnp.float32)
        n = c.reset_noise
        qpos = qpos.at[0:4].add(jax.random.uniform(k_f, (4,), minval=-n, maxval=n))
        physics, _ = self._physics_reset(qpos)
        obs = self._observe(physics.qpos, physics.qvel, goal)
        metrics = self._metrics(physics.qpos, goal)
        return self._first_state(key, physics, obs, CoopPushTask(goal=goal), metrics)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        action = jnp.asarray(action, jnp.float32)
        if action.shape != (self.num_agents, self.action_size):
            from hybridsim._src.errors import ShapeError

            raise ShapeError(
                f"CoopPush takes actions of shape (num_agents, action_size) = "
                f"{(self.num_agents, self.action_size)}, got {action.shape}"
            )
        physics, _ = self._physics_step(state.physics, self._action_to_ctrl(action.reshape(-1)))
        goal = state.task.goal
        m = self._metrics(physics.qpos, goal)
        fingers = physics.qpos[0:4].reshape(2, 2)
        near = jnp.linalg.norm(physics.qpos[4:6] - fingers, axis=-1)  # (2,)
        a = clean_action(action)
        c = self.config
        reward = (
            -m.box_goal_distance
            - c.approach_weight * near
            - c.control_cost * jnp.sum(a**2, axis=-1)
        )
        obs = self._observe(physics.qpos, physics.qvel, goal)
        return self._finish(state, physics, obs, reward, False, m)


def default_config() -> CoopPushConfig:
    """CoopPush: 250 steps of 0.02 s on MJX (impl "jax"), physics alone."""
    return CoopPushConfig()
