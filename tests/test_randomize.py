"""Domain randomization: determinism, ranges, and every field reaching c, mjx and the renderer."""

from __future__ import annotations

import jax
import mujoco
import numpy as np
import pytest

import hybridsim as hs
from hybridsim._src.params import model_field
from hybridsim.randomize import RandomizeConfig, Range, randomize

# A motor-driven pendulum, a box sliding on the floor (initial speed from the keyframe)
# and a ball falling freely far from everything; a material, a spot light and a camera.
XML = """
<mujoco model="dr">
  <option timestep="0.01"/>
  <asset><material name="floor" rgba="0.6 0.6 0.6 1"/></asset>
  <worldbody>
    <light name="spot" pos="0 -0.5 2" dir="0 0 -1" cutoff="60"/>
    <camera name="main" pos="0 -1.2 0.6" xyaxes="1 0 0 0 0.3 1"/>
    <geom name="floor" type="plane" size="3 3 0.1" material="floor"/>
    <body name="arm" pos="0 0.5 1">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.5" armature="0.01"
             frictionloss="0.05"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03" mass="1" contype="0"
            conaffinity="0" rgba="0.2 0.3 0.9 1"/>
    </body>
    <body name="box" pos="0 0 0.02">
      <freejoint/>
      <geom type="box" size="0.06 0.06 0.02" mass="0.5" rgba="0.9 0.2 0.2 1"/>
    </body>
    <body name="ball" pos="2 2 2">
      <freejoint/>
      <geom type="sphere" size="0.05" mass="0.2" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" gear="1"/></actuator>
  <keyframe>
    <key qpos="0  0 0 0.02 1 0 0 0  2 2 2 1 0 0 0" qvel="0  0.5 0 0 0 0 0  0 0 0 0 0 0"
         ctrl="0.5"/>
  </keyframe>
</mujoco>
"""

PHYSICS = {
    "friction": Range(0.2, 0.5),
    "mass": Range(1.5, 2.0),
    "com": Range(0.02, 0.05),
    "damping": Range(3.0, 4.0),
    "armature": Range(5.0, 8.0),
    "frictionloss": Range(5.0, 8.0),
    "actuator_gain": Range(3.0, 4.0),
    "gravity": Range(-3.0, -2.0),
}
APPEARANCE = {
    "geom_rgb": Range(0.0, 1.0, mode="set"),
    "mat_rgb": Range(0.0, 0.1, mode="set"),
    "light_pos": Range(0.5, 1.0),
    "light_dir": Range(0.5, 0.8),
    "cam_pos": Range(0.1, 0.2),
    "cam_rot": Range(0.1, 0.2),
}
STEPS = 30
# float32 MJX (JAX or Warp) against float64 MuJoCo C over 30 steps with one sliding contact
# (measured max |qpos| difference <= 1e-5 here); a randomized field moves qpos by > 8e-2.
MJX_VS_C_ATOL = 2e-3
CHANGED_MIN = 1e-2  # smallest qpos change (over the rollout) a randomized field must cause


@pytest.fixture(scope="module")
def scene() -> hs.Scene:
    return hs.load_scene(XML)


def _one_field_per_world(scene: hs.Scene, ranges: dict[str, Range]) -> hs.WorldParams:
    """World 0: the scene as is; world k: only field k randomized (same fields everywhere)."""
    everything = randomize(scene, jax.random.key(3), 1, RandomizeConfig(**ranges))
    rows = []
    for name in [None, *ranges]:
        row = {}
        for field in everything.fields:
            base = np.asarray(model_field(scene.mj_model, field), np.float64)
            row[field] = base
        if name is not None:
            single = randomize(scene, jax.random.key(3), 1, RandomizeConfig(**{name: ranges[name]}))
            row.update({f: v[0] for f, v in single.fields.items()})
        rows.append(row)
    fields = {f: np.stack([r[f] for r in rows]) for f in everything.fields}
    return hs.world_params(scene, len(rows), **fields)


