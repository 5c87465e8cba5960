"""Export interchange trajectories (``hybridsim._src.io``) as a LeRobot v3 dataset.

Frame convention: an episode of ``L`` control steps becomes ``L + 1`` frames. Frame ``t``
holds the state ``qpos[t]`` (and ``qvel[t]``) and the action ``ctrl[t]`` applied from it;
the last frame has no control step after it and repeats ``ctrl[L - 1]``. Importing the
dataset drops that last action again, so export -> import gives back the states and
controls (as float32). Padding beyond ``episode_len`` is never exported.

Features (``meta/info.json``): ``observation.state`` (the qpos entries of the selected
joints, named by ``hybridsim._src.datasets.names``), ``observation.velocity`` (the
matching qvel entries; left out with ``positions_only``), ``action`` (ctrl, named by
actuator), with a camera ``observation.images.<camera>`` (an mp4 video), and LeRobot's
``timestamp frame_index episode_index index task_index``. ``fps = 1 / control_dt`` must be
a whole number.

The export is atomic and resumable. It works in ``<out>.partial/``: ``job.json`` (what is
exported: input digest, scene, options) and one finished episode at a time in
``episodes/`` (data parquet, video, then a ``.json`` marker, each written atomically).
A rerun with the same input and options skips the finished episodes; other inputs or
options are refused unless ``restart``. Once every episode is written, the dataset is
assembled in ``<out>.partial/dataset/``, validated with ``validate_lerobot``, and renamed
onto ``<out>``; ``meta/hybridsim_export.json`` records the job, so a rerun of a finished
export is recognised and leaves it as it is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.datasets import lerobot_schema as schema
from hybridsim._src.datasets import names as entry_names
from hybridsim._src.errors import DataFileError, SceneError
from hybridsim._src.io import atomic_path, load_npz, load_trajectory

JOB_FORMAT = "hybridsim lerobot export 1"
MARKER_PATH = "meta/hybridsim_export.json"


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``export_lerobot`` writes."""

    joints: tuple[str, ...] = ()
    """Joints whose qpos/qvel entries are exported, in the scene's qpos order (empty:
    all joints). A robot-only export names the robot's joints."""
    positions_only: bool = False
    """Leave out ``observation.velocity``."""
    camera: str | None = None
    """A camera of the scene: adds the video feature ``observation.images.<camera>``."""
    width: int = 160
    """Video width in pixels (even)."""
    height: int = 120
    """Video height in pixels (even)."""
    task: str = "hybridsim"
    """The task text of every episode (``meta/tasks.parquet``)."""
    robot_type: str | None = None
    """``robot_type`` in ``meta/info.json`` (None: the scene's name)."""
    vcodec: str = "libsvtav1"
    """Video encoder: ``libsvtav1`` (AV1, LeRobot's default) or ``h264``."""


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Which entries of the trajectory become which feature."""

    qpos_idx: tuple[int, ...]
    qvel_idx: tuple[int, ...]
    features: dict  # LeRobot features, in info.json order
    video_key: str | None


def lerobot_fps(control_dt: float) -> int:
    """``1 / control_dt`` (s) as LeRobot's integer ``fps``; DataFileError if not whole."""
    fps = 1.0 / float(control_dt)
    whole = round(fps)
    if whole < 1 or abs(fps - whole) > 1e-6:
        raise DataFileError(
            f"control_dt {float(control_dt):g} s is {fps:.6g} frames per second; a LeRobot "
            "dataset needs a whole number of frames per second"
        )
    return int(whole)


