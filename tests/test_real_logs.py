"""Real-log shapes of data in every consumer: episodes of different lengths, a frame
period that is not a whole multiple of the scene's timestep, joints the log does not
record (hybridsim._src.io's optional keys)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hybridsim as hs
from hybridsim import residual, synthetic_reality
from hybridsim._src.residual import data as rdata
from hybridsim._src.residual.evaluate import evaluate, rollout_rmse_per_entry


@pytest.fixture(scope="module")
def rec30():
    """arm2 reality at 30 Hz (not a multiple of its 5 ms timestep), lengths 20..40."""
    effects = synthetic_reality.parse_effects("default")
    return synthetic_reality.record(
        "arm2", effects, episodes=6, steps=40, seed=3, rate=30, min_steps=20
    )


def test_rate_and_lengths_are_recorded(rec30, tmp_path):
    assert rec30.control_dt == pytest.approx(1 / 30)
    assert rec30.substeps == 7 and rec30.timestep == pytest.approx(1 / 210)
    lens = rec30.episode_len
    assert lens.shape == (6,) and lens.min() >= 20 and lens.max() <= 40 and len(set(lens)) > 1
    i = int(np.argmin(lens))
    assert np.all(rec30.qpos[i, lens[i] :] == rec30.qpos[i, lens[i]])  # padded with the last
    path = hs.save_trajectory(tmp_path / "r.npz", rec30)
    data = hs.load_trajectory(path, hs.load_scene("arm2"))
    np.testing.assert_array_equal(data["episode_len"], lens)
    assert int(data["substeps"]) == 7


def test_padding_is_never_read(rec30):
    scene = hs.load_scene("arm2")
    ep = residual.episodes_from(vars(rec30))
    garbage = ep.qpos.copy(), ep.qvel.copy(), ep.ctrl.copy()
    for i, n in enumerate(ep.length):
        garbage[0][i, n + 1 :] = 1e3
        garbage[1][i, n + 1 :] = -1e3
        garbage[2][i, n:] = 7.0
    other = dataclasses.replace(ep, qpos=garbage[0], qvel=garbage[1], ctrl=garbage[2])
    for h in (1, 10):
        assert evaluate(scene, other, h) == evaluate(scene, ep, h)
    w = rdata.cut_windows(other, 8, 2)
    assert w.num == sum(len(range(0, n - 8 + 1, 4)) for n in ep.length)
    assert np.abs(w.qpos).max() < 1e3 and np.abs(w.ctrl).max() < 7.0


def test_windows_cover_every_episode(rec30):
    ep = residual.episodes_from(vars(rec30))
    e, s = rdata.window_starts(ep, 15, 15)
    assert set(e.tolist()) == set(range(ep.num))  # even the shortest episode has windows
    assert np.all(s + 15 <= ep.length[e])
    with pytest.raises(hs.DataFileError, match="longest episode"):
        evaluate(hs.load_scene("arm2"), ep, int(ep.length.max()) + 1)


def test_physics_steps_at_the_data_timestep(rec30):
    """The nominal model at the data's timestep reproduces an effect-free reality exactly;
    at the scene's own timestep it could not even be stepped (30 Hz is 6.67 x 5 ms)."""
    clean = synthetic_reality.record(
        "arm2", synthetic_reality.Effects(), episodes=2, steps=20, seed=0, rate=30
    )
    scene = hs.load_scene("arm2")
    ep = residual.episodes_from(vars(clean))
    assert evaluate(scene, ep, 10)["rollout_rmse"] < 1e-9
    with pytest.raises(hs.DataFileError, match="hybridsim data import"):
        rdata.stepping(scene, dataclasses.replace(ep, timestep=None))


def test_fit_at_the_data_timestep_and_where_it_is_used(rec30, tmp_path):
    scene = hs.load_scene("arm2")
    config = residual.FitConfig(
        residual=residual.ResidualConfig(hidden=(16,)), one_step_iters=30, multi_step_iters=0
    )
    fitted = residual.fit(scene, residual.episodes_from(vars(rec30)), config, tmp_path)
    assert fitted.timestep == pytest.approx(1 / 210) and fitted.substeps == 7
    assert fitted.residual.dims.timestep == pytest.approx(1 / 210)
    loaded = residual.load_fitted(tmp_path, scene)
    assert loaded.substeps == 7 and loaded.residual.dims.timestep == pytest.approx(1 / 210)
    # The hybrid refuses a model stepped at the scene's own timestep ...
    nominal = hs.make_model(scene, 2, backend="c", substeps=7)
    with pytest.raises(hs.ShapeError, match="with_timestep"):
        residual.hybrid_rollout(nominal, loaded.residual, hs.init(nominal), np.zeros((2, 3, 2)))
    # ... and runs at the fitted one.
    model = hs.make_model(scene.with_timestep(loaded.timestep), 2, backend="c", substeps=7)
    out = residual.hybrid_rollout(model, loaded.residual, hs.init(model), np.zeros((2, 3, 2)))
    assert np.isfinite(np.asarray(out.traj.qpos)).all()
    # Environments take the timestep from the fitted model; the control period must match.
    from hybridsim import envs

    env = envs.make("Reach", residual_dir=str(tmp_path), substeps=7)
    assert env.scene.timestep == pytest.approx(1 / 210) and env.control_dt == pytest.approx(1 / 30)
    with pytest.raises(hs.ShapeError, match="substeps=7"):
        envs.make("Reach", residual_dir=str(tmp_path))
    with pytest.raises(envs.EnvError, match="fitted at"):
        envs.make("Reach", residual_dir=str(tmp_path), substeps=7, timestep=0.005)


