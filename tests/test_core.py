"""The one core: one backend interface, one hybrid control step under every consumer, and
closed-loop rollouts. An env rollout equals ``hs.rollout`` and the hybrid rollout; a policy
runs on every backend; the pure-neural baseline runs through the same step."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybridsim as hs
from hybridsim import envs, residual
from hybridsim._src import sim
from hybridsim._src.backends.base import Backend

T = 12  # control steps of every rollout below


def _nonzero_residual(scene, kind, control_dt, seed=0):
    """A residual whose output is not zero: the zero-initialised last layer gets weights."""
    res = residual.init_residual(
        scene, residual.ResidualConfig(kind=kind, hidden=(16,), history=2), control_dt
    )
    leaves, treedef = jax.tree.flatten(res.params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [
        0.3 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)
    ]
    return res.replace(
        params=jax.tree.unflatten(treedef, leaves), output_scale=0.05 * res.output_scale
    )


def test_every_backend_module_implements_the_interface():
    for name in ("c", "mjx", "warp"):
        module = sim.backend_module(name)
        assert isinstance(module, Backend), name
        assert module.NAME == name
    with pytest.raises(hs.BackendError, match="unknown backend"):
        sim.backend_module("gpu")


@pytest.fixture(scope="module")
def reach_run():
    """A Reach env with a non-zero force residual, its controls, first state and qpos."""
    env = envs.make("Reach")
    res = _nonzero_residual(env.scene, "force", env.control_dt)
    env.set_residual(res)
    actions = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (T, 2)), jnp.float32)

    def run(key, actions):
        s0 = env.reset(key)
        return s0, jax.lax.scan(
            lambda s, a: (env.step(s, a), env.step(s, a).physics.qpos), s0, actions
        )[1]

    s0, qpos = jax.jit(run)(jax.random.key(0), actions)
    ctrl = np.asarray(jax.vmap(env._action_to_ctrl)(actions), np.float64)[None]
    return env, res, s0, ctrl, np.asarray(qpos)


@pytest.mark.parametrize("backend", ["mjx", "c"])
def test_env_rollout_equals_the_hybrid_rollout(reach_run, backend):
    """The env's step is the core's control step: the hybrid rollout on ``mjx`` gives the
    env's states; on ``c`` (float64 MuJoCo C) it agrees to float32 precision."""
    env, res, s0, ctrl, env_qpos = reach_run
    model = hs.make_model(env.scene, 1, backend=backend, substeps=env.config.substeps)
    state = hs.init(
        model,
        qpos=np.asarray(s0.physics.qpos, np.float64),
        qvel=np.asarray(s0.physics.qvel, np.float64),
    )
    out = residual.hybrid_rollout(model, res, state, ctrl)
    # Tolerance: mjx runs the same float32 program; c runs float64 physics and feeds the
    # network float64 states, so float32 rounding accumulates over 12 steps.
    atol = 1e-5 if backend == "mjx" else 2e-4
    np.testing.assert_allclose(np.asarray(out.traj.qpos[0, 1:]), env_qpos, atol=atol)
    physics_only = hs.rollout(model, state, ctrl)
    gap = np.abs(np.asarray(physics_only.qpos[0, 1:]) - env_qpos).max()
    assert gap > 100 * atol, "the residual must matter for this test to mean anything"


def test_physics_env_equals_rollout_on_mjx_and_c():
    env = envs.make("Reach")
    actions = jnp.asarray(np.random.default_rng(2).uniform(-1, 1, (T, 2)), jnp.float32)

    def run(key, actions):
        s0 = env.reset(key)
        return s0, jax.lax.scan(lambda s, a: (env.step(s, a),) * 2, s0, actions)[1]

    s0, traj = jax.jit(run)(jax.random.key(3), actions)
    ctrl = np.asarray(jax.vmap(env._action_to_ctrl)(actions), np.float64)[None]
    for backend, atol in (("mjx", 1e-5), ("c", 1e-4)):
        model = hs.make_model(env.scene, 1, backend=backend, substeps=env.config.substeps)
        state = hs.init(
            model,
            qpos=np.asarray(s0.physics.qpos, np.float64),
            qvel=np.asarray(s0.physics.qvel, np.float64),
        )
        ref = hs.rollout(model, state, ctrl)
        np.testing.assert_allclose(
            np.asarray(traj.physics.qpos), np.asarray(ref.qpos[0, 1:]), atol=atol
        )


def _policy(obs):
    """A feedback policy in jax.numpy: PD towards qpos = 0.5, plus a time term."""
    u = -2.0 * (obs.qpos - 0.5) - 0.3 * obs.qvel + 0.1 * jnp.sin(obs.time)[:, None]
    return jnp.clip(u, -1.0, 1.0)


@pytest.fixture(scope="module")
def arm2_models():
    return {b: hs.make_model("arm2", 3, backend=b, substeps=2) for b in ("c", "mjx")}


