"""CartpoleSwingup: swing the pole up from hanging down and balance it (scene ``cartpole``).

Observation (5,): cart position (m), cos and sin of the pole angle (0 = upright), cart
velocity (m/s), pole angular velocity (rad/s). Action (1,): the motor in [-1, 1] (gear 10).
Reward in [0, 1], as dm_control's swing-up: upright * centred * small control * small
angular velocity. No termination; ``episode_length`` steps of 0.01 s.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import Env, EnvConfig, EnvState
from hybridsim._src.envs.rewards import clean_action, tolerance


@dataclasses.dataclass(frozen=True)
class CartpoleSwingupConfig(EnvConfig):
    substeps: int = 1
    episode_length: int = 1000
    reset_noise: float = 0.01
    """Standard deviation of the initial cart position (m) and pole angle (rad)."""
    centered_margin: float = 2.0
    """Cart distance (m) from the centre at which the centred term is at its floor."""


@pytree_dataclass
class CartpoleMetrics:
    upright: jax.Array
    """() float32: (cos(pole angle) + 1) / 2, 1 when upright."""
    cart_position: jax.Array
    """() float32: cart position in m."""


@pytree_dataclass
class CartpoleTask:
    """CartpoleSwingup has no per-episode task parameters."""


class CartpoleSwingup(Env):
    name = "CartpoleSwingup"

    def __init__(self, config: CartpoleSwingupConfig | None = None):
        super().__init__(config or default_config(), "cartpole")

    @property
    def observation_size(self) -> int:
        return 5

    def _observe(self, qpos, qvel):
        return jnp.stack([qpos[0], jnp.cos(qpos[1]), jnp.sin(qpos[1]), qvel[0], qvel[1]])

    def _reward(self, qpos, qvel, action):
        upright = (jnp.cos(qpos[1]) + 1.0) / 2.0
        centered = (1.0 + tolerance(qpos[0], margin=self.config.centered_margin)) / 2.0
        small_ctrl = tolerance(action[0], margin=1.0, value_at_margin=0.0, sigmoid="quadratic")
        small_ctrl = (4.0 + small_ctrl) / 5.0
        small_vel = (1.0 + tolerance(qvel[1], margin=5.0)) / 2.0
        return upright * centered * small_ctrl * small_vel, CartpoleMetrics(
            upright=upright.astype(jnp.float32), cart_position=qpos[0].astype(jnp.float32)
        )

    def reset(self, key: jax.Array) -> EnvState:
        noise = self.config.reset_noise * jax.random.normal(key, (2,))
        qpos = jnp.array([0.0, jnp.pi]) + noise
        physics, _ = self._physics_reset(qpos)
        _, metrics = self._reward(physics.qpos, physics.qvel, jnp.zeros(1))
        obs = self._observe(physics.qpos, physics.qvel)
        return self._first_state(key, physics, obs, CartpoleTask(), metrics)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        physics, _ = self._physics_step(state.physics, self._action_to_ctrl(action))
        a = clean_action(action)
        reward, metrics = self._reward(physics.qpos, physics.qvel, a)
        obs = self._observe(physics.qpos, physics.qvel)
        return self._finish(state, physics, obs, reward, False, metrics)


def default_config() -> CartpoleSwingupConfig:
    """CartpoleSwingup: 1000 steps of 0.01 s on MJX (impl "jax"), physics alone."""
    return CartpoleSwingupConfig()
