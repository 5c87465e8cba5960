"""The LeRobot v3 dataset layout (as LeRobot 0.4.4 writes it) and a pyarrow validator.

A dataset folder holds:

- ``meta/info.json``: ``codebase_version`` "v3.0", ``fps`` (int), totals, ``splits``,
  ``data_path``/``video_path`` templates and ``features``: name -> ``dtype``, ``shape``,
  ``names`` (and ``info`` for videos);
- ``meta/stats.json``: per feature ``min max mean std count q01 q10 q50 q90 q99``;
- ``meta/tasks.parquet``: ``task_index`` with the task text as the (pandas) index;
- ``meta/episodes/chunk-000/file-000.parquet``: one row per episode (``length``,
  ``dataset_from_index``/``dataset_to_index``, the file it lives in, ``stats/<feature>/<stat>``);
- ``data/chunk-000/file-000.parquet``: one row per frame; a vector feature of shape ``(n,)``
  is a ``fixed_size_list<float>[n]`` column, a ``(1,)`` feature a scalar column;
- ``videos/<feature>/chunk-000/file-000.mp4`` for each ``video`` feature: the episodes one
  after the other, episode ``e`` from ``videos/<feature>/from_timestamp`` (s).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hybridsim._src.errors import DataFileError

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
STAT_KEYS = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)

DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def pyarrow():
    """The ``pyarrow`` module, or a DataFileError naming the extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DataFileError(
            "LeRobot datasets need pyarrow: pip install 'hybridsim[data]'"
        ) from None
    return pa


def arrow_type(feature: dict):
    """The pyarrow column type of a non-video feature (``dtype`` and ``shape`` (1,) or (n,))."""
    pa = pyarrow()
    scalar = pa.from_numpy_dtype(np.dtype(feature["dtype"]))
    shape = list(feature["shape"])
    if shape == [1]:
        return scalar
    return pa.list_(scalar, shape[0])


def hf_metadata(features: dict) -> bytes:
    """The ``huggingface`` schema metadata LeRobot puts on a data parquet file."""
    out = {}
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        value = {"dtype": ft["dtype"], "_type": "Value"}
        if list(ft["shape"]) != [1]:
            value = {"feature": value, "length": int(ft["shape"][0]), "_type": "List"}
        out[key] = value
    return json.dumps({"info": {"features": out}}).encode()


def _fail(root: Path, message: str) -> None:
    raise DataFileError(f"LeRobot dataset {str(root)!r}: {message}")


def _read_table(root: Path, rel: str):
    pa = pyarrow()
    path = root / rel
    if not path.is_file():
        _fail(root, f"missing file {rel}")
    try:
        return pa.parquet.read_table(path)
    except (OSError, pa.ArrowException) as e:
        _fail(root, f"{rel} is not a readable parquet file: {str(e).splitlines()[0]}")


def _read_info(root: Path) -> dict:
    path = root / INFO_PATH
    if not path.is_file():
        _fail(root, f"missing file {INFO_PATH}")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        _fail(root, f"{INFO_PATH} is not readable JSON: {e}")
    for key in ("codebase_version", "fps", "features", "total_episodes", "total_frames"):
        if key not in info:
            _fail(root, f"{INFO_PATH} has no {key!r}")
    if info["codebase_version"] != CODEBASE_VERSION:
        _fail(root, f"codebase_version {info['codebase_version']!r}, expected {CODEBASE_VERSION!r}")
    if not isinstance(info["fps"], int) or info["fps"] <= 0:
        _fail(root, f"fps must be a positive int, found {info['fps']!r}")
    for name, ft in info["features"].items():
        if not {"dtype", "shape", "names"} <= set(ft):
            _fail(root, f"feature {name!r} needs dtype, shape and names, found {sorted(ft)}")
        names, shape = ft["names"], list(ft["shape"])
        if ft["dtype"] == "video":
            if len(shape) != 3 or shape[2] != 3 or "info" not in ft:
                _fail(root, f"video feature {name!r} needs shape [H, W, 3] and info")
        elif len(shape) != 1:
            _fail(root, f"feature {name!r} has shape {shape}, expected one dimension")
        elif names is not None and len(names) != shape[0]:
            _fail(root, f"feature {name!r} has {len(names)} names for shape {shape}")
    for name, ft in DEFAULT_FEATURES.items():
        if info["features"].get(name, {}).get("dtype") != ft["dtype"]:
            _fail(root, f"feature {name!r} must be {ft['dtype']}")
    return info


def _check_data(root: Path, info: dict, episodes: dict) -> None:
    pa = pyarrow()
    features = info["features"]
    columns = [k for k, ft in features.items() if ft["dtype"] != "video"]
    pairs = zip(episodes["data/chunk_index"], episodes["data/file_index"], strict=True)
    files = sorted(set(pairs))
    tables = [
        _read_table(root, info["data_path"].format(chunk_index=c, file_index=f)) for c, f in files
    ]
    data = pa.concat_tables(tables) if tables else None
    if data is None or data.num_rows != info["total_frames"]:
        rows = 0 if data is None else data.num_rows
        _fail(root, f"data holds {rows} frames, info.json says {info['total_frames']}")
    if data.column_names != columns:
        _fail(root, f"data columns {data.column_names}, features say {columns}")
    for key in columns:
        expected = arrow_type(features[key])
        if data.schema.field(key).type != expected:
            _fail(
                root, f"column {key!r} has type {data.schema.field(key).type}, expected {expected}"
            )
        if data.column(key).null_count:
            _fail(root, f"column {key!r} has missing values")
    col = {k: data.column(k).to_numpy() for k in DEFAULT_FEATURES}
    if not np.array_equal(col["index"], np.arange(data.num_rows)):
        _fail(root, "column 'index' is not 0, 1, ..., total_frames - 1")
    lengths = np.asarray(episodes["length"])
    ep = np.repeat(np.arange(len(lengths)), lengths)
    if not np.array_equal(col["episode_index"], ep):
        _fail(root, "column 'episode_index' does not match the episode lengths in meta/episodes")
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    frame = np.arange(data.num_rows) - starts
    if not np.array_equal(col["frame_index"], frame):
        _fail(root, "column 'frame_index' is not 0, 1, ... within each episode")
    if np.max(np.abs(col["timestamp"] - frame / info["fps"]), initial=0.0) > 1e-4:
        _fail(root, "column 'timestamp' is not frame_index / fps")
    if col["task_index"].size and (
        col["task_index"].min() < 0 or col["task_index"].max() >= info["total_tasks"]
    ):
        _fail(root, "column 'task_index' points outside meta/tasks.parquet")


