"""Closed-loop synthetic reality: ``run_policy`` replaying a command array is ``simulate``,
a feedback policy with the effects off is plain MuJoCo C, the policy sees what the sensors
report, bad policy output is one clear error, and ``RealityWorld`` is a World."""

from __future__ import annotations

import numpy as np
import pytest

import hybridsim as hs
from hybridsim import synthetic_reality
from hybridsim._src.evaluation.reality_world import RealityWorld

# The open-loop and closed-loop paths step the same actuator function and the same episode
# stepper on identical model copies, so they agree bit for bit (assert_array_equal).
# A feedback policy against hybridsim's ``c`` backend runs the same mj_step calls on an
# identical model; like test_synthetic_reality's open-loop check, to round-off.
_EXACT = 1e-12


@pytest.fixture(scope="module")
def arm2() -> hs.Scene:
    return hs.load_scene("arm2")


@pytest.fixture(scope="module")
def pusher() -> hs.Scene:
    return hs.load_scene("pusher")


def _replay(ctrl: np.ndarray, seen: list | None = None):
    """A policy that commands ``ctrl[:, t]`` at step t, whatever it observes."""
    t = [0]

    def policy(obs: hs.Observation) -> np.ndarray:
        if seen is not None:
            seen.append(obs)
        u = ctrl[:, t[0]]
        t[0] += 1
        return u

    return policy


def _pd(scene: hs.Scene, target: np.ndarray, kp: float, kd: float):
    """Joint-space PD on the first nu hinge coordinates (arm2: motors on both joints)."""

    def policy(obs: hs.Observation) -> np.ndarray:
        u = kp * (target - obs.qpos[:, : scene.nu]) - kd * obs.qvel[:, : scene.nu]
        return np.clip(u, *scene.ctrl_range())

    return policy


def _start(scene: hs.Scene, n: int, seed: int, sigma: float = 0.05):
    q, v, _ = scene.initial_state()
    rng = np.random.default_rng(seed)
    qpos0 = np.tile(q, (n, 1))
    qpos0[:, : scene.nu] += sigma * rng.standard_normal((n, scene.nu))
    return qpos0, np.tile(v, (n, 1))


@pytest.mark.parametrize(
    "name, spec",
    [
        ("arm2", "latency=2,deadband=0.1,backlash=0.2,coulomb=0.2,drag=0.05"),
        ("arm2", "default,torque_speed=4"),
        ("cartpole", "latency=3,backlash=0.1,coulomb=0.1,drag=0.1,damping_scale=2"),
        ("pusher", "default,deadband=0.05,friction_field=0.5"),
    ],
)
def test_replaying_commands_closed_loop_equals_simulate(name, spec):
    scene = hs.load_scene(name)
    effects = synthetic_reality.parse_effects(spec)
    n, steps, substeps = 3, 40, 2
    ctrl = synthetic_reality.behaviour_controls(scene, None, n, steps, seed=5, substeps=2)
    qpos0, qvel0 = _start(scene, n, seed=1)
    ref = synthetic_reality.simulate(
        scene, effects, ctrl, substeps=substeps, seed=7, qpos0=qpos0, qvel0=qvel0
    )
    seen: list[hs.Observation] = []
    rec = synthetic_reality.run_policy(
        scene, effects, _replay(ctrl, seen), qpos0, qvel0, steps, substeps=substeps, seed=7
    )
    for key in ("qpos", "qvel", "ctrl", "applied_ctrl"):
        np.testing.assert_array_equal(getattr(rec, key), getattr(ref, key), err_msg=key)
    assert not np.array_equal(rec.applied_ctrl, rec.ctrl)  # the actuator effects acted
    assert rec.control_dt == ref.control_dt == substeps * scene.timestep
    assert rec.metadata["effects"] == ref.metadata["effects"]
    assert rec.metadata["closed_loop"] is True
    # What the policy saw at step t is the recorded state at step t, and time is t * dt.
    assert len(seen) == steps
    for t, obs in enumerate(seen):
        np.testing.assert_array_equal(obs.qpos, rec.qpos[:, t])
        np.testing.assert_array_equal(obs.qvel, rec.qvel[:, t])
        np.testing.assert_allclose(obs.time, t * rec.control_dt, rtol=0, atol=_EXACT)
        assert obs.sensordata.shape == (n, scene.nsensordata)
    np.testing.assert_array_equal(rec.status, np.zeros(n, np.int32))
    assert rec.sensordata.shape == (n, steps, scene.nsensordata)


