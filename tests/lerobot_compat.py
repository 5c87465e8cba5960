"""Loads a hybridsim LeRobot export with LeRobot itself (run by the LeRobot venv's python).

    HF_HUB_OFFLINE=1 .venv-lerobot/bin/python tests/lerobot_compat.py DIR EXPECTED.npz

``EXPECTED.npz`` holds what the export should read back: ``state``, ``action`` (and
optionally ``velocity``) as (total_frames, dim) float32, ``lengths`` (N,) frames per
episode, ``fps``, and, with a video, ``video_key``, ``frame_at`` (K,) frame indices and
``frames`` (K, C, H, W) float in [0, 1]: those frames as PyAV decodes the mp4.
Prints one ``ok ...`` line and exits 0, or raises.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402


def main(root: str, expected_path: str) -> None:
    import lerobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    want = np.load(expected_path)
    ds = LeRobotDataset(repo_id="local/x", root=root, video_backend="pyav")
    lengths = want["lengths"]
    assert ds.num_episodes == len(lengths), (ds.num_episodes, len(lengths))
    assert len(ds) == int(lengths.sum()), (len(ds), lengths.sum())
    assert ds.fps == int(want["fps"]), (ds.fps, want["fps"])
    keys = ["state", "action"] + (["velocity"] if "velocity" in want.files else [])
    got = {k: [] for k in keys}
    episode, frame = [], []
    for i in range(len(ds)):
        item = ds[i]
        for k in keys:
            feature = "action" if k == "action" else f"observation.{k}"
            got[k].append(item[feature].numpy().reshape(-1))
        episode.append(int(item["episode_index"]))
        frame.append(int(item["frame_index"]))
        assert item["task"] == "hybridsim", item["task"]
    for k in keys:
        np.testing.assert_array_equal(np.stack(got[k]), want[k], err_msg=k)
    np.testing.assert_array_equal(episode, np.repeat(np.arange(len(lengths)), lengths))
    starts = np.cumsum(lengths) - lengths
    np.testing.assert_array_equal(frame, np.arange(len(ds)) - np.repeat(starts, lengths))
    video = ""
    if "video_key" in want.files:
        key = str(want["video_key"])
        # e.g. the first and last frame of the last episode: seeks inside the joined mp4
        for i, frame_want in zip(want["frame_at"], want["frames"], strict=True):
            img = ds[int(i)][key].numpy()
            assert img.shape == frame_want.shape, (img.shape, frame_want.shape)
            err = float(np.abs(img - frame_want).max())
            assert err < 0.02, f"frame {i} differs from the mp4's frame by {err}"
        video = f", decoded {key} frames {tuple(img.shape)}"
    print(
        f"ok lerobot {lerobot.__version__}: LeRobotDataset loaded {ds.num_episodes} episodes, "
        f"{len(ds)} frames at {ds.fps} fps, values equal{video}"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