def test_same_key_same_params_other_key_other_params(scene):
    config = RandomizeConfig(**PHYSICS, **APPEARANCE)
    a = randomize(scene, jax.random.key(0), 4, config)
    b = randomize(scene, jax.random.key(0), 4, config)
    c = randomize(scene, jax.random.key(1), 4, config)
    assert a.fields.keys() == b.fields.keys() == c.fields.keys()
    for name in a.fields:
        np.testing.assert_array_equal(a.fields[name], b.fields[name])
        assert not np.array_equal(a.fields[name], c.fields[name]), name
    # Worlds differ from one another.
    assert not np.allclose(a.fields["geom_friction"][0], a.fields["geom_friction"][1])


def test_ranges_respected(scene):
    m = scene.mj_model
    config = RandomizeConfig(
        friction=Range(0.5, 1.5),
        mass=Range(0.1, 10.0, dist="loguniform"),
        gravity=Range(-1.0, 1.0, mode="add"),
        damping=Range(2.0, 3.0, mode="set"),
        geom_rgb=Range(-0.5, 0.5),
        cam_rot=Range(0.1, 0.2),
    )
    p = randomize(scene, jax.random.key(7), 256, config).fields
    ratio = p["geom_friction"][:, :, 0] / m.geom_friction[:, 0]
    assert ratio.min() >= 0.5 and ratio.max() <= 1.5 and ratio.max() - ratio.min() > 0.8
    np.testing.assert_array_equal(
        p["geom_friction"][:, :, 1:],
        np.broadcast_to(m.geom_friction[:, 1:], p["geom_friction"][:, :, 1:].shape),
    )
    mass = p["body_mass"][:, 1:] / m.body_mass[1:]
    assert mass.min() >= 0.1 and mass.max() <= 10.0
    # log-uniform: about half the samples below the geometric mean 1.
    assert 0.35 < np.mean(mass < 1.0) < 0.65
    np.testing.assert_allclose(p["body_mass"][:, 0], m.body_mass[0])  # world body untouched
    np.testing.assert_allclose(
        p["body_inertia"][:, 1:] / m.body_inertia[1:], np.repeat(mass[..., None], 3, -1)
    )
    dg = p["opt.gravity"] - m.opt.gravity
    assert dg.min() >= -1.0 and dg.max() <= 1.0
    assert p["dof_damping"].min() >= 2.0 and p["dof_damping"].max() <= 3.0
    rgb = p["geom_rgba"][..., :3]
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    np.testing.assert_array_equal(
        p["geom_rgba"][..., 3], np.broadcast_to(m.geom_rgba[:, 3], rgb.shape[:2])
    )
    q0, q = m.cam_quat[0], p["cam_quat"][:, 0]
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    angle = 2 * np.arccos(np.clip(np.abs(q @ q0), 0.0, 1.0))
    assert angle.min() >= 0.1 - 1e-6 and angle.max() <= 0.2 + 1e-6


def test_config_from_dict_and_back():
    spec = {
        "friction": [0.5, 1.5],
        "gravity": {"low": -1, "high": 1},
        "mass": {"low": 0.5, "high": 2, "dist": "loguniform"},
    }
    config = RandomizeConfig.from_dict(spec)
    assert config.friction == Range(0.5, 1.5)
    assert config.mode_of("friction") == "scale" and config.mode_of("gravity") == "add"
    assert RandomizeConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"fricton": [0.5, 1.5]}, "unknown randomization keys"),
        ({"friction": [2.0, 1.0]}, "low <= high"),
        ({"friction": {"low": 0, "high": 1, "dist": "loguniform"}}, "low > 0"),
        ({"com": {"low": 0, "high": 1, "mode": "scale"}}, "mode 'scale' not allowed"),
        ({"friction": [1.0]}, r"expected \[low, high\]"),
        ({"friction": {"low": 0, "high": 1, "mode": "times"}}, "mode must be one of"),
    ],
)
def test_bad_config_is_a_clear_error(spec, match):
    with pytest.raises(hs.ShapeError, match=match):
        RandomizeConfig.from_dict(spec)


