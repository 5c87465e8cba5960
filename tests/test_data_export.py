"""``hybridsim data export --format lerobot``: layout, content, video, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hybridsim import synthetic_reality as sr
from hybridsim._src.cli.main import main
from hybridsim._src.errors import DataFileError
from hybridsim.data import ExportConfig, export_lerobot, validate_lerobot

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

REPO = Path(__file__).resolve().parents[1]
LENS = np.array([10, 6, 8, 10])
PAD = 1e3  # written into the padding; must never show up in an export


@pytest.fixture(scope="module")
def traj(tmp_path_factory) -> Path:
    """4 episodes of arm2 (T = 10 control steps, episode_len 10, 6, 8, 10), scene named in
    reality_metadata, padding set to PAD."""
    rec = sr.record("arm2", sr.Effects(), episodes=4, steps=10, seed=0)
    qpos, qvel, ctrl = rec.qpos.copy(), rec.qvel.copy(), rec.ctrl.copy()
    for i, n in enumerate(LENS):
        qpos[i, n + 1 :], qvel[i, n + 1 :], ctrl[i, n:] = PAD, PAD, PAD
    path = tmp_path_factory.mktemp("traj") / "rec.npz"
    np.savez(
        path,
        qpos=qpos,
        qvel=qvel,
        ctrl=ctrl,
        control_dt=np.asarray(rec.control_dt),
        episode_len=LENS,
        reality_metadata=json.dumps(dict(rec.metadata)),
    )
    return path


def _read(root: Path) -> tuple[dict, dict, dict, dict]:
    info = json.loads((root / "meta/info.json").read_text())
    data = pq.read_table(root / "data/chunk-000/file-000.parquet").to_pydict()
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    stats = json.loads((root / "meta/stats.json").read_text())
    return info, data, episodes, stats


def _expected(traj: Path, qpos_idx=slice(None)) -> dict[str, np.ndarray]:
    """What the export must hold: T+1 frames per episode, the last action repeated."""
    z = np.load(traj)
    state, vel, act = [], [], []
    for i, n in enumerate(LENS):
        state.append(z["qpos"][i, : n + 1][:, qpos_idx])
        vel.append(z["qvel"][i, : n + 1][:, qpos_idx])
        act.append(np.concatenate([z["ctrl"][i, :n], z["ctrl"][i, n - 1 : n]]))
    return {
        "state": np.concatenate(state).astype(np.float32),
        "velocity": np.concatenate(vel).astype(np.float32),
        "action": np.concatenate(act).astype(np.float32),
        "lengths": LENS + 1,
    }


def test_export_round_trip(traj, tmp_path):
    out = export_lerobot(traj, None, tmp_path / "ds")
    validate_lerobot(out)
    info, data, episodes, stats = _read(out)
    want = _expected(traj)
    assert info["codebase_version"] == "v3.0" and info["fps"] == 200
    assert info["robot_type"] == "arm2" and info["total_frames"] == int(want["lengths"].sum())
    assert info["features"]["observation.state"]["names"] == ["shoulder", "elbow"]
    assert info["features"]["action"]["names"] == ["shoulder", "elbow"]
    np.testing.assert_array_equal(np.array(data["observation.state"], np.float32), want["state"])
    np.testing.assert_array_equal(
        np.array(data["observation.velocity"], np.float32), want["velocity"]
    )
    np.testing.assert_array_equal(np.array(data["action"], np.float32), want["action"])
    assert np.max(np.abs(data["action"])) < PAD  # padding never exported
    assert episodes["length"] == want["lengths"].tolist()
    ends = np.cumsum(want["lengths"])
    assert episodes["dataset_to_index"] == ends.tolist()
    starts = np.repeat(ends - want["lengths"], want["lengths"])
    frames = np.arange(ends[-1]) - starts
    np.testing.assert_array_equal(data["frame_index"], frames)
    np.testing.assert_allclose(data["timestamp"], frames / 200, atol=1e-6)
    # stats: dataset-wide min/max/mean/count of the frames, per-episode ones in meta/episodes
    s = stats["observation.state"]
    np.testing.assert_allclose(s["min"], want["state"].min(0), rtol=1e-6)
    np.testing.assert_allclose(s["max"], want["state"].max(0), rtol=1e-6)
    np.testing.assert_allclose(s["mean"], want["state"].astype(np.float64).mean(0), atol=1e-6)
    np.testing.assert_allclose(s["std"], want["state"].astype(np.float64).std(0), atol=1e-6)
    assert s["count"] == [ends[-1]]
    assert np.all(np.array(s["q01"]) <= np.array(s["q50"])) and np.all(
        np.array(s["q50"]) <= np.array(s["q99"])
    )
    ep1 = want["action"][ends[0] : ends[1]]
    np.testing.assert_allclose(episodes["stats/action/max"][1], ep1.max(0), rtol=1e-6)
    assert stats["index"]["max"] == [int(ends[-1]) - 1]
    assert pq.read_table(out / "meta/tasks.parquet").to_pydict() == {
        "task_index": [0],
        "__index_level_0__": ["hybridsim"],
    }


def test_cli_robot_only_positions_only(traj, tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(
        ["data", "export", str(traj), "--format", "lerobot", "--out", str(out)]
        + ["--joints", "elbow", "--positions-only", "--task", "reach"]
    )
    assert rc == 0
    captured = capsys.readouterr()
    assert [ln.split("] ")[-1] for ln in captured.err.splitlines()] == [
        f"episode {i}/4 written" for i in range(1, 5)
    ]
    assert captured.out.startswith(f"wrote {out}: ")
    validate_lerobot(out)
    info, data, _, _ = _read(out)
    assert "observation.velocity" not in info["features"] and "observation.velocity" not in data
    assert info["features"]["observation.state"]["names"] == ["elbow"]
    want = _expected(traj, qpos_idx=[1])
    np.testing.assert_array_equal(
        np.array(data["observation.state"], np.float32), want["state"][:, 0]
    )
    # rerunning a finished identical export leaves it as it is
    before = (out / "data/chunk-000/file-000.parquet").stat().st_mtime_ns
    assert (
        main(
            ["data", "export", str(traj), "--out", str(out), "--joints", "elbow"]
            + ["--positions-only", "--task", "reach", "--quiet"]
        )
        == 0
    )
    assert (out / "data/chunk-000/file-000.parquet").stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def video_export(tmp_path_factory):
    """2 episodes of 3 and 2 control steps rendered from camera 'main' at 64x48."""
    rec = sr.record("arm2", sr.Effects(), episodes=2, steps=3, seed=1, initial_noise=0.5)
    out = tmp_path_factory.mktemp("video") / "ds"
    data = {
        "qpos": rec.qpos,
        "qvel": rec.qvel,
        "ctrl": rec.ctrl,
        "control_dt": rec.control_dt,
        "episode_len": np.array([3, 2]),
    }
    export_lerobot(data, "arm2", out, ExportConfig(camera="main", width=64, height=48))
    return out, data


def test_export_video(video_export):
    out, data = video_export
    validate_lerobot(out)
    info, _, episodes, stats = _read(out)
    key = "observation.images.main"
    ft = info["features"][key]
    assert ft["dtype"] == "video" and ft["shape"] == [48, 64, 3]
    assert ft["names"] == ["height", "width", "channels"]
    assert ft["info"]["video.codec"] == "av1" and ft["info"]["video.pix_fmt"] == "yuv420p"
    path = out / info["video_path"].format(video_key=key, chunk_index=0, file_index=0)
    with av.open(str(path)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(frames) == 4 + 3 and frames[0].shape == (48, 64, 3)
    assert episodes[f"videos/{key}/from_timestamp"] == pytest.approx([0.0, 4 / 200])
    assert episodes[f"videos/{key}/to_timestamp"] == pytest.approx([4 / 200, 7 / 200])
    # the video shows the states: episodes start from different poses
    assert np.abs(frames[0].astype(int) - frames[4].astype(int)).mean() > 1.0
    assert np.asarray(stats[key]["mean"]).shape == (3, 1, 1)


_KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from hybridsim._src.datasets.lerobot_write import export_lerobot

    def progress(line):
        print(line, flush=True)
        if line == "episode 2/4 written":
            time.sleep(600)  # killed here by the test

    export_lerobot(sys.argv[1], None, sys.argv[2], progress=progress)
    """
)


