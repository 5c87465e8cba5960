"""A task in a synthetic reality, on MJX: the "real robot" a task policy is tested in.

``RealityWrapper(env, effects)`` runs the task with the effects of a
``hybridsim.synthetic_reality.Effects`` that MJX can express, so the reality stays a pure,
jittable, vmappable env like the task itself:

- actuator effects, in front of the physics, on the controls the action maps to:
  ``latency_steps`` (a first-in first-out buffer of the last commands, carried in the
  state; before the first command arrives the actuators hold the keyframe control),
  ``deadband`` and ``backlash`` (a play operator) as fractions of half the control range,
  then the clip to the control range -- as ``synthetic_reality.applied_controls``;
- model effects, as per-world model fields: ``mass_scale`` (masses and inertias of every
  body but the world, with the derived constants), ``damping_scale`` (``dof_damping``),
  ``coulomb_friction`` as MuJoCo's own joint dry friction (``dof_frictionloss`` on every
  hinge and slide dof, in N m or N), where the MuJoCo C reality uses a smoothed
  ``-f tanh(qvel / eps)`` force.

Drag, torque-speed limits, the contact friction field and sensor noise need per-step
forces MJX's step does not take and are refused (``EffectsError``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.envs.base import Env, EnvState
from hybridsim._src.envs.wrappers import Wrapper
from hybridsim._src.params import derived_fields

UNSUPPORTED = ("torque_speed", "drag", "friction_field", "sensor_noise")
"""``Effects`` fields a task reality cannot express."""


@pytree_dataclass
class RealityTask:
    """The task's own state plus the actuators' memory in the reality."""

    inner: Any
    """The wrapped task's ``EnvState.task``."""
    pending: jax.Array
    """(L, nu) float32: commanded controls not yet applied, oldest first (L = latency)."""
    play: jax.Array
    """(nu,) float32: the backlash play operator's output (the last applied control)."""


class RealityWrapper(Wrapper):
    """The task ``env`` in a synthetic reality with ``effects`` (module docstring)."""

    def __init__(self, env: Env, effects: Any):
        from hybridsim._src.synthetic_reality import EffectsError, apply_to_model

        bad = [k for k in UNSUPPORTED if getattr(effects, k)]
        if bad:
            raise EffectsError(
                f"a task reality runs on MJX and cannot express {bad}; it expresses "
                "latency, deadband, backlash, mass_scale, damping_scale and coulomb_friction"
            )
        m = env.mj_model
        real = apply_to_model(m, effects)
        fields = {
            "body_mass": real.body_mass.copy(),
            "body_inertia": real.body_inertia.copy(),
            "dof_damping": real.dof_damping.copy(),
        }
        if effects.coulomb_friction:
            hinge_slide = np.isin(m.jnt_type[m.dof_jntid], (2, 3))  # slide = 2, hinge = 3
            fields["dof_frictionloss"] = m.dof_frictionloss + effects.coulomb_friction * hinge_slide
        one = {k: np.asarray(v, np.float64)[None] for k, v in fields.items()}
        one.update(derived_fields(m, one))
        super().__init__(env.with_model_fields({k: jnp.asarray(v[0]) for k, v in one.items()}))
        self.effects = effects
        low, high = env.scene.ctrl_range()
        low = np.where(np.isfinite(low), low, -1.0)
        high = np.where(np.isfinite(high), high, 1.0)
        self._mid = jnp.asarray((low + high) / 2, jnp.float32)
        self._half = jnp.asarray((high - low) / 2, jnp.float32)
        self._low, self._high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)
        keyframe = np.clip(env.scene.initial_ctrl(), low, high)
        self._u0 = jnp.asarray(self._deadband(keyframe), jnp.float32)

    def _deadband(self, u):
        band = self.effects.deadband * self._half
        return jnp.where(jnp.abs(u) < band, 0.0, u) if self.effects.deadband else u

    def reset(self, key: jax.Array) -> EnvState:
        state = self.env.reset(key)
        lag, nu = self.effects.latency_steps, self._u0.shape[0]
        pending = jnp.broadcast_to(self._u0, (lag, nu)).astype(jnp.float32)
        return state.replace(task=RealityTask(state.task, pending, self._u0))

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        u = self._mid + self._half * jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        memory = state.task
        if self.effects.latency_steps:
            applied = memory.pending[0]
            pending = jnp.concatenate([memory.pending[1:], u[None]], axis=0)
        else:
            applied, pending = u, memory.pending
        applied = self._deadband(applied)
        play = memory.play
        if self.effects.backlash:
            gap = 0.5 * self.effects.backlash * self._half
            play = jnp.clip(play, applied - gap, applied + gap)
            applied = play
        applied = jnp.clip(applied, self._low, self._high)
        inner = state.replace(task=memory.inner)
        new = self.env.step(inner, (applied - self._mid) / self._half)
        return new.replace(task=RealityTask(new.task, pending, play))
