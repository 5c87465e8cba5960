"""The learned residual: zero residual equals physics, fitting closes a gap, resumable fits."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hybridsim as hs
from hybridsim import residual, synthetic_reality
from hybridsim._src.cli.main import main
from hybridsim._src.residual import model as rmodel

# An untrained hybrid runs the same physics: on MuJoCo C the state path is float64 and exact.
ZERO_RESIDUAL_C_ATOL = 1e-12
# On MJX the hybrid adds a (zero) qfrc_applied / correction inside the same jitted program.
ZERO_RESIDUAL_MJX_ATOL = 1e-6
# A fitted arm2 residual over 10 control steps with bfloat16 hidden matmuls (rad).
BF16_QPOS_ATOL = 1e-3


@pytest.fixture(scope="module")
def arm2_data():
    """A small 'reality' on arm2: heavier links, latency and Coulomb friction."""
    scene = hs.load_scene("arm2")
    effects = synthetic_reality.parse_effects("latency=1,coulomb=0.1,mass_scale=1.3")
    train = synthetic_reality.record(scene, effects, episodes=12, steps=60, seed=0, substeps=2)
    test = synthetic_reality.record(scene, effects, episodes=4, steps=60, seed=1, substeps=2)
    return scene, residual.episodes_from(vars(train)), residual.episodes_from(vars(test))


@pytest.mark.parametrize("kind", ["force", "state"])
@pytest.mark.parametrize("backend", ["c", "mjx"])
def test_untrained_hybrid_equals_physics(kind, backend):
    # pusher on c (contacts, fast); arm2 on mjx (compiles quickly on the CPU)
    model = hs.make_model("pusher" if backend == "c" else "arm2", 2, backend=backend, substeps=2)
    ctrl = np.random.default_rng(0).uniform(-1, 1, (2, 15, model.scene.nu))
    plain = hs.rollout(model, hs.init(model), ctrl)
    res = residual.init_residual(
        model.scene, residual.ResidualConfig(kind=kind, ensemble=2, hidden=(16,)), model.control_dt
    )
    out = residual.hybrid_rollout(model, res, hs.init(model), ctrl)
    tol = ZERO_RESIDUAL_C_ATOL if backend == "c" else ZERO_RESIDUAL_MJX_ATOL
    np.testing.assert_allclose(np.asarray(out.traj.qpos), np.asarray(plain.qpos), atol=tol, rtol=0)
    assert np.asarray(out.uncertainty).shape == (2,)
    assert np.all(np.asarray(out.uncertainty) == 0)


def test_residual_rejects_another_scene():
    res = residual.init_residual(hs.load_scene("arm2"), residual.ResidualConfig(), 0.01)
    model = hs.make_model("cartpole", 1, backend="c")
    with pytest.raises(hs.ShapeError, match="nq=2, nv=2, nu=2"):
        residual.hybrid_rollout(model, res, hs.init(model), np.zeros((1, 3, 1)))


def test_fit_closes_the_gap_and_round_trips(arm2_data, tmp_path):
    scene, train, test = arm2_data
    config = residual.FitConfig(
        residual=residual.ResidualConfig(kind="force", hidden=(64, 64), ensemble=2),
        one_step_iters=400,
        multi_step_iters=0,
        eval_every=100,
        seed=0,
    )
    fitted = residual.fit(scene, train, config, tmp_path / "run")
    physics = residual.evaluate(scene, test, 20)
    hybrid = residual.evaluate(scene, test, 20, fitted.residual)
    assert hybrid["one_step_nmse"] < 0.5 * physics["one_step_nmse"]
    assert hybrid["rollout_rmse"] < 0.7 * physics["rollout_rmse"]
    again = residual.load_fitted(tmp_path / "run", scene)
    assert residual.evaluate(scene, test, 20, again.residual) == hybrid
    # The two ensemble members disagree somewhere once trained.
    model = hs.make_model(scene, 2, backend="c", substeps=2)
    out = residual.hybrid_rollout(model, again.residual, hs.init(model), test.ctrl[:2, :10])
    assert np.all(np.asarray(out.uncertainty) > 0)
    assert not (tmp_path / "run" / "checkpoint").exists()
    # bfloat16 hidden matmuls (inference only) change the rollout a little, not a lot.
    f32 = residual.hybrid_rollout(model, again.residual, hs.init(model), test.ctrl[:2, :10])
    bf16 = residual.hybrid_rollout(
        model, again.residual, hs.init(model), test.ctrl[:2, :10], precision="bfloat16"
    )
    diff = np.abs(np.asarray(bf16.traj.qpos) - np.asarray(f32.traj.qpos)).max()
    assert 0 < diff < BF16_QPOS_ATOL
    with pytest.raises(hs.ShapeError, match="precision must be one of"):
        residual.hybrid_rollout(
            model, again.residual, hs.init(model), test.ctrl[:2], precision="fp8"
        )


def test_fit_keeps_the_zero_residual_when_training_does_not_beat_it(arm2_data, tmp_path):
    """Early stopping scores the starting point too: a fit whose training only makes the
    validation loss worse (here a learning rate that makes it diverge) returns the zero residual,
    which equals plain physics, rather than the least bad of its trained models."""
    scene, train, test = arm2_data
    config = residual.FitConfig(
        residual=residual.ResidualConfig(kind="force", hidden=(64, 64), ensemble=2),
        one_step_iters=300,
        multi_step_iters=0,
        eval_every=100,
        learning_rate=1e4,
        seed=0,
    )
    fitted = residual.fit(scene, train, config, tmp_path / "run")
    assert fitted.log[0]["step"] == 0
    assert all(e["val"] > fitted.log[0]["val"] for e in fitted.log[1:])
    model = hs.make_model(scene, 2, backend="c", substeps=2)
    state = hs.init(model)
    out = residual.hybrid_rollout(model, fitted.residual, state, test.ctrl[:2, :10])
    plain = hs.rollout(model, state, test.ctrl[:2, :10])
    np.testing.assert_allclose(out.traj.qpos, plain.qpos, atol=ZERO_RESIDUAL_C_ATOL)


def test_interrupted_fit_resumes_to_the_same_result(arm2_data, tmp_path):
    scene, train, _ = arm2_data
    config = residual.FitConfig(
        residual=residual.ResidualConfig(kind="state", hidden=(32,)),
        one_step_iters=300,
        multi_step_iters=0,
        eval_every=50,
        patience=100,
        seed=3,
    )
    whole = residual.fit(scene, train, config, tmp_path / "whole")

    class Interrupt(Exception):
        pass

    def stop_at_150(msg):
        if msg.startswith("one-step 150/"):
            raise Interrupt

    with pytest.raises(Interrupt):
        residual.fit(scene, train, config, tmp_path / "cut", progress=stop_at_150)
    assert (tmp_path / "cut" / "checkpoint").is_dir()
    lines = []
    resumed = residual.fit(scene, train, config, tmp_path / "cut", progress=lines.append)
    assert any(line.startswith("resuming from") for line in lines)
    for a, b in zip(
        jax.tree.leaves(whole.residual.params),
        jax.tree.leaves(resumed.residual.params),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoint_of_another_configuration_is_replaced_not_an_error(arm2_data, tmp_path):
    """An interrupted fit, then a fit into the same folder with another network size: the
    old checkpoint cannot be restored into the new shapes and is replaced."""
    scene, train, _ = arm2_data

    def config(hidden):
        return residual.FitConfig(
            residual=residual.ResidualConfig(hidden=hidden),
            one_step_iters=100,
            multi_step_iters=0,
            eval_every=50,
        )

    def stop_at_100(msg):
        if msg.startswith("one-step 100/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        residual.fit(scene, train, config((16,)), tmp_path / "run", progress=stop_at_100)
    lines = []
    fitted = residual.fit(scene, train, config((8, 8)), tmp_path / "run", progress=lines.append)
    assert any(line.startswith("replacing") for line in lines)
    assert fitted.residual.config.hidden == (8, 8)


def test_corrupt_checkpoint_is_a_clear_error(arm2_data, tmp_path):
    scene, train, _ = arm2_data
    config = residual.FitConfig(
        residual=residual.ResidualConfig(hidden=(16,)),
        one_step_iters=100,
        multi_step_iters=0,
        eval_every=50,
    )

    def stop_at_100(msg):
        if msg.startswith("one-step 100/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        residual.fit(scene, train, config, tmp_path / "run", progress=stop_at_100)
    damaged = [f for f in (tmp_path / "run" / "checkpoint").rglob("*") if f.is_file()]
    assert damaged
    for f in damaged:
        f.write_bytes(b"garbage")
    with pytest.raises(hs.DataFileError, match="checkpoint.*corrupt"):
        residual.fit(scene, train, config, tmp_path / "run")


def test_gradient_through_the_hybrid_on_mjx_is_finite():
    model = hs.make_model("arm2", 2, backend="mjx", substeps=2, differentiable=True)
    res = residual.init_residual(
        model.scene, residual.ResidualConfig(hidden=(16,)), model.control_dt
    )
    state = hs.init(model)
    ctrl = jnp.zeros((2, 6, model.scene.nu))

    def loss(params):
        out = residual.hybrid_rollout(model, res.replace(params=params), state, ctrl)
        return jnp.sum(out.traj.qpos[:, -1] ** 2)

    grads = jax.grad(loss)(res.params)
    leaves = [np.asarray(g) for g in jax.tree.leaves(grads)]
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert any(np.abs(g).max() > 0 for g in leaves)  # the zero last layer gets gradient


def test_cli_fit_and_eval(tmp_path, capsys):
    scene = hs.load_scene("arm2")
    eff = synthetic_reality.parse_effects("latency=1,mass_scale=1.3")
    for name, seed, n in (("train", 0, 6), ("test", 1, 3)):
        rec = synthetic_reality.record(scene, eff, episodes=n, steps=40, seed=seed, substeps=2)
        hs.save_trajectory(tmp_path / f"{name}.npz", rec)
    assert (
        main(
            [
                "residual",
                "fit",
                "--scene",
                "arm2",
                "--data",
                str(tmp_path / "train.npz"),
                "--out",
                str(tmp_path / "run"),
                "--hidden",
                "32",
                "32",
                "--iters",
                "200",
                "--multi-step-iters",
                "0",
                "--sysid",
                "dof_damping",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "residual",
                "eval",
                "--scene",
                "arm2",
                "--model",
                str(tmp_path / "run"),
                "--data",
                str(tmp_path / "test.npz"),
                "--horizon",
                "10",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"physics", "sysid", "hybrid", "gap_closure"}
    for key in ("physics", "sysid", "hybrid"):
        assert set(result[key]) == {"one_step_nmse", "rollout_rmse"}
    expected = 1 - result["hybrid"]["rollout_rmse"] / result["physics"]["rollout_rmse"]
    assert result["gap_closure"] == pytest.approx(expected)
    eval_args = ["residual", "eval", "--scene", "arm2", "--model", str(tmp_path / "run")]
    eval_args += ["--data", str(tmp_path / "test.npz"), "--horizon", "10", "--json"]
    assert main([*eval_args, "--precision", "bfloat16"]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert bf16["physics"] == result["physics"]
    assert bf16["hybrid"] != result["hybrid"]
    assert bf16["gap_closure"] == pytest.approx(result["gap_closure"], abs=0.02)
    assert main([*eval_args, "--adapt-steps", "10"]) == 0
    adapted = json.loads(capsys.readouterr().out)
    assert set(adapted["hybrid_adapted"]) == {"one_step_nmse", "rollout_rmse"}
    assert adapted["hybrid"] == result["hybrid"]


def test_eval_rejects_a_model_for_another_scene(tmp_path, arm2_data):
    scene, train, _ = arm2_data
    residual.fit(
        scene,
        train,
        residual.FitConfig(
            one_step_iters=5, multi_step_iters=0, residual=residual.ResidualConfig(hidden=(8,))
        ),
        tmp_path / "run",
    )
    with pytest.raises(hs.DataFileError, match="fitted for nq=2"):
        residual.load_fitted(tmp_path / "run", hs.load_scene("pusher"))


def test_identifying_a_field_that_is_zero_in_the_scene_is_refused(arm2_data, tmp_path):
    scene, train, _ = arm2_data
    assert not scene.mj_model.dof_frictionloss.any()
    config = residual.FitConfig(sysid=("dof_frictionloss",), sysid_only=True)
    with pytest.raises(hs.ShapeError, match="dof_frictionloss"):
        residual.fit(scene, train, config, tmp_path / "run")


def test_residual_dofs_select_outputs_and_features():
    scene = hs.load_scene("pusher")
    cfg = residual.ResidualConfig(hidden=(16,), dofs=("finger_x", "finger_y"))
    res = residual.init_residual(scene, cfg, 0.01)
    # finger qpos (2), finger qvel (2) and both controls, now and for 4 past steps
    assert res.dims.feature_dim == (2 + 2 + 2) * 5
    assert res.dims.vidx == (0, 1)
    with pytest.raises(hs.ShapeError, match="no joint 'elbow'.*finger_x"):
        residual.init_residual(scene, residual.ResidualConfig(dofs=("elbow",)), 0.01)
    with pytest.raises(hs.ShapeError, match="pure-neural"):
        residual.ResidualConfig(kind="neural", dofs=("finger_x",))


def test_fit_with_dofs_leaves_the_other_dofs_to_physics(tmp_path, capsys):
    """A residual restricted to the finger never pushes the free box itself."""
    scene = hs.load_scene("pusher")
    rec = synthetic_reality.record(
        scene, synthetic_reality.parse_effects("latency=1"), 4, 40, seed=0, substeps=2
    )
    hs.save_trajectory(tmp_path / "train.npz", rec)
    args = ["residual", "fit", "--scene", "pusher", "--data", str(tmp_path / "train.npz")]
    args += ["--out", str(tmp_path / "run"), "--hidden", "16", "--iters", "100"]
    args += ["--multi-step-iters", "0", "--dofs", "finger_x", "finger_y", "--quiet"]
    assert main(args) == 0
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["residual"]["dofs"] == ["finger_x", "finger_y"]
    fitted = residual.load_fitted(tmp_path / "run", scene)
    res = fitted.residual
    assert res.config.dofs == ("finger_x", "finger_y")
    scale = np.asarray(res.output_scale)
    assert np.all(scale[2:] == 0) and np.all(scale[:2] > 0)
    # the box's own state is not a feature: moving the box does not change the output
    rng = np.random.default_rng(0)
    q = np.tile(scene.mj_model.qpos0, (3, 1))
    q[:, :2] = rng.uniform(-0.2, 0.2, (3, 2))
    v = rng.normal(size=(3, scene.nv))
    u = rng.uniform(-0.3, 0.3, (3, scene.nu))
    hist = np.asarray(rmodel.initial_history(res, q, v))
    moved_q, moved_v = q.copy(), v.copy()
    moved_q[:, 2:4] += 0.1
    moved_v[:, 2:] += 1.0
    out = rmodel.apply(res, rmodel.features(res.dims, q, v, u, hist))
    out_moved = rmodel.apply(res, rmodel.features(res.dims, moved_q, moved_v, u, hist))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(out_moved))
    assert np.all(np.asarray(out)[..., 2:] == 0)


# Estimated mass scale against the truth, from 50 steps of cartpole motion (relative).
MASS_SCALE_RTOL = 0.05


def test_estimate_mass_scale_recovers_a_payload():
    scene = hs.load_scene("cartpole")
    for truth in (1.0, 1.5, 0.7):
        eff = synthetic_reality.parse_effects(f"mass_scale={truth}")
        rec = synthetic_reality.record(scene, eff, episodes=3, steps=50, seed=0, substeps=1)
        scale = residual.estimate_mass_scale(scene, residual.episodes_from(vars(rec)))
        assert scale.shape == (3,)
        np.testing.assert_allclose(scale, truth, rtol=MASS_SCALE_RTOL)
    with pytest.raises(hs.ShapeError, match="mass scale"):
        residual.mass_params(scene, np.array([1.0, -2.0]))


def test_adapted_rollouts_track_a_heavier_reality():
    """Windows after the first adapt to a 1.5x payload; the first has nothing to adapt on."""
    scene = hs.load_scene("cartpole")
    rec = synthetic_reality.record(
        scene, synthetic_reality.parse_effects("mass_scale=1.5"), 4, 100, 1, substeps=1
    )
    episodes = residual.episodes_from(vars(rec))
    plain = residual.rollout_rmse_per_entry(scene, episodes, 25)
    adapted = residual.rollout_rmse_per_entry(scene, episodes, 25, adapt_steps=25)
    # 3 of the 4 windows adapt (0.47x measured: the unadapted first window dominates)
    assert np.sqrt(np.mean(adapted**2)) < 0.7 * np.sqrt(np.mean(plain**2))
    with pytest.raises(hs.DataFileError, match="adapt_steps"):
        residual.evaluate(scene, episodes, 25, adapt_steps=-1)
    neural = residual.init_residual(
        scene, residual.ResidualConfig(kind="neural", hidden=(8,)), episodes.control_dt
    )
    with pytest.raises(hs.ShapeError, match="pure-neural model has none"):
        residual.rollout_rmse_per_entry(scene, episodes, 25, neural, adapt_steps=25)
