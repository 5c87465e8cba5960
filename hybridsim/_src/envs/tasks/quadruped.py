"""QuadrupedWalk: walk forward (+x) at a target speed (scene ``quadruped``).

Observation (27,): torso height (m), torso orientation quaternion, 8 joint angles (rad),
torso linear (m/s) and angular (rad/s) velocity, 8 joint velocities (rad/s). Action (8,):
offsets in [-1, 1] of the position targets from the standing pose, times
``action_scale`` rad, clipped to the actuators' ranges. Reward: ``forward_weight *
min(vx, target_speed)`` plus ``alive_bonus`` minus ``control_cost * |action|^2``. The
episode terminates when the torso drops below ``min_height`` or tilts so that its up axis
has a z component below ``min_upright``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import Env, EnvConfig, EnvState
from hybridsim._src.envs.rewards import clean_action


@dataclasses.dataclass(frozen=True)
class QuadrupedWalkConfig(EnvConfig):
    substeps: int = 5
    """5 x 0.004 s: a 0.02 s control step."""
    episode_length: int = 1000
    target_speed: float = 0.5
    """Forward speed (m/s) above which the speed reward no longer grows."""
    forward_weight: float = 1.0
    alive_bonus: float = 0.2
    control_cost: float = 0.01
    action_scale: float = 0.5
    """rad of position target per unit of action."""
    min_height: float = 0.12
    """Torso height (m) below which the episode terminates."""
    min_upright: float = 0.3
    """Minimum z component of the torso's up axis before the episode terminates."""
    reset_noise: float = 0.05
    """Half-width (rad) of the uniform noise on the initial joint angles."""


@pytree_dataclass
class QuadrupedTask:
    """QuadrupedWalk has no per-episode task parameters."""


@pytree_dataclass
class QuadrupedMetrics:
    forward_velocity: jax.Array
    """() float32: torso velocity along x, m/s."""
    height: jax.Array
    """() float32: torso height, m."""
    upright: jax.Array
    """() float32: z component of the torso's up axis (1 upright)."""


class QuadrupedWalk(Env):
    name = "QuadrupedWalk"

    def __init__(self, config: QuadrupedWalkConfig | None = None):
        super().__init__(config or default_config(), "quadruped")
        self._home_ctrl = jnp.asarray(self.scene.initial_ctrl(), jnp.float32)

    @property
    def observation_size(self) -> int:
        return 27

    def _action_to_ctrl(self, action: jax.Array) -> jax.Array:
        a = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        u = self._home_ctrl + self.config.action_scale * a
        return jnp.clip(u, self._ctrl_low, self._ctrl_high)

    def _metrics(self, qpos, qvel) -> QuadrupedMetrics:
        qx, qy = qpos[4], qpos[5]
        return QuadrupedMetrics(
            forward_velocity=qvel[0],
            height=qpos[2],
            upright=1.0 - 2.0 * (qx**2 + qy**2),
        )

    def reset(self, key: jax.Array) -> EnvState:
        qpos = jnp.asarray(self.scene.initial_state()[0], jnp.float32)
        n = self.config.reset_noise
        qpos = qpos.at[7:].add(jax.random.uniform(key, (8,), minval=-n, maxval=n))
        physics, _ = self._physics_reset(qpos)
        obs = jnp.concatenate([physics.qpos[2:], physics.qvel])
        metrics = self._metrics(physics.qpos, physics.qvel)
        return self._first_state(key, physics, obs, QuadrupedTask(), metrics)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        physics, _ = self._physics_step(state.physics, self._action_to_ctrl(action))
        c = self.config
        m = self._metrics(physics.qpos, physics.qvel)
        a = clean_action(action)
        reward = (
            c.forward_weight * jnp.minimum(m.forward_velocity, c.target_speed)
            + c.alive_bonus
            - c.control_cost * jnp.sum(a**2)
        )
        fallen = (m.height < c.min_height) | (m.upright < c.min_upright)
        obs = jnp.concatenate([physics.qpos[2:], physics.qvel])
        return self._finish(state, physics, obs, reward, fallen, m)


def default_config() -> QuadrupedWalkConfig:
    """QuadrupedWalk: 1000 steps of 0.02 s on MJX (impl "jax"), physics alone."""
    return QuadrupedWalkConfig()