def test_sensor_noise_is_what_the_policy_sees_and_the_state_stays_clean(pusher):
    sigma = 0.01
    noisy = synthetic_reality.parse_effects(f"default,noise={sigma}")
    clean = synthetic_reality.parse_effects("default")
    n, steps = 4, 60
    ctrl = synthetic_reality.behaviour_controls(pusher, None, n, steps, seed=2)
    qpos0, qvel0 = _start(pusher, n, seed=3)
    seen: list[hs.Observation] = []
    rec = synthetic_reality.run_policy(
        pusher, noisy, _replay(ctrl, seen), qpos0, qvel0, steps, seed=11
    )
    # The same draws as the open-loop recording of the same seed.
    ref = synthetic_reality.simulate(pusher, noisy, ctrl, seed=11, qpos0=qpos0, qvel0=qvel0)
    np.testing.assert_array_equal(rec.qpos, ref.qpos)
    np.testing.assert_array_equal(rec.qvel, ref.qvel)
    np.testing.assert_array_equal(seen[5].qpos, rec.qpos[:, 5])
    # The physics ran on the clean state: minus the noise, the noise-free run.
    truth = synthetic_reality.run_policy(pusher, clean, _replay(ctrl), qpos0, qvel0, steps)
    err_v = rec.qvel - truth.qvel
    assert abs(err_v.mean()) < 0.1 * sigma
    assert err_v.std() == pytest.approx(sigma, rel=0.05)
    hinge = [i for i in range(pusher.nq) if i not in range(2, 9)]  # box free joint at 2..8
    err_q = rec.qpos[..., hinge] - truth.qpos[..., hinge]
    assert err_q.std() == pytest.approx(sigma, rel=0.1)
    quat = rec.qpos[..., 5:9]
    np.testing.assert_allclose(np.linalg.norm(quat, axis=-1), 1.0, rtol=0, atol=_EXACT)
    other = synthetic_reality.run_policy(pusher, noisy, _replay(ctrl), qpos0, qvel0, steps, seed=12)
    assert not np.array_equal(other.qvel, rec.qvel)


def test_feedback_policy_with_effects_off_equals_the_c_backend(arm2):
    n, steps, substeps = 4, 80, 2
    qpos0, qvel0 = _start(arm2, n, seed=0, sigma=0.5)
    policy = _pd(arm2, np.array([0.6, -0.4]), kp=4.0, kd=0.5)
    rec = synthetic_reality.run_policy(
        arm2, synthetic_reality.Effects(), policy, qpos0, qvel0, steps, substeps=substeps
    )
    model = hs.make_model(arm2, n, backend="c", substeps=substeps)
    ref = hs.rollout(model, hs.init(model, qpos=qpos0, qvel=qvel0), policy=policy, steps=steps)
    np.testing.assert_allclose(rec.qpos, np.asarray(ref.qpos), rtol=0, atol=_EXACT)
    np.testing.assert_allclose(rec.qvel, np.asarray(ref.qvel), rtol=0, atol=_EXACT)
    np.testing.assert_allclose(rec.ctrl, np.asarray(ref.ctrl), rtol=0, atol=_EXACT)
    np.testing.assert_allclose(rec.sensordata, np.asarray(ref.sensordata), rtol=0, atol=_EXACT)
    assert np.ptp(rec.ctrl[:, :, 0], axis=1).min() > 0.1  # the commands follow the state


def test_latency_in_the_loop_hurts_a_high_gain_controller(arm2):
    # The reason for closed loop: the delay feeds back. A stiff PD that settles without
    # latency oscillates with it; a soft one barely notices.
    n, steps = 4, 200
    qpos0, qvel0 = _start(arm2, n, seed=4, sigma=0.3)
    target = np.array([0.5, -0.3])
    delay = synthetic_reality.parse_effects("latency=4")

    def final_error(effects, kp, kd):
        policy = _pd(arm2, target, kp, kd)
        rec = synthetic_reality.run_policy(arm2, effects, policy, qpos0, qvel0, steps)
        return np.abs(rec.qpos[:, -50:] - target).mean()

    stiff_now = final_error(synthetic_reality.Effects(), 40.0, 1.0)
    stiff_late = final_error(delay, 40.0, 1.0)
    soft_late = final_error(delay, 4.0, 0.5)
    assert stiff_late > 3 * stiff_now
    assert stiff_late > soft_late