def test_kill9_then_resume(traj, tmp_path):
    out = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(traj), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    while "episode 2/4 written" not in lines:
        line = proc.stdout.readline()
        assert line, f"export ended early: {lines}"
        lines.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    staging = tmp_path / "ds.partial"
    assert not out.exists() and sorted(p.name for p in (staging / "episodes").glob("*.json")) == [
        "ep-000000.json",
        "ep-000001.json",
    ]
    # a kill in the middle of episode 3 leaves a file without its marker
    (staging / "episodes" / "ep-000002.parquet").write_bytes(b"half written")
    # other options are refused, the staging folder kept
    with pytest.raises(DataFileError, match="another input or other options"):
        export_lerobot(traj, None, out, ExportConfig(positions_only=True))
    said = []
    export_lerobot(traj, None, out, progress=said.append)
    assert said == ["resuming: 2/4 episodes already written in " + str(staging)] + [
        f"episode {i}/4 written" for i in (3, 4)
    ]
    assert not staging.exists()
    whole = export_lerobot(traj, None, tmp_path / "whole")
    for a, b in zip(_read(out), _read(whole), strict=True):
        assert a == b
    _, data, _, _ = _read(out)
    assert data["index"] == list(range(int((LENS + 1).sum())))  # each episode exactly once


def _bad(args: list[str], capsys, match: str) -> None:
    assert main(["data", "export", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_input(traj, tmp_path, capsys):
    z = dict(np.load(traj))
    odd = tmp_path / "odd.npz"
    np.savez(odd, **{**z, "control_dt": np.asarray(0.035)})
    _bad([str(odd), "--out", str(tmp_path / "a")], capsys, "whole number of frames per second")
    noscene = tmp_path / "noscene.npz"
    np.savez(noscene, **{k: v for k, v in z.items() if k != "reality_metadata"})
    _bad([str(noscene), "--out", str(tmp_path / "a")], capsys, "names no scene")
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    _bad([str(traj), "--out", str(existing)], capsys, "already exists")
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    _bad([str(traj), "--out", str(traj)], capsys, "is the input file or inside it")
    _bad([str(traj), "--out", str(traj / "sub")], capsys, "is the input file or inside it")
    _bad([str(traj), "--out", str(tmp_path / "a"), "--joints", "wrist"], capsys, "no joint 'wrist'")
    _bad([str(traj), "--out", str(tmp_path / "a"), "--camera", "top"], capsys, "no camera 'top'")
    _bad([str(traj), "--out", str(tmp_path / "a"), "--width", "64"], capsys, "give --camera")
    _bad(
        [str(traj), "--out", str(tmp_path / "a"), "--camera", "main", "--width", "65"],
        capsys,
        "even number of pixels",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "noscene.npz", "odd.npz"]


def test_validate_rejects_inconsistent_dataset(traj, tmp_path):
    out = export_lerobot(traj, None, tmp_path / "ds")
    info = json.loads((out / "meta/info.json").read_text())
    info["total_frames"] += 1
    (out / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DataFileError, match="episode lengths sum to"):
        validate_lerobot(out)


def _lerobot_python() -> Path | None:
    exe = os.environ.get("HYBRIDSIM_LEROBOT_PYTHON") or str(REPO / ".venv-lerobot/bin/python")
    return Path(exe).absolute() if Path(exe).is_file() else None  # not resolve(): keep the venv


@pytest.mark.skipif(_lerobot_python() is None, reason="no LeRobot venv (make lerobot-env)")
def test_lerobot_loads_export(video_export, tmp_path):
    out, data = video_export
    info, table, episodes, _ = _read(out)
    key = "observation.images.main"
    with av.open(
        str(out / info["video_path"].format(video_key=key, chunk_index=0, file_index=0))
    ) as f:
        frames = np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])
    at = np.array([0, 4, 6])  # first frames of both episodes, the last frame
    expected = tmp_path / "expected.npz"
    np.savez(
        expected,
        state=np.array(table["observation.state"], np.float32),
        velocity=np.array(table["observation.velocity"], np.float32),
        action=np.array(table["action"], np.float32),
        lengths=np.array(episodes["length"]),
        fps=info["fps"],
        video_key=key,
        frame_at=at,
        frames=frames[at].transpose(0, 3, 1, 2) / 255.0,
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("PYTHONPATH", None)
    r = subprocess.run(
        [str(_lerobot_python()), str(REPO / "tests/lerobot_compat.py"), str(out), str(expected)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok lerobot 0.4.4"), r.stdout
    # the state read by LeRobot is the recording's
    np.testing.assert_array_equal(
        np.array(table["observation.state"], np.float32)[:4], data["qpos"][0, :4].astype(np.float32)
    )
