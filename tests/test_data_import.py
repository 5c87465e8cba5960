"""``hybridsim data import``: LeRobot v3, robomimic HDF5 and .npz into the interchange .npz."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest

import hybridsim as hs
from hybridsim import data as hsdata
from hybridsim._src.cli.main import main
from hybridsim._src.io import load_trajectory
from hybridsim.data import ImportConfig, estimate_qvel, import_dataset, write_imported

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SHARED = Path(
    os.environ.get("HYBRIDSIM_TEST_SHARED", Path(__file__).resolve().parents[1].parent / "shared")
)
ARM2 = SHARED / "data" / "lerobot_arm2_small"
needs_shared = pytest.mark.skipif(not ARM2.is_dir(), reason="shared/data is not beside the repo")
DATA_FILE = Path("data/chunk-000/file-000.parquet")


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["data", "import", *map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return rc, out, err


def write_lerobot(
    folder: Path,
    episodes: list[dict[str, np.ndarray]],
    feature_names: dict[str, list[str] | None],
    fps: float = 30.0,
    files: int = 1,
) -> Path:
    """A minimal LeRobot v3 folder (info.json + data files, no meta/episodes); episode
    ``i`` holds ``episodes[i][key] (L, d)`` for every key of ``feature_names``."""
    features = {
        k: {"dtype": "float32", "shape": [episodes[0][k].shape[1]], "names": n}
        for k, n in feature_names.items()
    }
    for k in ("frame_index", "episode_index", "index", "task_index"):
        features[k] = {"dtype": "int64", "shape": [1], "names": None}
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    info = {"codebase_version": "v3.0", "fps": fps, "features": features}
    (folder / "meta").mkdir(parents=True)
    (folder / "meta" / "info.json").write_text(json.dumps(info))
    groups = np.array_split(np.arange(len(episodes)), files)
    for f, group in enumerate(groups):
        cols: dict[str, list] = {k: [] for k in features}
        for i in group:
            n = len(next(iter(episodes[i].values())))
            for k in feature_names:
                cols[k].extend(episodes[i][k].astype(np.float32).tolist())
            cols["frame_index"].extend(range(n))
            cols["episode_index"].extend([int(i)] * n)
            cols["index"].extend(range(n))
            cols["task_index"].extend([0] * n)
            cols["timestamp"].extend((np.arange(n) / fps).tolist())
        path = folder / f"data/chunk-{f:03d}/file-000.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.table(cols), path)
    return folder


# ---------------------------------------------------------------- the shared LeRobot dataset


@needs_shared
def test_shared_arm2_dataset_imports_with_names_out_of_mjcf_order(tmp_path, capsys):
    out = tmp_path / "arm2.npz"
    rc, stdout, err = _cli(capsys, ARM2, "--scene", "arm2", "--out", out)
    assert rc == 0, err
    assert "wrote" in stdout and "7 substeps" in stdout
    scene = hs.load_scene("arm2")
    data = load_trajectory(out, scene)
    meta = pq.read_table(ARM2 / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    frames = np.array(meta["length"])
    assert len(frames) == 6 and frames.min() >= 60 and frames.max() <= 119
    np.testing.assert_array_equal(data["episode_len"], frames - 1)
    assert data["qpos"].shape == (6, frames.max(), 2)
    assert float(data["timestep"]) == pytest.approx(1 / 30 / 7, rel=1e-12)
    assert int(data["substeps"]) == 7
    assert float(data["control_dt"]) == pytest.approx(1 / 30, rel=1e-12)
    assert data["qpos_observed"].all() and data["qvel_observed"].all()
    # The dataset's names are ["elbow", "shoulder"]; the MJCF's order is shoulder, elbow.
    rows = pq.read_table(ARM2 / DATA_FILE).to_pydict()
    ep = np.array(rows["episode_index"])
    state = np.array(rows["observation.state"])[ep == 3]
    action = np.array(rows["action"])[ep == 3]
    elbow = hsdata.qpos_names(scene.mj_model).index("elbow")
    elbow_act = hsdata.actuator_names(scene.mj_model).index("elbow")
    n = len(state)
    np.testing.assert_array_equal(data["qpos"][3, :n, elbow], state[:, 0].astype(np.float64))
    np.testing.assert_array_equal(data["qpos"][3, :n, 1 - elbow], state[:, 1])
    np.testing.assert_array_equal(data["ctrl"][3, : n - 1, elbow_act], action[:-1, 0])
    # padding repeats the last valid value
    np.testing.assert_array_equal(
        data["qpos"][3, n:], np.repeat(data["qpos"][3, n - 1 : n], 111 - n, 0)
    )
    info = json.loads(str(data["import_info"]))
    assert info["format"] == "LeRobot v3.0" and info["timing"]["substeps"] == 7
    assert "central differences" in info["velocity"]


@needs_shared
def test_python_api_matches_the_cli_and_refuses_writing_into_the_input(tmp_path):
    imported = import_dataset(ARM2, "arm2")
    assert imported.report.episodes == 6 and imported.report.timing.substeps == 7
    assert any("elbow" in line for line in imported.report.lines())
    with pytest.raises(hs.DataFileError, match="input"):
        write_imported(imported, ARM2 / "out.npz")
    path = write_imported(imported, tmp_path / "a.npz")
    load_trajectory(path, hs.load_scene("arm2"))


# ---------------------------------------------------------------- options


def _arm2_episodes(rng, lengths=(40, 25), scale=1.0):
    eps = []
    for n in lengths:
        t = np.arange(n) / 30
        q = np.stack([np.sin(2 * t + 1), 0.5 * np.cos(3 * t)], axis=1)  # elbow, shoulder
        v = np.stack([2 * np.cos(2 * t + 1), -1.5 * np.sin(3 * t)], axis=1)
        eps.append(
            {
                "observation.state": q * scale,
                "observation.velocity": v * scale,
                "action": rng.uniform(-1, 1, (n, 2)),
            }
        )
    return eps


def test_degrees_and_velocity_feature_are_converted(tmp_path):
    eps = _arm2_episodes(np.random.default_rng(0), scale=180 / np.pi)
    src = write_lerobot(
        tmp_path / "ds",
        eps,
        {
            "observation.state": ["elbow", "shoulder"],
            "observation.velocity": ["elbow", "shoulder"],
            "action": ["elbow", "shoulder"],
        },
    )
    rad = import_dataset(src, "arm2", ImportConfig(units="deg"))
    assert rad.report.velocity == "feature 'observation.velocity'"
    q = rad.arrays["qpos"]
    np.testing.assert_allclose(
        q[0, :40, 1], eps[0]["observation.state"][:, 0] * np.pi / 180, rtol=1e-6
    )
    np.testing.assert_allclose(
        rad.arrays["qvel"][1, :25, 0], eps[1]["observation.velocity"][:, 1] * np.pi / 180, rtol=1e-6
    )
    np.testing.assert_array_equal(rad.arrays["episode_len"], [39, 24])
    same = import_dataset(src, "arm2")  # without --units deg the numbers are taken as radians
    np.testing.assert_allclose(
        same.arrays["qpos"][0, :40, 1], eps[0]["observation.state"][:, 0], rtol=1e-6
    )


def test_velocities_are_estimated_without_a_velocity_feature(tmp_path):
    eps = _arm2_episodes(np.random.default_rng(1))
    for e in eps:
        e.pop("observation.velocity")
    src = write_lerobot(
        tmp_path / "ds", eps, {"observation.state": ["elbow", "shoulder"], "action": None}
    )
    imported = import_dataset(src, "arm2")
    assert "central differences" in imported.report.velocity
    dt = 1 / 30
    # O(dt^2) bound of velocity.py: dt^2 * max|x'''|, x''' <= 8 (elbow) and 13.5 (shoulder)
    v = imported.arrays["qvel"][0, :40]
    true = np.stack(
        [-1.5 * np.sin(3 * np.arange(40) * dt), 2 * np.cos(2 * np.arange(40) * dt + 1)], 1
    )
    assert np.abs(v - true).max() < dt**2 * 13.5 + 1e-6  # + float32 storage


def test_joint_map_and_action_map(tmp_path, capsys):
    eps = _arm2_episodes(np.random.default_rng(2))
    src = write_lerobot(
        tmp_path / "ds",
        eps,
        {
            "observation.state": ["elbow_flex", "shoulder_pan"],
            "observation.velocity": ["shoulder_pan", "elbow_flex"],
            "action": ["m_elbow", "m_shoulder"],
        },
        files=2,
    )
    out = tmp_path / "o.npz"
    rc, _, err = _cli(capsys, src, "--scene", "arm2", "--out", out)
    assert rc == 2 and "match no joint entry" in err and not out.exists()
    rc, stdout, err = _cli(
        capsys,
        src,
        "--scene",
        "arm2",
        "--out",
        out,
        "--joint-map",
        "elbow_flex=elbow,shoulder_pan=shoulder",
        "--action-map",
        "m_elbow=elbow,m_shoulder=shoulder",
    )
    assert rc == 0, err
    assert (
        "elbow_flex -> elbow" in stdout and "velocities: feature 'observation.velocity'" in stdout
    )
    data = load_trajectory(out, hs.load_scene("arm2"))
    np.testing.assert_allclose(
        data["qpos"][1, :25, 0], eps[1]["observation.state"][:, 1], rtol=1e-6
    )
    np.testing.assert_allclose(data["ctrl"][0, :39, 1], eps[0]["action"][:39, 0], rtol=1e-6)
    # the velocity feature's names are mapped too ("shoulder_pan" first, like the MJCF)
    np.testing.assert_allclose(data["qvel"][0, :40], eps[0]["observation.velocity"], rtol=1e-6)


def _tabletop_log(rng, n=30, actions=None):
    scene = hs.load_scene("tabletop")
    joints = ["base_yaw", "shoulder", "elbow", "wrist_roll", "wrist_pitch", "wrist_yaw"]
    joints += ["finger_left", "finger_right"]
    actions = actions or joints[:-1]  # finger_left: the joint the "gripper" actuator drives
    ep = {
        "observation.state": rng.uniform(-0.2, 0.2, (n, len(joints))) * 0.01,
        "action": rng.uniform(-0.1, 0.1, (n, len(actions))),
        "observation.images.top": np.zeros((n, 1)),
    }
    return scene, joints, actions, ep


def test_robot_only_log_holds_free_objects_at_the_initial_state(tmp_path, capsys):
    scene, joints, actions, ep = _tabletop_log(np.random.default_rng(3))
    src = write_lerobot(
        tmp_path / "ds",
        [ep, ep],
        {"observation.state": joints, "action": actions, "observation.images.top": None},
    )
    out = tmp_path / "t.npz"
    rc, stdout, err = _cli(capsys, src, "--scene", "tabletop", "--out", out)
    assert rc == 0, err
    assert "not observed: cube (free), ball (free), rod (free)" in stdout
    assert "finger_left -> gripper" in stdout
    assert "ignored features: observation.images.top" in stdout
    data = load_trajectory(out, scene)
    m = scene.mj_model
    qn = hsdata.qpos_names(m)
    observed = np.array([n in joints for n in qn])
    np.testing.assert_array_equal(data["qpos_observed"], observed)
    vobs = [n in joints for n in hsdata.qvel_names(m)]
    np.testing.assert_array_equal(data["qvel_observed"], vobs)
    qpos0 = scene.initial_state()[0]
    np.testing.assert_array_equal(
        data["qpos"][:, :, ~observed], np.broadcast_to(qpos0[~observed], (2, 30, (~observed).sum()))
    )
    assert np.all(data["qvel"][:, :, ~data["qvel_observed"]] == 0)
    gripper = hsdata.actuator_names(m).index("gripper")
    np.testing.assert_allclose(data["ctrl"][0, :, gripper], ep["action"][:-1, 6], rtol=1e-6)
    assert float(data["timestep"]) == pytest.approx(1 / 30 / 17)  # 33.3 ms / 2 ms -> 17


def test_estimate_qvel_is_second_order_on_a_hinge_and_a_rotating_free_body():
    xml = """<mujoco><worldbody>
      <body><joint name="h" type="hinge"/><geom size=".1" mass="1"/></body>
      <body pos="1 0 0"><freejoint name="f"/><geom size=".1" mass="1"/></body>
    </worldbody></mujoco>"""
    m = mujoco.MjModel.from_xml_string(xml)
    axis = np.array([0.0, 0.6, 0.8])

    def state(t):
        theta = 0.5 * np.sin(3 * t)  # free body: rotation angle about a fixed axis
        quat = np.r_[np.cos(theta / 2), np.sin(theta / 2) * axis]
        q = np.r_[np.sin(2 * t), np.sin(2 * t), 0.3 * np.cos(t), 1.0, quat]
        v = np.r_[
            2 * np.cos(2 * t), 2 * np.cos(2 * t), -0.3 * np.sin(t), 0.0, 1.5 * np.cos(3 * t) * axis
        ]
        return q, v

    # third derivatives: 8 (sin 2t), 0.3 (cos t), 13.5 (angle 0.5 sin 3t)
    jerk = np.array([8, 8, 0.3, 0, 13.5, 13.5, 13.5])
    errors = []
    for dt in (0.02, 0.01):
        t = np.arange(60) * dt
        q, v = (np.stack(x) for x in zip(*(state(s) for s in t), strict=True))
        err = np.abs(estimate_qvel(m, q, dt) - v)
        assert np.all(err[1:-1] <= dt**2 * jerk / 6 + 1e-9)  # central differences
        assert np.all(err[[0, -1]] <= dt**2 * jerk + 1e-9)  # one-sided ends
        errors.append(err.max())
    assert errors[1] < errors[0] / 3.5  # halving dt quarters the error: O(dt^2)


# ---------------------------------------------------------------- other sources


def _robomimic(path: Path, rng, control_freq: float | None = 20.0, demos=("demo_1", "demo_0")):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        if control_freq is not None:
            data.attrs["env_args"] = json.dumps({"env_kwargs": {"control_freq": control_freq}})
        for i, d in enumerate(demos):
            n = 20 + 5 * i
            data.create_dataset(f"{d}/obs/robot0_joint_pos", data=rng.uniform(-1, 1, (n, 2)))
            data.create_dataset(f"{d}/obs/object", data=rng.uniform(-1, 1, (n, 3)))
            data.create_dataset(f"{d}/actions", data=rng.uniform(-1, 1, (n, 2)))
            data.create_dataset(f"{d}/rewards", data=np.zeros(n))
    return path


def test_robomimic_hdf5(tmp_path, capsys):
    src = _robomimic(tmp_path / "demos.hdf5", np.random.default_rng(4))
    out = tmp_path / "r.npz"
    rc, stdout, err = _cli(
        capsys, src, "--scene", "arm2", "--out", out, "--state", "obs/robot0_joint_pos"
    )
    assert rc == 0, err
    assert "20 Hz" in stdout and "ignored features: obs/object, rewards" in stdout
    data = load_trajectory(out, hs.load_scene("arm2"))
    np.testing.assert_array_equal(data["episode_len"], [24, 19])  # demo_0 (25 frames) first
    assert int(data["substeps"]) == 10
    import h5py

    with h5py.File(src) as f:
        pos = f["data/demo_1/obs/robot0_joint_pos"][()]
        act = f["data/demo_1/actions"][()]
    np.testing.assert_array_equal(data["qpos"][1, :20], pos)  # positional: MJCF order
    np.testing.assert_array_equal(data["ctrl"][1, :19], act[:-1])
    swapped = import_dataset(
        src, "arm2", ImportConfig(state_key="robot0_joint_pos", state_names=("elbow", "shoulder"))
    )
    np.testing.assert_array_equal(swapped.arrays["qpos"][1, :20], pos[:, ::-1])


def test_npz_source_gets_timing_and_keeps_its_keys(tmp_path):
    n, t = 2, 6
    src = tmp_path / "in.npz"
    np.savez(
        src,
        qpos=np.zeros((n, t + 1, 2)),
        qvel=np.zeros((n, t + 1, 2)),
        ctrl=np.ones((n, t, 2)),
        control_dt=np.asarray(1 / 30),
        time=np.zeros((n, t + 1)),
    )
    imported = import_dataset(src, "arm2")
    a = imported.arrays
    assert int(a["substeps"]) == 7 and float(a["timestep"]) == pytest.approx(1 / 210)
    np.testing.assert_array_equal(a["episode_len"], [t, t])
    assert a["qpos_observed"].all() and "time" in a
    out = write_imported(imported, tmp_path / "out.npz")
    load_trajectory(out, hs.load_scene("arm2"))
    with pytest.raises(hs.DataFileError, match="do not apply"):
        import_dataset(src, "arm2", ImportConfig(units="deg"))


# ---------------------------------------------------------------- bad input


def _copy(tmp_path) -> Path:
    if not ARM2.is_dir():
        pytest.skip("shared/data is not beside the repo")
    dst = tmp_path / "ds"
    shutil.copytree(ARM2, dst)
    return dst


def _edit_info(ds: Path, edit) -> None:
    info = json.loads((ds / "meta/info.json").read_text())
    edit(info)
    (ds / "meta/info.json").write_text(json.dumps(info))


def _edit_table(ds: Path, edit) -> None:
    table = pq.read_table(ds / DATA_FILE)
    pq.write_table(edit(table), ds / DATA_FILE)


def _set_state(table, row: int, value: float):
    state = np.array(table.column("observation.state").to_pylist(), dtype=np.float32)
    state[row, 1] = value
    col = pa.FixedSizeListArray.from_arrays(pa.array(state.ravel()), 2)
    return table.set_column(
        table.schema.get_field_index("observation.state"), "observation.state", col
    )


def _set_timestamp(table, row: int, value: float):
    ts = np.array(table.column("timestamp").to_pylist(), dtype=np.float32)
    ts[row] = value
    return table.set_column(table.schema.get_field_index("timestamp"), "timestamp", pa.array(ts))


def _break_names(ds):
    _edit_info(ds, lambda i: i["features"]["observation.state"].update(names=["elbo", "shoulder"]))


def _break_version(ds):
    _edit_info(ds, lambda i: i.update(codebase_version="v2.1"))


def _break_empty(ds):
    _edit_table(ds, lambda t: t.slice(0, 0))
    shutil.rmtree(ds / "meta/episodes")


def _break_corrupt(ds):
    raw = (ds / DATA_FILE).read_bytes()
    (ds / DATA_FILE).write_bytes(raw[: len(raw) // 2])


def _break_info_json(ds):
    (ds / "meta/info.json").write_text("{not json")


BAD = {
    "missing feature": (lambda ds: None, ["--state", "observation.joints"], "observation.joints"),
    "names": (_break_names, [], "'elbo'"),
    "nan": (
        lambda ds: _edit_table(ds, lambda t: _set_state(t, 5, np.nan)),
        [],
        "episode 0, frame 5",
    ),
    "inf": (lambda ds: _edit_table(ds, lambda t: _set_state(t, 200, np.inf)), [], "frame"),
    "timestamp gap": (
        lambda ds: _edit_table(ds, lambda t: _set_timestamp(t, 7, 7.5 / 30)),
        [],
        "episode 0, frame 7",
    ),
    "corrupt parquet": (_break_corrupt, [], "not a readable parquet"),
    "codebase v2": (_break_version, [], "v2.1"),
    "empty": (_break_empty, [], "empty dataset"),
    "no info.json": (lambda ds: (ds / "meta/info.json").unlink(), [], "no meta/info.json"),
    "invalid info.json": (_break_info_json, [], "not valid JSON"),
    "unknown action map": (lambda ds: None, ["--action-map", "wrist=elbow"], "'wrist'"),
    "bad map syntax": (lambda ds: None, ["--joint-map", "elbow"], "--joint-map"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_lerobot_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    breaker, extra, expect = BAD[case]
    ds = _copy(tmp_path)
    breaker(ds)
    out = tmp_path / "out" / "data.npz"
    rc, stdout, err = _cli(capsys, ds, "--scene", "arm2", "--out", out, *extra)
    assert rc == 2, (stdout, err)
    assert err.count("\n") == 1 and expect in err, err
    assert not out.exists() and not list(tmp_path.glob("out/.*"))


def test_v2_message_says_how_to_convert(tmp_path, capsys):
    ds = _copy(tmp_path)
    _break_version(ds)
    _, _, err = _cli(capsys, ds, "--scene", "arm2", "--out", tmp_path / "o.npz")
    assert "v3.x" in err and "converter" in err


def test_bad_mapping_and_output_paths(tmp_path, capsys):
    rng = np.random.default_rng(5)
    scene, joints, actions, ep = _tabletop_log(rng, actions=["base_yaw", "shoulder"])
    ds = write_lerobot(tmp_path / "ds", [ep], {"observation.state": joints, "action": actions})
    out = tmp_path / "o.npz"
    rc, _, err = _cli(capsys, ds, "--scene", "tabletop", "--out", out)
    assert rc == 2 and "have no action" in err and "'gripper'" in err and not out.exists()
    pusher_ep = {"observation.state": rng.normal(size=(10, 3)), "action": rng.normal(size=(10, 2))}
    ds2 = write_lerobot(
        tmp_path / "ds2",
        [pusher_ep],
        {
            "observation.state": ["finger_x", "finger_y", "box.x"],
            "action": ["finger_x", "finger_y"],
        },
    )
    rc, _, err = _cli(capsys, ds2, "--scene", "pusher", "--out", out)
    assert rc == 2 and "partially observed" in err and "box.qw" in err and not out.exists()
    rc, _, err = _cli(capsys, ds2, "--scene", "pusher", "--out", ds2 / "x.npz")
    assert rc == 2 and "into the input" in err and not (ds2 / "x.npz").exists()
    (tmp_path / "adir.npz").mkdir()
    rc, _, err = _cli(capsys, ds2, "--scene", "pusher", "--out", tmp_path / "adir.npz")
    assert rc == 2 and "not a regular file" in err


def test_bad_hdf5_input(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    empty = tmp_path / "e.hdf5"
    with h5py.File(empty, "w") as f:
        f.create_group("data")
    out = tmp_path / "o.npz"
    rc, _, err = _cli(capsys, empty, "--scene", "arm2", "--out", out)
    assert rc == 2 and "data/demo_*" in err and not out.exists()
    norate = _robomimic(tmp_path / "n.hdf5", np.random.default_rng(6), control_freq=None)
    rc, _, err = _cli(
        capsys, norate, "--scene", "arm2", "--out", out, "--state", "robot0_joint_pos"
    )
    assert rc == 2 and "--fps" in err and not out.exists()
    rc, _, err = _cli(capsys, norate, "--scene", "arm2", "--out", out, "--fps", "20")
    assert rc == 2 and "'observation.state'" in err and "obs/robot0_joint_pos" in err
    rc, _, err = _cli(
        capsys, norate, "--scene", "arm2", "--out", out, "--fps", "20", "--state", "obs/object"
    )
    assert rc == 2 and "--state-names" in err and not out.exists()


def test_short_episodes_are_skipped_and_slides_and_free_joints_keep_their_units(tmp_path):
    rng = np.random.default_rng(7)
    state = ["finger_x", "finger_y", "box.x", "box.y", "box.z", "box.qw", "box.qx", "box.qy"]
    state += ["box.qz"]
    box = np.tile([0.1, 0.2, 0.05, 1.0, 0.0, 0.0, 0.0], (12, 1))
    long = {
        "observation.state": np.c_[rng.uniform(-0.1, 0.1, (12, 2)), box],
        "action": rng.normal(size=(12, 2)),
    }
    short = {k: v[:1] for k, v in long.items()}
    src = write_lerobot(
        tmp_path / "ds", [short, long], {"observation.state": state, "action": state[:2]}
    )
    imported = import_dataset(src, "pusher", ImportConfig(units="deg"))
    report = imported.report
    assert report.episodes == 1 and report.skipped == ("episode 0 (1 frame)",)
    assert report.unobserved == () and "skipped episodes: episode 0 (1 frame)" in report.lines()
    a = imported.arrays
    assert a["qpos_observed"].all() and a["qvel_observed"].all()
    np.testing.assert_allclose(a["qpos"][0], long["observation.state"], rtol=1e-6)  # no deg
    np.testing.assert_allclose(a["qvel"][0, :, 2:], 0.0, atol=1e-6)  # the box is at rest