def test_bad_policy_output_is_one_clear_error(arm2):
    qpos0, qvel0 = _start(arm2, 2, seed=0)
    effects = synthetic_reality.Effects()
    bad = {
        "shape (2, 3)": lambda obs: np.zeros((2, 3)),
        "shape (2,)": lambda obs: np.zeros(2),
        "non-finite": lambda obs: np.where(obs.time[:, None] > 0.01, np.nan, 0.0) + np.zeros(2),
        "NoneType": lambda obs: None,
    }
    for words, policy in bad.items():
        with pytest.raises(synthetic_reality.PolicyOutputError, match="control step") as e:
            synthetic_reality.run_policy(arm2, effects, policy, qpos0, qvel0, 5)
        assert words in str(e.value) and "(N, nu) = (2, 2)" in str(e.value)
    assert isinstance(e.value, hs.HybridsimError)

    def raising(obs):
        raise KeyError("policy bug")

    with pytest.raises(KeyError, match="policy bug"):  # the policy's own error, unchanged
        synthetic_reality.run_policy(arm2, effects, raising, qpos0, qvel0, 5)
    with pytest.raises(synthetic_reality.EffectsError, match=r"qpos0: expected shape \(N, nq"):
        synthetic_reality.run_policy(arm2, effects, raising, qpos0[0], None, 5)


def test_a_diverging_closed_loop_names_the_episode_and_the_step():
    xml = """<mujoco><worldbody><body><joint name="j" type="slide" axis="1 0 0"/>
    <geom type="sphere" size="0.1" mass="1e-6" contype="0" conaffinity="0"/></body></worldbody>
    <actuator><motor joint="j" gear="1e30" ctrlrange="-1 1"/></actuator></mujoco>"""
    scene = hs.load_scene(xml)
    with pytest.raises(synthetic_reality.RealityDivergedError, match=r"episode 0 .* step 1 "):
        synthetic_reality.run_policy(
            scene,
            synthetic_reality.Effects(latency_steps=1),
            lambda obs: np.ones((2, 1)),
            np.zeros((2, 1)),
            steps=9,
        )


def test_rate_and_qvel_default_like_record(pusher):
    q, _, _ = pusher.initial_state()
    hold = pusher.initial_ctrl()
    rec = synthetic_reality.run_policy(
        pusher,
        synthetic_reality.Effects(),
        lambda obs: np.tile(hold, (2, 1)),
        np.tile(q, (2, 1)),
        steps=10,
        rate=30.0,
    )
    ref = synthetic_reality.record(pusher, synthetic_reality.Effects(), 1, 10, seed=0, rate=30.0)
    assert (rec.timestep, rec.substeps) == (ref.timestep, ref.substeps)
    assert rec.control_dt == pytest.approx(1 / 30)
    assert rec.metadata["rate"] == 30.0
    np.testing.assert_array_equal(rec.qvel[:, 0], 0.0)


def test_reality_world_runs_run_policy(arm2):
    effects = synthetic_reality.parse_effects("latency=2,backlash=0.1,noise=0.001")
    world = RealityWorld(arm2, effects, substeps=3)
    assert world.name == "reality"
    assert world.control_dt == pytest.approx(3 * arm2.timestep)
    qpos0, qvel0 = _start(arm2, 3, seed=5)
    policy = _pd(arm2, np.array([0.2, 0.1]), kp=5.0, kd=0.5)
    rec = world.run(policy, qpos0, qvel0, 30, 9)
    ref = synthetic_reality.run_policy(arm2, effects, policy, qpos0, qvel0, 30, substeps=3, seed=9)
    for key in ("qpos", "qvel", "ctrl", "applied_ctrl", "status"):
        np.testing.assert_array_equal(getattr(rec, key), getattr(ref, key), err_msg=key)
    # The World contract: NumPy arrays of these shapes, status all healthy.
    assert rec.qpos.shape == (3, 31, arm2.nq) and rec.qvel.shape == (3, 31, arm2.nv)
    assert rec.ctrl.shape == (3, 30, arm2.nu) and rec.status.shape == (3,)
    assert rec.control_dt == world.control_dt
    assert not np.any(rec.status)
    timed = RealityWorld("pusher", synthetic_reality.Effects(), rate=30.0)
    assert timed.control_dt == pytest.approx(1 / 30)
    with pytest.raises(synthetic_reality.EffectsError, match="effects must be an Effects"):
        RealityWorld(arm2, "latency=2")