def _digest_arrays(data: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(data):
        a = np.ascontiguousarray(data[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _scene_named_in(data: Mapping[str, np.ndarray], where: str) -> str:
    """The scene named by ``reality_metadata`` (written by ``synthetic-reality record``)."""
    if "reality_metadata" in data:
        try:
            name = json.loads(str(data["reality_metadata"])).get("scene")
        except (ValueError, AttributeError):
            name = None
        if isinstance(name, str) and name:
            return name
    raise DataFileError(f"{where} names no scene: give the scene (--scene NAME or MJCF path)")


def _check_arrays(data: dict[str, np.ndarray], scene) -> None:
    """The checks of ``load_trajectory`` for arrays given in memory."""
    for key in ("qpos", "qvel", "ctrl", "control_dt"):
        if key not in data:
            raise DataFileError(f"trajectory arrays: missing key {key!r}")
    ctrl = data["ctrl"]
    if ctrl.ndim != 3:
        raise DataFileError(
            f"trajectory 'ctrl' expected shape (N, T, {scene.nu}), found {ctrl.shape}"
        )
    n, t = ctrl.shape[:2]
    expect = {"qpos": (n, t + 1, scene.nq), "qvel": (n, t + 1, scene.nv), "ctrl": (n, t, scene.nu)}
    for key, shape in expect.items():
        if data[key].shape != shape or not np.all(np.isfinite(data[key])):
            raise DataFileError(
                f"trajectory {key!r} expected finite values of shape {shape}, "
                f"found {data[key].shape}"
            )
    dt = data["control_dt"]
    if dt.shape != () or not np.isfinite(dt) or float(dt) <= 0:
        raise DataFileError(f"trajectory 'control_dt' expected a positive scalar, found {dt!r}")
    lens = data.get("episode_len")
    if lens is not None and (
        lens.shape != (n,) or lens.min(initial=1) < 1 or lens.max(initial=1) > t
    ):
        raise DataFileError(f"trajectory 'episode_len' expected ({n},) integers in 1..{t}")


def _read_input(src, scene) -> tuple[dict[str, np.ndarray], Any, str, Path | None]:
    """``(arrays, scene, input digest, input path or None)``; the scene resolved from the
    data's ``reality_metadata`` when ``scene`` is None."""
    from hybridsim._src.loader import load_scene

    if isinstance(src, (str, Path)):
        path = Path(src)
        raw = load_npz(path)
        scene = load_scene(scene if scene is not None else _scene_named_in(raw, repr(str(path))))
        return load_trajectory(path, scene), scene, _digest_file(path), path
    if isinstance(src, Mapping):
        data = {k: np.asarray(v) for k, v in src.items()}
    else:  # a Trajectory or Recording
        data = {
            k: np.asarray(getattr(src, k))
            for k in ("qpos", "qvel", "ctrl", "control_dt", "episode_len")
            if getattr(src, k, None) is not None
        }
        metadata = getattr(src, "metadata", None)
        if metadata:
            data["reality_metadata"] = np.asarray(json.dumps(dict(metadata)))
    scene = load_scene(scene if scene is not None else _scene_named_in(data, "the trajectory"))
    _check_arrays(data, scene)
    return data, scene, _digest_arrays(data), None


def _layout(scene, config: ExportConfig) -> _Layout:
    m = scene.mj_model
    joints = [entry_names.joint_name(m, j) for j in range(m.njnt)]
    if isinstance(config.joints, str):
        raise DataFileError(f"joints must be a tuple of joint names, got {config.joints!r}")
    unknown = [j for j in config.joints if j not in joints]
    if unknown:
        raise SceneError(f"scene {scene.name!r} has no joint {unknown[0]!r}; joints: {joints}")
    keep = {joints.index(j) for j in config.joints} if config.joints else set(range(m.njnt))
    qpos_idx = tuple(i for i, j in enumerate(entry_names.joint_of_qpos(m)) if j in keep)
    qvel_idx = tuple(i for i, j in enumerate(entry_names.joint_of_qvel(m)) if j in keep)
    qpos_names, qvel_names = entry_names.qpos_names(m), entry_names.qvel_names(m)

    def vector(names: list[str]) -> dict:
        return {"dtype": "float32", "shape": [len(names)], "names": names}

    features = {"observation.state": vector([qpos_names[i] for i in qpos_idx])}
    if not config.positions_only:
        features["observation.velocity"] = vector([qvel_names[i] for i in qvel_idx])
    features["action"] = vector(entry_names.actuator_names(m))
    video_key = None
    if config.camera is not None:
        video_key = f"observation.images.{config.camera}"
        features[video_key] = {
            "dtype": "video",
            "shape": [config.height, config.width, 3],
            "names": ["height", "width", "channels"],
        }
    for key, ft in schema.DEFAULT_FEATURES.items():
        features[key] = dict(ft)
    return _Layout(qpos_idx, qvel_idx, features, video_key)


def _check_config(config: ExportConfig, scene) -> None:
    if not isinstance(config.task, str) or not config.task.strip():
        raise DataFileError(f"task must be a non-empty text, got {config.task!r}")
    if config.camera is not None:
        from hybridsim._src.datasets.video import check_video_options

        check_video_options(scene, config.camera, config.width, config.height, config.vcodec)


def _check_paths(out: Path, input_path: Path | None) -> None:
    if input_path is None:
        return
    src = input_path.resolve()
    dst = out.resolve()
    if dst == src or src in dst.parents:
        raise DataFileError(f"output folder {str(out)!r} is the input file or inside it")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value: Any) -> None:
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(value, indent=4, ensure_ascii=False))


def _open_staging(staging: Path, job: dict, restart: bool) -> None:
    """Creates ``staging`` with ``job.json``, or keeps it to resume the same job."""
    if staging.exists():
        old = _read_json(staging / "job.json")
        if old == job and not restart:
            return
        if not isinstance(old, dict) or old.get("format") != JOB_FORMAT:
            raise DataFileError(
                f"{str(staging)!r} exists and is not an unfinished hybridsim export; move it away"
            )
        if not restart:
            raise DataFileError(
                f"{str(staging)!r} holds an unfinished export of another input or other options; "
                "rerun with the same ones to resume it, or add --restart to start over"
            )
        shutil.rmtree(staging)
    try:
        (staging / "episodes").mkdir(parents=True)
        _write_json(staging / "job.json", job)
    except OSError as e:
        raise DataFileError(
            f"cannot write next to the output folder {str(staging)!r}: {e.strerror}"
        ) from None


def _episode_columns(
    data: dict[str, np.ndarray], i: int, steps: int, layout: _Layout, fps: int, first: int
) -> dict[str, np.ndarray]:
    """The frame columns of episode ``i`` with ``steps`` control steps (``steps + 1`` frames)."""
    frames = np.arange(steps + 1)
    ctrl = data["ctrl"][i, :steps]
    cols = {"observation.state": data["qpos"][i, : steps + 1][:, list(layout.qpos_idx)]}
    if "observation.velocity" in layout.features:
        cols["observation.velocity"] = data["qvel"][i, : steps + 1][:, list(layout.qvel_idx)]
    cols["action"] = np.concatenate([ctrl, ctrl[-1:]])  # the last frame repeats the last control
    cols = {k: v.astype(np.float32) for k, v in cols.items()}
    cols["timestamp"] = (frames / fps).astype(np.float32)
    cols["frame_index"] = frames.astype(np.int64)
    cols["episode_index"] = np.full(steps + 1, i, np.int64)
    cols["index"] = (first + frames).astype(np.int64)
    cols["task_index"] = np.zeros(steps + 1, np.int64)
    return cols


def _table(cols: dict[str, np.ndarray], features: dict):
    pa = schema.pyarrow()
    fields, arrays = [], []
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        values = cols[key]
        flat = pa.array(values.reshape(-1))
        scalar = list(ft["shape"]) == [1]  # LeRobot stores a (1,) feature as a scalar column
        arrays.append(flat if scalar else pa.FixedSizeListArray.from_arrays(flat, ft["shape"][0]))
        fields.append(pa.field(key, schema.arrow_type(ft)))
    meta = {b"huggingface": schema.hf_metadata(features)}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))


