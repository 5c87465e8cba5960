"""Bad input gets a clear error or a per-world flag, never a raw traceback from JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_ctrl

import hybridsim as hs

BROKEN_XML = "<mujoco><worldbody><body><geom type='sphere'></body></worldbody></mujoco>"
MISSING_MESH_XML = """
<mujoco><asset><mesh name="m" file="definitely_missing_mesh.stl"/></asset>
<worldbody><geom type="mesh" mesh="m"/></worldbody></mujoco>"""
# A joint with huge gear and no damping: blows up within a few steps at this timestep.
EXPLODING_XML = """
<mujoco><option timestep="0.05"/>
<worldbody><body><joint name="j" type="hinge" axis="0 0 1"/>
<geom type="capsule" fromto="0 0 0 1 0 0" size="0.01" mass="1e-6"/></body></worldbody>
<actuator><motor joint="j" gear="1e12"/></actuator></mujoco>"""


def test_malformed_mjcf_names_the_problem():
    with pytest.raises(hs.SceneError, match="XML string"):
        hs.load_scene(BROKEN_XML)


def test_missing_mesh_names_the_file():
    with pytest.raises(hs.SceneError, match="definitely_missing_mesh.stl"):
        hs.load_scene(MISSING_MESH_XML)


def test_unknown_scene_lists_bundled_ones(tmp_path):
    with pytest.raises(hs.SceneError, match="arm2"):
        hs.load_scene("no_such_scene")
    with pytest.raises(hs.SceneError, match="does not exist"):
        hs.load_scene(tmp_path / "nope.xml")


@pytest.mark.parametrize("backend", ["c", "mjx"])
def test_ctrl_shape_and_dtype_errors(backend, arm2_mjx):
    model = arm2_mjx if backend == "mjx" else hs.make_model("arm2", 4, backend="c", substeps=2)
    state = hs.init(model)
    with pytest.raises(hs.ShapeError, match=r"\(B, T, nu\) = \(4, T, 2\), got \(4, 10, 3\)"):
        hs.rollout(model, state, np.zeros((4, 10, 3)))
    with pytest.raises(hs.ShapeError, match=r"got \(3, 10, 2\)"):
        hs.rollout(model, state, np.zeros((3, 10, 2)))
    with pytest.raises(hs.ShapeError, match="floating-point"):
        hs.rollout(model, state, np.zeros((4, 10, 2), dtype=np.int64))
    with pytest.raises(hs.ShapeError, match=r"\(B, nu\)"):
        hs.step(model, state, np.zeros((4, 10, 2)))


@pytest.mark.parametrize("backend", ["c", "mjx"])
def test_nonfinite_ctrl_flags_only_that_world(backend, arm2_mjx):
    model = arm2_mjx if backend == "mjx" else hs.make_model("arm2", 4, backend="c", substeps=2)
    ctrl = random_ctrl(model.scene, 4, 20)
    clean = hs.rollout(model, hs.init(model), ctrl)
    bad = ctrl.copy()
    bad[1, 5, 0] = np.nan
    bad[3, 0, 1] = np.inf
    traj = hs.rollout(model, hs.init(model), bad)
    status = np.asarray(traj.status)
    assert status.tolist() == [0, hs.Status.NONFINITE_CTRL, 0, hs.Status.NONFINITE_CTRL]
    qpos = np.asarray(traj.qpos)
    assert np.all(np.isfinite(qpos))
    np.testing.assert_array_equal(qpos[[0, 2]], np.asarray(clean.qpos)[[0, 2]])
    # World 1 took steps 0..4, then holds the state it had before the bad control.
    np.testing.assert_array_equal(qpos[1, :6], np.asarray(clean.qpos)[1, :6])
    assert np.all(qpos[1, 6:] == qpos[1, 5])
    assert np.all(qpos[3] == qpos[3, 0])


@pytest.mark.parametrize("backend", ["c", "mjx"])
def test_diverging_world_is_flagged_held_and_resettable(backend):
    model = hs.make_model(EXPLODING_XML, 3, backend=backend, max_qvel=1e3)
    ctrl = np.zeros((3, 30, 1))
    ctrl[1] = 1.0  # only world 1 is driven hard
    traj = hs.rollout(model, hs.init(model), ctrl)
    status = np.asarray(traj.status)
    assert status.tolist() == [0, hs.Status.DIVERGED, 0]
    assert np.all(np.isfinite(np.asarray(traj.qpos)))
    assert np.all(np.isfinite(np.asarray(traj.qvel)))
    state = hs.reset_worlds(model, traj.final)
    assert np.asarray(state.status).tolist() == [0, 0, 0]
    np.testing.assert_array_equal(np.asarray(state.qpos)[1], model.scene.initial_state()[0])
    # The healthy worlds keep their state through the reset.
    np.testing.assert_array_equal(np.asarray(state.qpos)[0], np.asarray(traj.final.qpos)[0])


def test_flagged_world_is_not_advanced_until_reset():
    model = hs.make_model("arm2", 2, backend="c")
    state = hs.init(model)
    state = state.replace(status=np.array([0, hs.Status.DIVERGED], np.int32))
    traj = hs.rollout(model, state, np.ones((2, 10, 2)))
    assert np.all(traj.qpos[1] == traj.qpos[1, 0])
    assert np.any(traj.qpos[0, -1] != traj.qpos[0, 0])


def test_gradients_on_c_and_warp_are_refused():
    with pytest.raises(hs.BackendError, match="not differentiable"):
        hs.make_model("arm2", 1, backend="c", differentiable=True)
    with pytest.raises(hs.BackendError, match="not differentiable"):
        hs.make_model("arm2", 1, backend="warp", differentiable=True)
    model = hs.make_model("arm2", 1, backend="c")
    state = hs.init(model)
    with pytest.raises(hs.BackendError, match="cannot be traced"):
        jax.grad(lambda u: jnp.sum(hs.rollout(model, state, u).qpos))(jnp.zeros((1, 3, 2)))
    mjx_model = hs.make_model("pusher", 1, backend="mjx")
    with pytest.raises(hs.BackendError, match="differentiable=True"):
        jax.grad(lambda u: jnp.sum(hs.rollout(mjx_model, hs.init(mjx_model), u).qpos))(
            jnp.zeros((1, 3, 2))
        )
    with pytest.raises(hs.BackendError, match="unknown backend"):
        hs.make_model("arm2", 1, backend="physx")


def test_auto_backend_resolution():
    assert hs.resolve_backend("auto", differentiable=True) == "mjx"
    assert hs.resolve_backend("auto") == "c"  # no CUDA device in the test environment
    assert hs.make_model("arm2", 1).backend == "c"


def test_gradient_through_contact_steps_is_finite():
    """Gradient of the pusher's box position w.r.t. the finger controls, through contacts."""
    model = hs.make_model("pusher", 1, backend="auto", differentiable=True)
    assert model.backend == "mjx"
    state = hs.init(model)

    def loss(u):
        traj = hs.rollout(model, state, u)
        return jnp.sum(traj.qpos[:, -1] ** 2)

    u = jnp.asarray(random_ctrl(model.scene, 1, 20, seed=3), jnp.float32)
    g = jax.grad(loss)(u)
    assert g.shape == u.shape
    assert bool(jnp.all(jnp.isfinite(g)))
    assert float(jnp.abs(g).max()) > 0


