"""The trajectory interchange format: round trip, atomic writes, corrupt and malformed files."""

from __future__ import annotations

import numpy as np
import pytest

import hybridsim as hs


@pytest.fixture
def traj():
    model = hs.make_model("arm2", 2, backend="c", substeps=2)
    return hs.rollout(model, hs.init(model), np.zeros((2, 5, 2)))


def test_round_trip(tmp_path, traj):
    path = hs.save_trajectory(tmp_path / "t.npz", traj)
    data = hs.load_trajectory(path, hs.load_scene("arm2"))
    np.testing.assert_array_equal(data["qpos"], traj.qpos)
    np.testing.assert_array_equal(data["ctrl"], traj.ctrl)
    assert float(data["control_dt"]) == traj.control_dt
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temp files left


def test_failed_write_keeps_the_old_file(tmp_path, traj):
    path = hs.save_trajectory(tmp_path / "t.npz", traj)
    before = path.read_bytes()

    class Broken:
        qpos = qvel = ctrl = np.zeros((1, 2, 2))

        @property
        def control_dt(self):
            raise RuntimeError("interrupted mid-write")

    with pytest.raises(RuntimeError):
        hs.save_trajectory(path, Broken())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]


def test_corrupt_file(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(hs.DataFileError, match="not a readable"):
        hs.load_trajectory(tmp_path / "bad.npz")
    with pytest.raises(hs.DataFileError, match="does not exist"):
        hs.load_trajectory(tmp_path / "missing.npz")


def test_malformed_keys_and_shapes(tmp_path):
    scene = hs.load_scene("arm2")
    good = {
        "qpos": np.zeros((2, 6, 2)),
        "qvel": np.zeros((2, 6, 2)),
        "ctrl": np.zeros((2, 5, 2)),
        "control_dt": np.array(0.01),
    }
    np.savez(tmp_path / "no_ctrl.npz", **{k: v for k, v in good.items() if k != "ctrl"})
    with pytest.raises(hs.DataFileError, match="missing key 'ctrl'"):
        hs.load_trajectory(tmp_path / "no_ctrl.npz", scene)
    np.savez(tmp_path / "short.npz", **dict(good, qvel=np.zeros((2, 5, 2))))
    with pytest.raises(
        hs.DataFileError, match=r"'qvel' expected shape \(2, 6, 2\).*found \(2, 5, 2\)"
    ):
        hs.load_trajectory(tmp_path / "short.npz", scene)
    np.savez(tmp_path / "nq.npz", **dict(good, qpos=np.zeros((2, 6, 3))))
    with pytest.raises(hs.DataFileError, match="'qpos' expected shape"):
        hs.load_trajectory(tmp_path / "nq.npz", scene)
    np.savez(tmp_path / "dt.npz", **dict(good, control_dt=np.array(-1.0)))
    with pytest.raises(hs.DataFileError, match="control_dt"):
        hs.load_trajectory(tmp_path / "dt.npz", scene)
