"""A task in a synthetic reality on MJX (hybridsim._src.envs.reality)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridsim import envs, synthetic_reality
from hybridsim._src.envs.reality import RealityWrapper

T = 12


@pytest.fixture(scope="module")
def reach():
    return envs.make("Reach")


@pytest.fixture(scope="module")
def plain(reach):
    """qpos of the task itself under the test actions: compiled once for the module."""
    return _run(reach, _actions())


def _run(env, actions):
    state = env.reset(jax.random.key(0))

    def step(s, a):
        s = env.step(s, a)
        return s, s.physics.qpos

    _, qpos = jax.lax.scan(step, state, actions)
    return np.asarray(qpos)


def _actions():
    return jax.random.uniform(jax.random.key(1), (T, 2), minval=-1.0, maxval=1.0)


def test_latency_delays_the_commands(reach, plain):
    """Latency L: the task fed the actions L steps late (the keyframe's before) moves the
    same way; with no effects the wrapper is the task itself."""
    a = _actions()
    real = RealityWrapper(reach, synthetic_reality.Effects(latency_steps=2))
    u0 = jnp.asarray(reach.scene.initial_ctrl(), jnp.float32)[None]  # arm2: ctrl = action
    late = jnp.concatenate([u0, u0, a[:-2]])
    delayed = _run(real, a)
    np.testing.assert_allclose(delayed, _run(reach, late), atol=1e-6)
    assert np.abs(delayed - plain).max() > 1e-3


def test_model_effects_are_per_world_fields(reach, plain):
    eff = synthetic_reality.Effects(mass_scale=1.5, damping_scale=2.0, coulomb_friction=0.2)
    real = RealityWrapper(reach, eff)
    m = reach.mj_model
    mx = real.mjx_model
    np.testing.assert_allclose(np.asarray(mx.body_mass)[1:], 1.5 * m.body_mass[1:], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mx.dof_damping), 2.0 * m.dof_damping, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mx.dof_frictionloss), m.dof_frictionloss + 0.2)
    assert np.abs(_run(real, _actions()) - plain).max() > 1e-3


def test_effects_mjx_cannot_express_are_refused(reach):
    with pytest.raises(synthetic_reality.EffectsError, match="drag"):
        RealityWrapper(reach, synthetic_reality.Effects(drag=0.1))
