"""Golden tests: each backend reproduces its raw library; MJX agrees with MuJoCo C."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from conftest import CONTACT_SCENES, SMOOTH_SCENES, random_ctrl
from mujoco import mjx
from mujoco import rollout as mj_rollout

import hybridsim as hs

STEPS = 100  # control steps in every golden comparison
BATCH = 2

# hybridsim's `c` backend makes the same mujoco.rollout call as the raw library: equal bits.
C_VS_RAW_ATOL = 0.0
# hybridsim's `mjx`/`warp` run the same mjx.step sequence as a raw jit(vmap(scan)); XLA may
# fuse the two programs differently, so allow float32 rounding noise amplified over 100 steps.
MJX_VS_RAW_ATOL = 1e-4
# float32 MJX against float64 MuJoCo C on contact-free scenes over 100 control steps.
MJX_VS_C_SMOOTH_ATOL = 2e-3
# MJX and MuJoCo C part ways once contacts start and stop (different collision and solver
# details). Measured max |qpos| difference over these 100 steps (seed 2, 2 worlds):
# pusher 3.5e-8, tabletop 6.0e-7, quadruped 5.3e-7; with other seeds the quadruped falls and
# reaches 5.9e-2 at 100 steps (benchmarks/backend_agreement.py, README's backend table).
MJX_VS_C_CONTACT_ATOL = {"pusher": 1e-5, "tabletop": 1e-4, "quadruped": 0.2}

ALL_SCENES = SMOOTH_SCENES + CONTACT_SCENES


def _raw_c(scene: hs.Scene, ctrl: np.ndarray, substeps: int) -> np.ndarray:
    """Plain mujoco.rollout from the first keyframe; qpos at control-step ends."""
    m = scene.mj_model
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    x0 = np.empty(mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS))
    mujoco.mj_getState(m, d, x0, mujoco.mjtState.mjSTATE_FULLPHYSICS)
    u = np.repeat(ctrl, substeps, axis=1)
    state, _ = mj_rollout.rollout(m, mujoco.MjData(m), np.tile(x0, (len(ctrl), 1)), u)
    return state[:, substeps - 1 :: substeps, 1 : 1 + m.nq]


@functools.cache
def _raw_mjx_fn(scene: hs.Scene, impl: str):
    m = scene.mj_model
    mx = mjx.put_model(m, impl=impl)
    q0, v0, a0 = scene.initial_state()

    def world(u):
        d = mjx.make_data(m if impl == "warp" else mx, impl=impl)
        d = d.replace(
            qpos=jnp.asarray(q0, d.qpos.dtype),
            qvel=jnp.asarray(v0, d.qvel.dtype),
            act=jnp.asarray(a0, d.act.dtype),
        )

        def body(d, ut):
            d = mjx.step(mx, d.replace(ctrl=ut))
            return d, d.qpos

        return jax.lax.scan(body, d, u)[1]

    return jax.jit(jax.vmap(world))


def _raw_mjx(scene: hs.Scene, ctrl: np.ndarray, substeps: int, impl: str) -> np.ndarray:
    u = jnp.asarray(np.repeat(ctrl, substeps, axis=1), jnp.float32)
    return np.asarray(_raw_mjx_fn(scene, impl)(u))[:, substeps - 1 :: substeps]


@pytest.mark.parametrize("scene_name", ALL_SCENES)
def test_c_equals_raw_mujoco_rollout(scene_name):
    model = hs.make_model(scene_name, BATCH, backend="c", substeps=2)
    ctrl = random_ctrl(model.scene, BATCH, STEPS)
    traj = hs.rollout(model, hs.init(model), ctrl)
    raw = _raw_c(model.scene, ctrl, 2)
    assert traj.backend == "c"
    assert traj.qpos.shape == (BATCH, STEPS + 1, model.scene.nq)
    np.testing.assert_allclose(traj.qpos[:, 1:], raw, atol=C_VS_RAW_ATOL, rtol=0)
    assert not np.any(traj.status)


def test_c_equals_sequential_mj_step():
    model = hs.make_model("pusher", 1, backend="c", substeps=3)
    ctrl = random_ctrl(model.scene, 1, 50)
    traj = hs.rollout(model, hs.init(model), ctrl)
    m = model.scene.mj_model
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, 0)
    for t in range(50):
        d.ctrl[:] = ctrl[0, t]
        for _ in range(3):
            mujoco.mj_step(m, d)
        np.testing.assert_allclose(traj.qpos[0, t + 1], d.qpos, atol=C_VS_RAW_ATOL, rtol=0)


@pytest.mark.parametrize("scene_name", ALL_SCENES)
def test_mjx_equals_raw_mjx(scene_name):
    model = hs.make_model(scene_name, BATCH, backend="mjx", substeps=1)
    ctrl = random_ctrl(model.scene, BATCH, STEPS)
    traj = hs.rollout(model, hs.init(model), ctrl)
    raw = _raw_mjx(model.scene, ctrl, 1, "jax")
    assert traj.backend == "mjx"
    np.testing.assert_allclose(np.asarray(traj.qpos[:, 1:]), raw, atol=MJX_VS_RAW_ATOL, rtol=0)


@pytest.mark.parametrize("scene_name", ALL_SCENES)
def test_warp_equals_raw_mjx_warp(scene_name):
    pytest.importorskip("warp", reason="backend warp needs warp-lang")
    model = hs.make_model(scene_name, BATCH, backend="warp", substeps=1)
    ctrl = random_ctrl(model.scene, BATCH, STEPS)
    traj = hs.rollout(model, hs.init(model), ctrl)
    raw = _raw_mjx(model.scene, ctrl, 1, "warp")
    assert traj.backend == "warp"
    np.testing.assert_allclose(np.asarray(traj.qpos[:, 1:]), raw, atol=MJX_VS_RAW_ATOL, rtol=0)


@pytest.mark.parametrize("backend", ["mjx", "warp"])
@pytest.mark.parametrize("scene_name", SMOOTH_SCENES)
def test_jax_backends_agree_with_c_on_smooth_scenes(scene_name, backend):
    if backend == "warp":
        pytest.importorskip("warp", reason="backend warp needs warp-lang")
    c = hs.make_model(scene_name, BATCH, backend="c", substeps=2)
    other = hs.make_model(scene_name, BATCH, backend=backend, substeps=2)
    ctrl = random_ctrl(c.scene, BATCH, STEPS, seed=1)
    ref = hs.rollout(c, hs.init(c), ctrl)
    got = hs.rollout(other, hs.init(other), ctrl)
    err = np.abs(np.asarray(got.qpos) - ref.qpos).max()
    assert err < MJX_VS_C_SMOOTH_ATOL, f"{backend} vs c on {scene_name}: {err:.2e}"
    np.testing.assert_allclose(np.asarray(got.sensordata), ref.sensordata, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("scene_name", CONTACT_SCENES)
def test_mjx_vs_c_on_contact_scenes_is_bounded(scene_name):
    c = hs.make_model(scene_name, BATCH, backend="c")
    m = hs.make_model(scene_name, BATCH, backend="mjx")
    ctrl = random_ctrl(c.scene, BATCH, STEPS, seed=2)
    ref = hs.rollout(c, hs.init(c), ctrl)
    got = hs.rollout(m, hs.init(m), ctrl)
    err = np.abs(np.asarray(got.qpos) - ref.qpos).max()
    print(f"\nmjx vs c on {scene_name}: max |qpos| diff over {STEPS} steps = {err:.3e}")
    assert np.isfinite(err)
    assert err < MJX_VS_C_CONTACT_ATOL[scene_name]


@pytest.mark.parametrize("backend", ["c", "mjx", "warp"])
def test_per_world_params_match_c(backend):
    """Worlds with different damping and gains differ, and match MuJoCo C world by world."""
    if backend == "warp":
        pytest.importorskip("warp", reason="backend warp needs warp-lang")
    scene = hs.load_scene("arm2")
    damping = np.stack([scene.mj_model.dof_damping * s for s in (0.5, 4.0)])
    gain = np.stack([scene.mj_model.actuator_gainprm * s for s in (1.0, 0.5)])
    params = hs.world_params(scene, 2, dof_damping=damping, actuator_gainprm=gain)
    ctrl = np.ones((2, 60, scene.nu)) * 0.5
    model = hs.make_model(scene, 2, backend=backend, params=params, substeps=2)
    got = np.asarray(hs.rollout(model, hs.init(model), ctrl).qpos)
    assert np.abs(got[0, -1] - got[1, -1]).max() > 1e-2  # the worlds really differ
    for b in range(2):
        m = scene.mj_model.__copy__()
        m.dof_damping[:] = damping[b]
        m.actuator_gainprm[:] = gain[b]
        single = hs.make_model(m, 1, backend="c", substeps=2)
        ref = hs.rollout(single, hs.init(single), ctrl[b : b + 1]).qpos
        tol = C_VS_RAW_ATOL if backend == "c" else MJX_VS_C_SMOOTH_ATOL
        np.testing.assert_allclose(got[b], ref[0], atol=tol, rtol=0)


@pytest.mark.parametrize("backend", ["c", "mjx"])
def test_equal_inputs_give_equal_results(backend, arm2_mjx):
    model = arm2_mjx if backend == "mjx" else hs.make_model("arm2", 4, backend="c", substeps=2)
    ctrl = random_ctrl(model.scene, 4, 30, seed=7)
    a = hs.rollout(model, hs.init(model), ctrl)
    b = hs.rollout(model, hs.init(model), random_ctrl(model.scene, 4, 30, seed=7))
    np.testing.assert_array_equal(np.asarray(a.qpos), np.asarray(b.qpos))