def test_closed_loop_policy_runs_on_every_backend_and_replays_open_loop(arm2_models):
    trajs = {}
    for backend, model in arm2_models.items():
        state = hs.init(model, qpos=np.array([[0.1, -0.2], [0.3, 0.0], [-0.5, 0.4]]))
        traj = hs.rollout(model, state, policy=_policy, steps=T)
        assert traj.ctrl.shape == (3, T, 2) and traj.qpos.shape == (3, T + 1, 2)
        # The policy's controls, replayed open loop, give the same trajectory.
        replay = hs.rollout(model, state, np.asarray(traj.ctrl))
        np.testing.assert_allclose(np.asarray(replay.qpos), np.asarray(traj.qpos), atol=1e-6)
        trajs[backend] = traj
    # Tolerance: float32 MJX against float64 MuJoCo C on a smooth arm, 12 steps.
    np.testing.assert_allclose(
        np.asarray(trajs["mjx"].qpos), np.asarray(trajs["c"].qpos), atol=1e-4
    )
    # The feedback acted: the arm moved towards 0.5 from every start.
    start = np.abs(np.asarray(trajs["c"].qpos[:, 0]) - 0.5).mean()
    assert np.abs(np.asarray(trajs["c"].qpos[:, -1]) - 0.5).mean() < start


def test_policy_sees_typed_observations(arm2_models):
    seen = []

    def policy(obs):
        seen.append(obs)
        return np.zeros((3, 2))

    model = arm2_models["c"]
    hs.rollout(model, hs.init(model), policy=policy, steps=3)
    assert [type(o).__name__ for o in seen] == ["Observation"] * 3
    assert seen[0].qpos.shape == (3, 2) and seen[0].sensordata.shape == (3, 10)
    np.testing.assert_allclose(seen[0].time, 0.0)
    np.testing.assert_allclose(seen[2].time, 2 * model.control_dt)
    assert np.abs(seen[2].sensordata).sum() > 0  # sensors after the physics steps


def test_bad_policy_and_drive_arguments_are_clear_errors(arm2_models):
    for model in arm2_models.values():
        state = hs.init(model)
        with pytest.raises(hs.ShapeError, match=r"expected \(B, nu\) = \(3, 2\)"):
            hs.rollout(model, state, policy=lambda o: jnp.zeros((3, 5)), steps=2)
        with pytest.raises(hs.ShapeError, match="steps >= 1"):
            hs.rollout(model, state, policy=_policy)
        with pytest.raises(hs.ShapeError, match="either ctrl"):
            hs.rollout(model, state, np.zeros((3, 2, 2)), policy=_policy, steps=2)


def test_gradient_through_a_closed_loop_policy_on_mjx():
    model = hs.make_model("arm2", 2, backend="mjx", substeps=2, differentiable=True)
    state = hs.init(model)

    def loss(gain):
        traj = hs.rollout(model, state, policy=lambda o: jnp.tanh(-gain * o.qpos), steps=5)
        return jnp.sum((traj.qpos[:, -1] - 0.5) ** 2)

    g = jax.grad(loss)(jnp.asarray(1.0))
    assert np.isfinite(float(g)) and float(g) != 0.0


@pytest.mark.parametrize("kind", ["neural", "state"])
def test_learned_parts_agree_on_c_and_mjx(arm2_models, kind):
    """The pure-neural baseline and the state residual run the same control step on both
    backends (on ``c`` between MuJoCo C calls, on ``mjx`` inside the program)."""
    scene = arm2_models["c"].scene
    res = _nonzero_residual(scene, kind, arm2_models["c"].control_dt, seed=3)
    ctrl = np.random.default_rng(5).uniform(-1, 1, (3, T, 2))
    outs = {}
    for backend, model in arm2_models.items():
        outs[backend] = residual.hybrid_rollout(model, res, hs.init(model), ctrl)
    np.testing.assert_allclose(
        np.asarray(outs["mjx"].traj.qpos), np.asarray(outs["c"].traj.qpos), atol=2e-4
    )
    np.testing.assert_allclose(
        np.asarray(outs["mjx"].uncertainty), np.asarray(outs["c"].uncertainty), rtol=1e-3
    )
    if kind == "neural":
        assert outs["c"].traj.backend == "neural"
        np.testing.assert_allclose(
            np.asarray(outs["c"].traj.time[:, -1]), T * arm2_models["c"].control_dt
        )


@dataclasses.dataclass(frozen=True)
class _Drag(hs.LearnedPart):
    """A learned part that is not the residual: a force -k qvel, and a step counter."""

    def initial_carry(self, k, qpos, qvel):
        return jnp.zeros(qpos.shape[:-1], jnp.int32)

    def before(self, k, carry, qpos, qvel, ctrl):
        return -k * qvel, None, carry + 1

    def after(self, k, pending, qpos, qvel):
        raise AssertionError("a part that does not correct the state has no after step")


def test_any_learned_part_enters_through_the_one_hook(arm2_models):
    ctrl = np.random.default_rng(6).uniform(-1, 1, (3, T, 2))
    outs = {}
    for backend, model in arm2_models.items():
        state = hs.init(model)
        part = _Drag()
        carry = part.initial_carry(None, jnp.asarray(state.qpos), None)
        learned = hs.Learned(params=jnp.asarray(0.5), carry=carry, part=part)
        outs[backend] = hs.run(model, state, ctrl, learned=learned)
        np.testing.assert_array_equal(np.asarray(outs[backend].learned.carry), T)
        plain = hs.rollout(model, state, ctrl)
        assert np.abs(np.asarray(plain.qvel) - np.asarray(outs[backend].traj.qvel)).max() > 1e-3
    np.testing.assert_allclose(
        np.asarray(outs["mjx"].traj.qpos), np.asarray(outs["c"].traj.qpos), atol=1e-4
    )