def _stats(x: np.ndarray) -> dict[str, list]:
    """LeRobot's per-feature stats of ``x (n, d)``: min/max (x's dtype), mean, std, count
    and the quantiles q01..q99 (exact, linear interpolation), as lists."""
    x = x.reshape(len(x), -1)
    xf = x.astype(np.float64)
    out = {
        "min": x.min(0).tolist(),
        "max": x.max(0).tolist(),
        "mean": xf.mean(0).tolist(),
        "std": xf.std(0).tolist(),
        "count": [len(x)],
    }
    for q in schema.QUANTILES:
        out[f"q{round(q * 100):02d}"] = np.quantile(xf, q, axis=0).tolist()
    return out


def _image_stats(frames: np.ndarray) -> dict[str, list]:
    """Per-channel stats of up to 100 evenly spaced ``frames (n, H, W, 3)`` uint8, in [0, 1],
    each of shape (3, 1, 1) as LeRobot stores image stats; ``count`` = frames sampled."""
    pick = np.unique(np.round(np.linspace(0, len(frames) - 1, min(100, len(frames)))).astype(int))
    stride = max(1, max(frames.shape[1:3]) // 150)
    pixels = frames[pick, ::stride, ::stride].reshape(-1, 3) / 255.0
    stats = _stats(pixels)
    out = {k: [[[v]] for v in stats[k]] for k in stats if k != "count"}
    out["count"] = [len(pick)]
    return {k: out[k] for k in schema.STAT_KEYS}


def _aggregate(parts: list[dict[str, list]]) -> dict[str, list]:
    """Dataset stats from episode stats (as LeRobot aggregates them): min of the minima,
    max of the maxima, the pooled mean and std, count-weighted means of the quantiles."""
    counts = np.array([p["count"][0] for p in parts], dtype=np.float64)
    w = counts.reshape((-1,) + (1,) * np.asarray(parts[0]["mean"]).ndim) / counts.sum()

    def stack(k):
        return np.stack([np.asarray(p[k]) for p in parts])

    mean = (stack("mean") * w).sum(0)
    var = ((stack("std") ** 2 + (stack("mean") - mean) ** 2) * w).sum(0)
    out = {
        "min": stack("min").min(0).tolist(),
        "max": stack("max").max(0).tolist(),
        "mean": mean.tolist(),
        "std": np.sqrt(var).tolist(),
        "count": [int(counts.sum())],
    }
    for k in schema.STAT_KEYS[5:]:
        out[k] = (stack(k) * w).sum(0).tolist()
    return out


def _write_episode(
    staging: Path,
    data: dict[str, np.ndarray],
    i: int,
    steps: int,
    first: int,
    layout: _Layout,
    fps: int,
    config: ExportConfig,
    renderer,
) -> None:
    """Writes episode ``i`` into ``staging/episodes``: video, parquet, then the marker."""
    pa = schema.pyarrow()
    base = staging / "episodes" / f"ep-{i:06d}"
    cols = _episode_columns(data, i, steps, layout, fps, first)
    stats = {k: _stats(v) for k, v in cols.items()}
    if layout.video_key is not None:
        from hybridsim._src.datasets.video import encode_mp4

        frames = renderer(data["qpos"][i, : steps + 1])
        encode_mp4(frames, base.with_suffix(".mp4"), fps, config.vcodec)
        stats[layout.video_key] = _image_stats(frames)
    with atomic_path(base.with_suffix(".parquet"), suffix=".parquet") as tmp:
        pa.parquet.write_table(_table(cols, layout.features), tmp, compression="snappy")
    ordered = {k: stats[k] for k in layout.features}
    _write_json(base.with_suffix(".json"), {"length": steps + 1, "stats": ordered})


def _tasks_table(task: str):
    """``meta/tasks.parquet`` as pandas writes a frame indexed by the task text."""
    pa = schema.pyarrow()
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    fields = [pa.field("task_index", pa.int64()), pa.field("__index_level_0__", pa.string())]
    sch = pa.schema(fields, metadata={b"pandas": json.dumps(pandas_meta).encode()})
    return pa.table({"task_index": [0], "__index_level_0__": [task]}, schema=sch)


def _assemble(
    staging: Path,
    n: int,
    layout: _Layout,
    fps: int,
    scene_name: str,
    config: ExportConfig,
    job: dict,
) -> Path:
    """Builds the dataset from the staged episodes in ``staging/dataset``; validates it."""
    pa = schema.pyarrow()
    final = staging / "dataset"
    if final.exists():  # an assembly interrupted before
        shutil.rmtree(final)
    eps = staging / "episodes"
    markers = [_read_json(eps / f"ep-{i:06d}.json") for i in range(n)]
    lengths = [m["length"] for m in markers]
    data = pa.concat_tables([pa.parquet.read_table(eps / f"ep-{i:06d}.parquet") for i in range(n)])
    data_rel = schema.DATA_PATH.format(chunk_index=0, file_index=0)
    (final / data_rel).parent.mkdir(parents=True)
    pa.parquet.write_table(data, final / data_rel, compression="snappy")

    features = json.loads(json.dumps(layout.features))
    ends = np.cumsum(lengths)
    rows = {
        "episode_index": list(range(n)),
        "tasks": [[config.task]] * n,
        "length": lengths,
        "data/chunk_index": [0] * n,
        "data/file_index": [0] * n,
        "dataset_from_index": (ends - lengths).tolist(),
        "dataset_to_index": ends.tolist(),
    }
    if layout.video_key is not None:
        from hybridsim._src.datasets.video import concat_mp4, video_info

        key = layout.video_key
        parts = [eps / f"ep-{i:06d}.mp4" for i in range(n)]
        video = final / schema.VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
        video.parent.mkdir(parents=True)
        concat_mp4(parts, video)
        features[key]["info"] = video_info(video)
        durations = np.array([_duration(p) for p in parts])
        starts = np.cumsum(durations) - durations
        rows[f"videos/{key}/chunk_index"] = [0] * n
        rows[f"videos/{key}/file_index"] = [0] * n
        rows[f"videos/{key}/from_timestamp"] = starts.tolist()
        rows[f"videos/{key}/to_timestamp"] = (starts + durations).tolist()
    for key in layout.features:
        for s in schema.STAT_KEYS:
            rows[f"stats/{key}/{s}"] = [m["stats"][key][s] for m in markers]
    rows["meta/episodes/chunk_index"] = [0] * n
    rows["meta/episodes/file_index"] = [0] * n
    episodes_path = final / schema.EPISODES_PATH
    episodes_path.parent.mkdir(parents=True)
    pa.parquet.write_table(pa.table(rows), episodes_path)
    pa.parquet.write_table(_tasks_table(config.task), final / schema.TASKS_PATH)

    stats = {k: _aggregate([m["stats"][k] for m in markers]) for k in layout.features}
    _write_json(final / schema.STATS_PATH, stats)
    info = {
        "codebase_version": schema.CODEBASE_VERSION,
        "robot_type": config.robot_type or scene_name,
        "total_episodes": n,
        "total_frames": int(ends[-1]),
        "total_tasks": 1,
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{n}"},
        "data_path": schema.DATA_PATH,
        "video_path": schema.VIDEO_PATH if layout.video_key is not None else None,
        "features": features,
    }
    _write_json(final / schema.INFO_PATH, info)
    schema.validate_lerobot(final)
    _write_json(final / MARKER_PATH, job)
    return final


def _duration(path: Path) -> float:
    """Seconds of an mp4's video stream."""
    from hybridsim._src.datasets.video import av_module

    with av_module().open(str(path)) as f:
        s = f.streams.video[0]
        return float(s.duration * s.time_base)


def export_lerobot(
    traj_path_or_arrays,
    scene,
    out_dir: str | Path,
    config: ExportConfig = ExportConfig(),
    progress: Callable[[str], None] | None = None,
    restart: bool = False,
) -> Path:
    """Writes trajectories as a LeRobot v3 dataset folder ``out_dir`` (module docstring).

    Args:
      traj_path_or_arrays: an interchange ``.npz`` path, a dict of its arrays, or a
        Trajectory/Recording.
      scene: a Scene, a bundled scene name or an MJCF path; None takes the scene named in
        the data's ``reality_metadata`` (``synthetic-reality record``).
      out_dir: the dataset folder to create; it must not exist (unless it holds this very
        export, finished, which is then left as it is).
      config: what to export (ExportConfig).
      progress: called with ``"episode i/N written"`` after each episode.
      restart: discard an unfinished export of other inputs or options in
        ``<out_dir>.partial``.

    Returns the dataset folder. Raises DataFileError / SceneError (one line) on bad input,
    before any long work.
    """
    say = progress or (lambda message: None)
    out = Path(out_dir)
    data, scene, digest, input_path = _read_input(traj_path_or_arrays, scene)
    fps = lerobot_fps(float(data["control_dt"]))
    layout = _layout(scene, config)
    _check_config(config, scene)
    _check_paths(out, input_path)
    n = data["ctrl"].shape[0]
    if n == 0:
        raise DataFileError("the trajectory holds no episode")
    steps = data.get("episode_len", np.full(n, data["ctrl"].shape[1])).astype(int)
    job = {
        "format": JOB_FORMAT,
        "input_sha256": digest,
        "scene": {"name": scene.name, "nq": scene.nq, "nv": scene.nv, "nu": scene.nu},
        "config": {**dataclasses.asdict(config), "joints": list(config.joints)},
        "fps": fps,
        "episodes": n,
    }
    staging = out.parent / f"{out.name}.partial"
    if out.exists() or out.is_symlink():
        if _read_json(out / MARKER_PATH) == job:
            if _read_json(staging / "job.json") == job:
                shutil.rmtree(staging)  # left over by a run killed after its final rename
            say(f"{out} already holds this export")
            return out
        raise DataFileError(f"output folder {str(out)!r} already exists; it is never overwritten")
    _open_staging(staging, job, restart)

    eps = staging / "episodes"
    done = [i for i in range(n) if _read_json(eps / f"ep-{i:06d}.json") is not None]
    if done:
        say(f"resuming: {len(done)}/{n} episodes already written in {staging}")
    renderer = None
    if layout.video_key is not None and len(done) < n:
        from hybridsim._src.datasets.video import check_video_options
        from hybridsim._src.render import FrameRenderer

        cam = check_video_options(scene, config.camera, config.width, config.height, config.vcodec)
        renderer = FrameRenderer.build(scene, cam, config.width, config.height)
    firsts = np.cumsum(steps + 1) - (steps + 1)
    for i in range(n):
        if i in done:
            continue
        _write_episode(
            staging, data, i, int(steps[i]), int(firsts[i]), layout, fps, config, renderer
        )
        say(f"episode {i + 1}/{n} written")
    final = _assemble(staging, n, layout, fps, scene.name, config, job)
    final.rename(out)
    shutil.rmtree(staging)
    return out
