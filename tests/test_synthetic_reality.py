"""Synthetic realities: effects off equal plain MuJoCo C, each effect changes the physics as
it should, determinism, effect specs, and the ``synthetic-reality record`` command."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

import hybridsim as hs
from hybridsim import synthetic_reality
from hybridsim._src.cli.synthetic_reality_cmd import add_parser

# Effects off run the same mj_step calls on an identical model copy as hybridsim's ``c``
# backend (mujoco.rollout), so the trajectories agree to round-off (in practice bit for bit).
_EXACT = 1e-12


@pytest.fixture(scope="module")
def arm2() -> hs.Scene:
    return hs.load_scene("arm2")


@pytest.fixture(scope="module")
def cartpole() -> hs.Scene:
    return hs.load_scene("cartpole")


@pytest.fixture(scope="module")
def pusher() -> hs.Scene:
    return hs.load_scene("pusher")


# ---------------------------------------------------------------------------------------------
# Effects off: plain MuJoCo C
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["arm2", "cartpole", "pusher"])
@pytest.mark.parametrize("substeps", [1, 3])
def test_effects_off_equals_plain_mujoco_c_rollout(name, substeps):
    scene = hs.load_scene(name)
    rec = synthetic_reality.record(
        scene, synthetic_reality.Effects(), episodes=3, steps=25, seed=4, substeps=substeps
    )
    model = hs.make_model(scene, 3, backend="c", substeps=substeps)
    ref = hs.rollout(model, hs.init(model), rec.ctrl)
    np.testing.assert_allclose(rec.qpos, np.asarray(ref.qpos), rtol=0, atol=_EXACT)
    np.testing.assert_allclose(rec.qvel, np.asarray(ref.qvel), rtol=0, atol=_EXACT)
    np.testing.assert_array_equal(rec.applied_ctrl, rec.ctrl)
    assert rec.control_dt == pytest.approx(model.control_dt)
    assert rec.qpos.shape == (3, 26, scene.nq)
    assert rec.qvel.shape == (3, 26, scene.nv)
    assert rec.ctrl.shape == (3, 25, scene.nu)


def test_record_commands_the_behaviour_controls_inside_the_range(arm2, pusher):
    for scene in (arm2, pusher):
        for kind in ("ou", "sine"):
            b = synthetic_reality.Behaviour(kind=kind)
            u = synthetic_reality.behaviour_controls(scene, b, 2, 40, seed=3, substeps=2)
            low, high = scene.ctrl_range()
            assert u.shape == (2, 40, scene.nu)
            assert np.all(u >= low) and np.all(u <= high)
            assert np.ptp(u, axis=1).min() > 0  # every actuator moves
            rec = synthetic_reality.record(
                scene, synthetic_reality.Effects(), 2, 40, seed=3, substeps=2, behaviour=b
            )
            np.testing.assert_array_equal(rec.ctrl, u)
    ou = synthetic_reality.behaviour_controls(arm2, None, 1, 5, seed=0)
    np.testing.assert_array_equal(ou[0, 0], arm2.initial_ctrl())  # OU starts at the keyframe


# ---------------------------------------------------------------------------------------------
# Each effect on its own
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, spec",
    [
        ("arm2", "latency=2"),
        ("arm2", "deadband=0.3"),
        ("arm2", "backlash=0.2"),
        ("arm2", "torque_speed=2"),
        ("arm2", "coulomb=0.2"),
        ("arm2", "damping_scale=3"),
        ("arm2", "mass_scale=1.5"),
        ("cartpole", "drag=0.05"),
        ("pusher", "drag=2"),
        ("pusher", "friction_field=0.5"),
        ("arm2", "default"),
        ("pusher", "default"),
    ],
)
def test_each_effect_changes_the_trajectory(name, spec):
    scene = hs.load_scene(name)
    steps = 200 if name == "pusher" else 60
    ctrl = synthetic_reality.behaviour_controls(scene, None, 2, steps, seed=1)
    if name == "pusher":  # push the box along x so contacts and the box's motion matter
        ctrl[:, :, 0] = np.linspace(-0.1, 0.3, steps)
    off = synthetic_reality.simulate(scene, synthetic_reality.Effects(), ctrl)
    on = synthetic_reality.simulate(scene, synthetic_reality.parse_effects(spec), ctrl)
    assert np.all(np.isfinite(on.qpos)) and np.all(np.isfinite(on.qvel))
    assert np.abs(on.qpos - off.qpos).max() > 1e-6, spec
    np.testing.assert_array_equal(on.ctrl, ctrl)  # the commanded controls are recorded


def test_latency_applies_the_initial_command_then_the_delayed_one(arm2):
    ctrl = synthetic_reality.behaviour_controls(arm2, None, 2, 30, seed=2)
    lag = 3
    rec = synthetic_reality.simulate(arm2, synthetic_reality.Effects(latency_steps=lag), ctrl)
    np.testing.assert_array_equal(rec.applied_ctrl[:, :lag], np.zeros((2, lag, 2)))
    np.testing.assert_array_equal(rec.applied_ctrl[:, lag:], ctrl[:, :-lag])
    # Arm at rest with zero torque for the first `lag` steps.
    np.testing.assert_array_equal(rec.qvel[:, : lag + 1], 0.0)
    # Same physics as commanding the delayed controls without latency.
    delayed = synthetic_reality.simulate(arm2, synthetic_reality.Effects(), rec.applied_ctrl)
    np.testing.assert_allclose(rec.qpos, delayed.qpos, rtol=0, atol=_EXACT)


def test_deadband_ignores_small_commands(arm2):
    small = np.full((1, 20, 2), 0.09)  # below 0.1 of half the range (1)
    rec = synthetic_reality.simulate(arm2, synthetic_reality.Effects(deadband=0.1), small)
    np.testing.assert_array_equal(rec.applied_ctrl, 0.0)
    np.testing.assert_array_equal(rec.qvel, 0.0)
    big = np.full((1, 20, 2), 0.11)
    rec = synthetic_reality.simulate(arm2, synthetic_reality.Effects(deadband=0.1), big)
    np.testing.assert_array_equal(rec.applied_ctrl, big)
    assert np.abs(rec.qvel[0, -1]).min() > 0


def test_backlash_holds_the_applied_command_through_a_reversal(arm2):
    gap = 0.2  # of half the range (1): the command travels 0.2 after a reversal
    up = np.linspace(0.0, 0.5, 11)
    down = np.linspace(0.5, 0.0, 11)[1:]
    ctrl = np.stack([np.concatenate([up, down])] * 2, axis=1)[None]  # (1, 21, 2)
    u = synthetic_reality.applied_controls(arm2, synthetic_reality.Effects(backlash=gap), ctrl)[
        0, :, 0
    ]
    np.testing.assert_allclose(u[:11], np.clip(up - gap / 2, 0.0, None), atol=1e-12)
    # After the reversal at 0.5 nothing moves until the command is 0.2 lower.
    held = np.abs(down - 0.5) <= gap + 1e-12
    np.testing.assert_allclose(u[11:][held], 0.5 - gap / 2, atol=1e-12)
    np.testing.assert_allclose(u[11:][~held], down[~held] + gap / 2, atol=1e-12)


def test_heavier_arm_accelerates_less(arm2):
    ctrl = np.full((1, 5, 2), 0.5)
    nominal = synthetic_reality.simulate(arm2, synthetic_reality.Effects(), ctrl)
    heavy = synthetic_reality.simulate(arm2, synthetic_reality.Effects(mass_scale=1.5), ctrl)
    assert np.linalg.norm(heavy.qvel[0, 1]) < 0.9 * np.linalg.norm(nominal.qvel[0, 1])
    assert np.all(np.abs(heavy.qvel[0, 1]) < np.abs(nominal.qvel[0, 1]))


def test_apply_to_model_copies_and_scales(arm2):
    m0 = arm2.mj_model
    mass, damping = m0.body_mass.copy(), m0.dof_damping.copy()
    m = synthetic_reality.apply_to_model(
        m0, synthetic_reality.Effects(mass_scale=1.2, damping_scale=2.0)
    )
    assert m is not m0
    np.testing.assert_array_equal(m0.body_mass, mass)  # the scene's model is untouched
    np.testing.assert_array_equal(m0.dof_damping, damping)
    np.testing.assert_allclose(m.body_mass[1:], 1.2 * mass[1:])
    np.testing.assert_allclose(m.body_inertia[1:], 1.2 * m0.body_inertia[1:])
    np.testing.assert_allclose(m.dof_damping, 2.0 * damping)


def _coast(scene, effects, steps=300):
    qvel0 = np.full(scene.nv, 2.0)
    return synthetic_reality.simulate(scene, effects, np.zeros((1, steps, scene.nu)), qvel0=qvel0)


def test_coulomb_friction_stops_a_coasting_arm_without_chatter(arm2):
    free = _coast(arm2, synthetic_reality.Effects())
    rub = _coast(arm2, synthetic_reality.Effects(coulomb_friction=0.2))
    speed_free = np.abs(free.qvel[0]).sum(axis=1)
    speed_rub = np.abs(rub.qvel[0]).sum(axis=1)
    assert np.all(speed_rub[5:] < speed_free[5:])
    assert speed_free[-1] > 0.5
    tail = rub.qvel[0, -50:]
    assert np.abs(tail).max() < 1e-3  # stopped ...
    assert not np.any(np.diff(np.sign(tail), axis=0) != 0)  # ... and not chattering


def test_damping_and_drag_slow_coasting_joints(arm2, cartpole):
    for scene, effects in (
        (arm2, synthetic_reality.Effects(damping_scale=3.0)),
        (arm2, synthetic_reality.Effects(drag=0.05)),
        (cartpole, synthetic_reality.Effects(drag=0.05)),
    ):
        free = _coast(scene, synthetic_reality.Effects(), steps=100)
        slow = _coast(scene, effects, steps=100)
        energy = lambda r: (r.qvel[0, -1] ** 2).sum()  # noqa: E731
        assert energy(slow) < energy(free), effects


def test_torque_speed_limits_the_speed(cartpole):
    push = np.ones((1, 200, 1))  # full force on the cart
    free = synthetic_reality.simulate(cartpole, synthetic_reality.Effects(), push)
    limited = synthetic_reality.simulate(
        cartpole, synthetic_reality.Effects(torque_speed=0.5), push
    )
    assert np.abs(free.qvel[0, :, 0]).max() > 2.0
    assert np.abs(limited.qvel[0, :, 0]).max() < 0.6  # 0.5 m/s no-load speed (+ pole swing)


def test_torque_speed_needs_a_force_limit():
    with pytest.raises(synthetic_reality.EffectsError, match="base_yaw"):
        synthetic_reality.record(
            "tabletop", synthetic_reality.Effects(torque_speed=1.0), 1, 1, seed=0
        )


def test_friction_field_changes_how_far_the_box_slides(pusher):
    steps = 300
    ctrl = np.zeros((1, steps, 2))
    ctrl[0, :, 0] = np.linspace(-0.1, 0.3, steps)  # the finger pushes the box along +x
    box_x = {}
    for a in (-0.5, 0.0, 0.5):
        # k = 10 rad/m: sin(k x) cos(k y) > 0.5 where the box travels (x in 0.1..0.3, y = 0).
        effects = synthetic_reality.Effects(friction_field=a, friction_wavenumber=10.0)
        box_x[a] = synthetic_reality.simulate(pusher, effects, ctrl).qpos[0, -1, 2]
    assert box_x[0.5] < box_x[0.0] < box_x[-0.5]  # more friction, the box lags the finger more


def test_friction_field_keeps_nominal_contacts_at_zero_amplitude(pusher):
    # Static geoms lose their friction and moving geoms take over the larger value, so a
    # vanishing field must reproduce the nominal contacts (up to the 1e-12 perturbation).
    steps = 200
    ctrl = np.zeros((1, steps, 2))
    ctrl[0, :, 0] = np.linspace(-0.1, 0.3, steps)
    off = synthetic_reality.simulate(pusher, synthetic_reality.Effects(), ctrl)
    tiny = synthetic_reality.simulate(pusher, synthetic_reality.Effects(friction_field=1e-12), ctrl)
    np.testing.assert_allclose(tiny.qpos, off.qpos, rtol=0, atol=1e-9)


def test_sensor_noise_is_on_the_recording_only(pusher):
    clean = synthetic_reality.record(pusher, synthetic_reality.Effects(), 2, 200, seed=5)
    noisy = synthetic_reality.record(
        pusher, synthetic_reality.Effects(sensor_noise=0.01), 2, 200, seed=5
    )
    np.testing.assert_array_equal(noisy.ctrl, clean.ctrl)
    diff = noisy.qvel - clean.qvel
    assert diff.std() == pytest.approx(0.01, rel=0.1)
    assert abs(diff.mean()) < 0.002
    free = slice(0, 3)  # finger x, y and the box position: plain Gaussian noise
    assert (noisy.qpos - clean.qpos)[..., free].std() == pytest.approx(0.01, rel=0.1)
    quat = noisy.qpos[..., 5:9]  # box orientation stays a unit quaternion
    np.testing.assert_allclose(np.linalg.norm(quat, axis=-1), 1.0, atol=1e-12)


def test_initial_noise_moves_only_hinge_and_slide_joints(pusher):
    rec = synthetic_reality.record(
        pusher, synthetic_reality.Effects(), 3, 2, seed=0, initial_noise=0.01
    )
    q0 = pusher.initial_state()[0]
    start = rec.qpos[:, 0]
    assert np.all(start[:, :2] != q0[:2])
    np.testing.assert_array_equal(start[:, 2:], np.broadcast_to(q0[2:], (3, 7)))


def test_a_diverging_episode_names_the_episode_and_the_effects():
    xml = """<mujoco><worldbody><body><joint name="j" type="slide" axis="1 0 0"/>
    <geom type="sphere" size="0.1" mass="1e-6" contype="0" conaffinity="0"/></body></worldbody>
    <actuator><motor joint="j" gear="1e30" ctrlrange="-1 1"/></actuator></mujoco>"""
    with pytest.raises(synthetic_reality.RealityDivergedError, match=r"episode 0 .*latency_steps"):
        synthetic_reality.simulate(
            hs.load_scene(xml), synthetic_reality.Effects(latency_steps=1), np.ones((2, 9, 1))
        )


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


def test_same_seed_same_recording_other_seed_differs(pusher):
    effects = synthetic_reality.parse_effects("default,noise=0.001")
    a = synthetic_reality.record(pusher, effects, 2, 40, seed=7, initial_noise=0.01)
    b = synthetic_reality.record(pusher, effects, 2, 40, seed=7, initial_noise=0.01)
    c = synthetic_reality.record(pusher, effects, 2, 40, seed=8, initial_noise=0.01)
    for key in ("qpos", "qvel", "ctrl", "applied_ctrl"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert np.abs(a.qpos - c.qpos).max() > 1e-4
    assert np.abs(a.ctrl - c.ctrl).max() > 1e-4
    assert a.metadata == b.metadata and a.metadata["seed"] == 7


# ---------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------


def test_parse_effects_reads_keys_presets_and_overrides():
    e = synthetic_reality.parse_effects(
        "latency=2,backlash=0.05,coulomb=0.3,friction_field=0.5,noise=0.001"
    )
    assert e == synthetic_reality.Effects(
        latency_steps=2,
        backlash=0.05,
        coulomb_friction=0.3,
        friction_field=0.5,
        sensor_noise=0.001,
    )
    assert synthetic_reality.parse_effects("") == synthetic_reality.Effects()
    assert synthetic_reality.parse_effects("none") == synthetic_reality.Effects()
    d = synthetic_reality.parse_effects("default")
    assert d.latency_steps > 0 and d.backlash > 0 and d.coulomb_friction > 0
    assert d.friction_field != 0 and d.drag > 0 and d.mass_scale == 1.2
    assert synthetic_reality.parse_effects("default, latency=5").latency_steps == 5
    assert synthetic_reality.parse_effects("mass_scale=2,sensor_noise=0.1").sensor_noise == 0.1


@pytest.mark.parametrize(
    "spec, words",
    [
        ("latency=2,wobble=1", ["'wobble'", "valid keys", "coulomb"]),
        ("fancy", ["'fancy'", "presets", "default"]),
        ("latency=1.5", ["'latency'", "int", "'1.5'"]),
        ("coulomb=lots", ["'coulomb'", "number", "'lots'"]),
        ("friction_field=1.5", ["friction_field", "(-1, 1)"]),
        ("drag=-1", ["drag", ">= 0"]),
        ("mass_scale=0", ["mass_scale", "> 0"]),
        ("noise=nan", ["sensor_noise", "finite"]),
        ("latency=1,latency=2", ["'latency'", "twice"]),
    ],
)
def test_parse_effects_errors_name_the_key(spec, words):
    with pytest.raises(synthetic_reality.EffectsError) as e:
        synthetic_reality.parse_effects(spec)
    assert isinstance(e.value, hs.HybridsimError)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_configs_are_frozen_and_validated():
    e = synthetic_reality.Effects()
    with pytest.raises(AttributeError):
        e.latency_steps = 3  # type: ignore[misc]
    assert e.active() == {}
    assert synthetic_reality.Effects(drag=0.1).active() == {"drag": 0.1}
    with pytest.raises(synthetic_reality.EffectsError, match="latency_steps"):
        synthetic_reality.Effects(latency_steps=1.0)  # type: ignore[arg-type]
    with pytest.raises(synthetic_reality.EffectsError, match="kind"):
        synthetic_reality.Behaviour(kind="random")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybridsim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_record_writes_a_loadable_interchange_file(tmp_path, capsys):
    out = tmp_path / "real.npz"
    args = _parser().parse_args(
        [
            "synthetic-reality",
            "record",
            "--scene",
            "arm2",
            "--effects",
            "latency=2,backlash=0.05,coulomb=0.3,friction_field=0.5,noise=0.001",
            "--episodes",
            "3",
            "--steps",
            "20",
            "--seed",
            "1",
            "--substeps",
            "2",
            "--behaviour",
            "sine",
            "--out",
            str(out),
        ]
    )
    assert args.func(args) == 0
    data = hs.load_trajectory(out, hs.load_scene("arm2"))
    assert data["qpos"].shape == (3, 21, 2)
    assert data["qvel"].shape == (3, 21, 2)
    assert data["ctrl"].shape == (3, 20, 2)
    assert float(data["control_dt"]) == pytest.approx(0.01)
    assert data["reality_applied_ctrl"].shape == (3, 20, 2)
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "latency_steps=2" in captured.out
    assert "(3, 21, 2)" in captured.out and "control_dt 0.01 s" in captured.out
    assert "[hybridsim" in captured.err  # progress lines
    # Same command, same file.
    again = tmp_path / "again.npz"
    args.out = str(again)
    args.quiet = True
    assert args.func(args) == 0
    assert again.read_bytes() == out.read_bytes()


def test_cli_bad_effects_is_a_hybridsim_error(tmp_path):
    args = _parser().parse_args(
        ["synthetic-reality", "record", "--scene", "arm2", "--effects", "latency=two"]
        + ["--episodes", "1", "--steps", "2", "--seed", "0", "--out", str(tmp_path / "x.npz")]
    )
    with pytest.raises(hs.HybridsimError, match="'latency'"):
        args.func(args)
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    "argv", [["synthetic-reality", "--help"], ["synthetic-reality", "record", "--help"]]
)
def test_cli_help_has_an_example(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "hybridsim synthetic-reality record" in out