def test_nothing_to_randomize_is_an_error():
    no_light = "<mujoco><worldbody><geom size='1'/></worldbody></mujoco>"
    for config in (RandomizeConfig(), RandomizeConfig(light_pos=Range(0, 1))):
        with pytest.raises(hs.ShapeError, match="changes nothing"):
            randomize(no_light, jax.random.key(0), 2, config)


def test_every_physics_field_changes_every_backend_alike(scene):
    """World k randomizes only field k; each changes the trajectory, alike on c, mjx, warp."""
    params = _one_field_per_world(scene, PHYSICS)
    bsz = params.batch_size
    ctrl = np.full((bsz, STEPS, scene.nu), 0.5)
    qpos = {}
    for backend in ("c", "mjx", "warp"):
        model = hs.make_model(scene, bsz, backend=backend, params=params)
        traj = hs.rollout(model, hs.init(model), ctrl)
        assert not np.asarray(traj.status).any()
        qpos[backend] = np.asarray(traj.qpos)
    np.testing.assert_allclose(qpos["mjx"], qpos["c"], atol=MJX_VS_C_ATOL)
    np.testing.assert_allclose(qpos["warp"], qpos["c"], atol=MJX_VS_C_ATOL)
    # World 0 is the scene itself: equal to plain MuJoCo C.
    plain = hs.make_model(scene, 1, backend="c")
    np.testing.assert_array_equal(
        qpos["c"][:1], np.asarray(hs.rollout(plain, hs.init(plain), ctrl[:1]).qpos)
    )
    for k, name in enumerate(PHYSICS, start=1):
        for backend in ("c", "mjx", "warp"):
            change = np.abs(qpos[backend][k] - qpos[backend][0]).max()
            assert change > CHANGED_MIN, (name, backend, change)
    # Gravity: the free ball falls with each world's own gravity, on both backends.
    g = params.fields["opt.gravity"]
    k = list(PHYSICS).index("gravity") + 1
    ball = slice(8, 11)
    for backend in ("c", "mjx", "warp"):
        fall = qpos[backend][:, -1, ball] - qpos[backend][:, 0, ball]
        # semi-implicit Euler: x_T = g dt^2 T(T+1)/2
        expected = g * scene.timestep**2 * STEPS * (STEPS + 1) / 2
        np.testing.assert_allclose(fall[[0, k]], expected[[0, k]], rtol=1e-4, atol=1e-5)
        assert abs(fall[k, 2]) > abs(fall[0, 2]) + 0.05  # gravity was made 2-3 m/s^2 stronger


def test_appearance_fields_reach_the_c_models(scene):
    params = randomize(scene, jax.random.key(0), 3, RandomizeConfig(**APPEARANCE))
    model = hs.make_model(scene, 3, backend="c", params=params)
    for b, mb in enumerate(model.c_runtime.models):
        for field, value in params.fields.items():
            np.testing.assert_allclose(model_field(mb, field), value[b], rtol=1e-6)  # f32 rgba
        d = mujoco.MjData(mb)
        mujoco.mj_forward(mb, d)
        assert np.all(np.isfinite(d.cam_xpos))


def test_appearance_fields_change_rendered_pixels(scene):
    from hybridsim._src.render import render_frames

    params = _one_field_per_world(scene, APPEARANCE)
    qpos = np.tile(scene.initial_state()[0], (params.batch_size, 1))
    frames = render_frames(scene, qpos, width=32, height=24, params=params).astype(int)
    assert frames[0].max() > 0  # the reference frame shows something
    for k, name in enumerate(APPEARANCE, start=1):
        assert np.abs(frames[k] - frames[0]).mean() > 0.5, name


def test_moving_the_centre_of_mass_of_a_simple_body_is_refused(scene):
    ipos = scene.mj_model.body_ipos.copy()
    box = mujoco.mj_name2id(scene.mj_model, mujoco.mjtObj.mjOBJ_BODY, "box")
    ipos[box] += 0.01
    with pytest.raises(hs.ShapeError, match=r"\['box'\].*<inertial pos"):
        hs.world_params(scene, 1, body_ipos=ipos)