def test_gradient_matches_finite_difference_on_smooth_scene():
    model = hs.make_model("arm2", 4, backend="mjx", substeps=2, differentiable=True)
    state = hs.init(model)

    def loss(u):
        return jnp.sum(hs.rollout(model, state, u).qpos[:, -1, 0])

    u = jnp.full((4, 10, 2), 0.3, jnp.float32)
    g = np.asarray(jax.grad(loss)(u))
    eps = 1e-2
    du = np.zeros((4, 10, 2), np.float32)
    du[0, 2, 0] = eps
    fd = (float(loss(u + du)) - float(loss(u - du))) / (2 * eps)
    # float32 central difference: agree to a few percent.
    np.testing.assert_allclose(g[0, 2, 0], fd, rtol=5e-2, atol=1e-4)


def test_initial_state_shape_error():
    model = hs.make_model("arm2", 2, backend="c")
    with pytest.raises(hs.ShapeError, match="qpos"):
        hs.init(model, qpos=np.zeros(5))
    with pytest.raises(hs.ShapeError, match="dof_damping"):
        hs.world_params("arm2", 2, dof_damping=np.zeros((3, 7)))
    with pytest.raises(hs.ShapeError, match="cannot vary per world"):
        hs.world_params("arm2", 2, geom_type=np.zeros((2, 1)))


def test_a_scene_mjx_cannot_collide_is_a_backend_error():
    xml = """<mujoco><worldbody>
      <geom type="box" size="1 1 0.1"/>
      <body pos="0 0 0.5"><freejoint/><geom type="cylinder" size="0.1 0.1"/></body>
    </worldbody></mujoco>"""
    with pytest.raises(hs.BackendError, match="cannot run this scene.*convex_hull"):
        hs.make_model(xml, 1, backend="mjx")