def test_unobserved_joints_are_not_scored_nor_corrected(tmp_path):
    """A robot-only log of the pusher (its puck not recorded): the residual acts on the
    robot's joints only and the puck's entries are never scored."""
    scene = hs.load_scene("pusher")
    rec = synthetic_reality.record(
        scene, synthetic_reality.parse_effects("default"), episodes=4, steps=30, seed=0, substeps=2
    )
    ep = residual.episodes_from(vars(rec))
    m = scene.mj_model
    from hybridsim._src.datasets.names import joint_of_qpos, joint_of_qvel

    free = [j for j in range(m.njnt) if m.jnt_type[j] == 0]
    qobs = np.array([j not in free for j in joint_of_qpos(m)])
    vobs = np.array([j not in free for j in joint_of_qvel(m)])
    q0 = scene.initial_state()[0]
    qpos = np.where(qobs, ep.qpos, q0)  # what an importer writes: held at the keyframe
    qvel = np.where(vobs, ep.qvel, 0.0)
    robot_only = dataclasses.replace(
        ep, qpos=qpos, qvel=qvel, qpos_observed=qobs, qvel_observed=vobs
    )
    from hybridsim._src.datasets.names import joint_name

    missing = rdata.unobserved_joints(scene, robot_only)
    assert missing == [joint_name(m, j) for j in free]
    per = rollout_rmse_per_entry(scene, robot_only, 10)
    assert np.isnan(per[~qobs]).all() and np.isfinite(per[qobs]).all()
    config = residual.FitConfig(
        residual=residual.ResidualConfig(hidden=(16,)), one_step_iters=20, multi_step_iters=0
    )
    fitted = residual.fit(scene, robot_only, config, tmp_path)
    assert set(fitted.residual.config.dofs) == set(rdata.observed_joints(scene, robot_only))
    assert not set(fitted.residual.config.dofs) & set(missing)
    with pytest.raises(hs.HybridsimError, match="pure-neural"):
        residual.fit(
            scene,
            robot_only,
            dataclasses.replace(config, residual=residual.ResidualConfig(kind="neural")),
            tmp_path / "n",
        )


def test_export_then_import_gives_the_recording_back(rec30, tmp_path):
    """LeRobot export then import round-trips states, velocities, controls, lengths and
    timing (as float32); positions only, the velocities are estimated."""
    pytest.importorskip("pyarrow")
    from hybridsim import data

    scene = hs.load_scene("arm2")
    data.export_lerobot(vars(rec30), scene, tmp_path / "full")
    back = data.import_dataset(tmp_path / "full", scene).arrays
    lens = rec30.episode_len
    np.testing.assert_array_equal(back["episode_len"], lens)
    assert int(back["substeps"]) == rec30.substeps
    assert float(back["timestep"]) == pytest.approx(rec30.timestep)
    for i, n in enumerate(lens):
        np.testing.assert_allclose(back["qpos"][i, : n + 1], rec30.qpos[i, : n + 1], atol=1e-5)
        np.testing.assert_allclose(back["qvel"][i, : n + 1], rec30.qvel[i, : n + 1], atol=1e-4)
        np.testing.assert_allclose(back["ctrl"][i, :n], rec30.ctrl[i, :n], atol=1e-6)
    data.export_lerobot(
        vars(rec30), scene, tmp_path / "pos", data.ExportConfig(positions_only=True)
    )
    imported = data.import_dataset(tmp_path / "pos", scene)
    assert "estimated" in imported.report.velocity
    est = imported.arrays["qvel"]
    i = int(np.argmax(lens))
    err = est[i, 1 : lens[i]] - rec30.qvel[i, 1 : lens[i]]
    assert np.sqrt(np.mean(err**2)) < 0.1 * np.sqrt(np.mean(rec30.qvel[i] ** 2))