def _check_episodes(root: Path, info: dict) -> dict:
    table = _read_table(root, EPISODES_PATH)
    episodes = table.to_pydict()
    n = info["total_episodes"]
    video_keys = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
    required = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index"]
    required += ["dataset_from_index", "dataset_to_index"]
    for key in video_keys:
        required += [f"videos/{key}/{s}" for s in ("chunk_index", "file_index")]
        required += [f"videos/{key}/{s}" for s in ("from_timestamp", "to_timestamp")]
    for key in info["features"]:
        required += [f"stats/{key}/{s}" for s in STAT_KEYS]
    missing = [k for k in required if k not in episodes]
    if missing:
        _fail(root, f"{EPISODES_PATH} lacks columns {missing}")
    if table.num_rows != n or episodes["episode_index"] != list(range(n)):
        _fail(root, f"{EPISODES_PATH} must list episodes 0..{n - 1} in order")
    lengths = np.asarray(episodes["length"])
    if np.any(lengths < 1) or int(lengths.sum()) != info["total_frames"]:
        _fail(root, f"episode lengths sum to {int(lengths.sum())}, not {info['total_frames']}")
    ends = np.cumsum(lengths)
    if episodes["dataset_from_index"] != list(ends - lengths) or episodes[
        "dataset_to_index"
    ] != list(ends):
        _fail(root, "dataset_from_index/dataset_to_index are not contiguous")
    fps = info["fps"]
    for key in video_keys:
        for c, f in zip(
            episodes[f"videos/{key}/chunk_index"], episodes[f"videos/{key}/file_index"], strict=True
        ):
            rel = info["video_path"].format(video_key=key, chunk_index=c, file_index=f)
            if not (root / rel).is_file():
                _fail(root, f"missing video file {rel}")
        span = np.asarray(episodes[f"videos/{key}/to_timestamp"]) - np.asarray(
            episodes[f"videos/{key}/from_timestamp"]
        )
        if np.max(np.abs(span - lengths / fps)) > 1e-4:
            _fail(root, f"video {key!r}: an episode's time span is not length / fps")
    return episodes


def _check_tasks(root: Path, info: dict, episodes: dict) -> None:
    tasks = _read_table(root, TASKS_PATH).to_pydict()
    if "task_index" not in tasks or "__index_level_0__" not in tasks:
        _fail(root, f"{TASKS_PATH} needs a task_index column indexed by the task text")
    if tasks["task_index"] != list(range(info.get("total_tasks", -1))):
        _fail(root, f"{TASKS_PATH} task_index is not 0..total_tasks - 1")
    known = set(tasks["__index_level_0__"])
    for row in episodes["tasks"]:
        if not set(row) <= known:
            _fail(root, f"an episode names tasks {row} not in {TASKS_PATH}")


def _check_stats(root: Path, info: dict) -> None:
    path = root / STATS_PATH
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        _fail(root, f"{STATS_PATH} is not readable JSON: {e}")
    for key, ft in info["features"].items():
        if key not in stats or not set(STAT_KEYS) <= set(stats[key]):
            _fail(root, f"{STATS_PATH} lacks the stats {list(STAT_KEYS)} of {key!r}")
        shape = (ft["shape"][2], 1, 1) if ft["dtype"] == "video" else tuple(ft["shape"])
        for s in STAT_KEYS:
            value = np.asarray(stats[key][s], dtype=np.float64)
            want = (1,) if s == "count" else shape
            if value.shape != want or not np.all(np.isfinite(value)):
                _fail(root, f"{STATS_PATH} {key}/{s} has shape {value.shape}, expected {want}")
        if int(stats[key]["count"][0]) < 1:
            _fail(root, f"{STATS_PATH} {key}/count must be positive")


def validate_lerobot(root: str | Path) -> None:
    """Checks a LeRobot v3 dataset folder with pyarrow (module docstring).

    Checks ``meta/info.json`` (version, fps, features), the data parquet files against the
    features (column names, arrow types, no missing values, row count, ``index`` and
    ``frame_index`` contiguous, ``timestamp == frame_index / fps``), ``meta/episodes``
    (one row per episode, lengths and index ranges consistent, video files present),
    ``meta/tasks.parquet`` and ``meta/stats.json`` (every feature, every stat, shapes).

    Raises:
      DataFileError: one line naming the first problem found.
    """
    root = Path(root)
    if not root.is_dir():
        _fail(root, "is not a folder")
    info = _read_info(root)
    episodes = _check_episodes(root, info)
    _check_data(root, info, episodes)
    _check_tasks(root, info, episodes)
    _check_stats(root, info)
