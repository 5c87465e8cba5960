"""Reach: move the 2-link arm's fingertip to a target sampled at reset (scene ``arm2``).

The arm moves in the horizontal plane (links 0.3 m and 0.25 m). The target is drawn
uniformly in angle and in radius between ``target_radius`` bounds, at the fingertip's
height. Observation (12,): cos and sin of both joint angles, joint velocities (rad/s),
fingertip xy (m), target xy (m), target minus fingertip (m). Action (2,): the two torque
motors in [-1, 1] (gears 2 and 1). Reward: minus the fingertip-target distance (m) minus
``control_cost * |action|^2``. ``metrics.success`` is 1 within ``success_radius``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import Env, EnvConfig, EnvState, site_id
from hybridsim._src.envs.rewards import clean_action


@dataclasses.dataclass(frozen=True)
class ReachConfig(EnvConfig):
    substeps: int = 4
    """4 x 0.005 s: a 0.02 s control step."""
    episode_length: int = 200
    target_radius: tuple[float, float] = (0.15, 0.5)
    """Range (m) of the target's distance from the shoulder."""
    success_radius: float = 0.05
    """Fingertip-target distance (m) counted as success."""
    control_cost: float = 0.01
    """Weight of ``|action|^2`` in the reward."""
    reset_noise: float = 0.1
    """Half-width (rad, rad/s) of the uniform noise on the initial joint angles/velocities."""


@pytree_dataclass
class ReachTask:
    target: jax.Array
    """(3,) float32: target position in m (world frame)."""


@pytree_dataclass
class ReachMetrics:
    distance: jax.Array
    """() float32: fingertip-target distance in m."""
    success: jax.Array
    """() float32: 1.0 when the distance is below ``success_radius``."""


class Reach(Env):
    name = "Reach"

    def __init__(self, config: ReachConfig | None = None):
        super().__init__(config or default_config(), "arm2")
        self._tip = site_id(self.mj_model, "fingertip")
        self._target_site = site_id(self.mj_model, "target")

    @property
    def observation_size(self) -> int:
        return 12

    def _observe(self, qpos, qvel, tip, target):
        return jnp.concatenate(
            [jnp.cos(qpos), jnp.sin(qpos), qvel, tip[:2], target[:2], (target - tip)[:2]]
        )

    def _metrics(self, tip, target) -> ReachMetrics:
        dist = jnp.linalg.norm((target - tip)[:2])
        return ReachMetrics(
            distance=dist.astype(jnp.float32),
            success=(dist < self.config.success_radius).astype(jnp.float32),
        )

    def render_mocap_pos(self, state: EnvState) -> jax.Array:
        """The mocap body ``target`` drawn at the episode's target."""
        return state.task.target[..., None, :]

    def reset(self, key: jax.Array) -> EnvState:
        k_r, k_a, k_q, k_v = jax.random.split(key, 4)
        lo, hi = self.config.target_radius
        radius = jax.random.uniform(k_r, (), minval=lo, maxval=hi)
        angle = jax.random.uniform(k_a, (), minval=-jnp.pi, maxval=jnp.pi)
        q0 = jnp.asarray(self.scene.initial_state()[0], jnp.float32)
        n = self.config.reset_noise
        qpos = q0 + jax.random.uniform(k_q, (2,), minval=-n, maxval=n)
        qvel = jax.random.uniform(k_v, (2,), minval=-n, maxval=n)
        physics, d = self._physics_reset(qpos, qvel)
        tip = d.site_xpos[self._tip].astype(jnp.float32)
        target = jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle), tip[2]])
        obs = self._observe(physics.qpos, physics.qvel, tip, target)
        task = ReachTask(target=target.astype(jnp.float32))
        return self._first_state(key, physics, obs, task, self._metrics(tip, target))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        physics, d = self._physics_step(state.physics, self._action_to_ctrl(action))
        tip = d.site_xpos[self._tip].astype(jnp.float32)
        target = state.task.target
        metrics = self._metrics(tip, target)
        a = clean_action(action)
        reward = -metrics.distance - self.config.control_cost * jnp.sum(a**2)
        obs = self._observe(physics.qpos, physics.qvel, tip, target)
        return self._finish(state, physics, obs, reward, False, metrics)


def default_config() -> ReachConfig:
    """Reach: 200 steps of 0.02 s on MJX (impl "jax"), physics alone."""
    return ReachConfig()
