"""Reading a local LeRobot v3 dataset folder with pyarrow (LeRobot itself is not needed).

Layout (LeRobot ``codebase_version`` v3.x)::

    meta/info.json                       fps, features (dtype, shape, names), data_path
    meta/episodes/chunk-*/file-*.parquet one row per episode: episode_index, length,
                                         data/chunk_index, data/file_index
    data/chunk-*/file-*.parquet          one row per frame, several episodes per file

Each frame row holds one column per feature (a float vector is a fixed-size list) plus
``timestamp`` (s), ``frame_index``, ``episode_index``, ``index`` and ``task_index``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from hybridsim._src.datasets.importer import Feature, RawEpisode
from hybridsim._src.errors import DataFileError

BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
"""Columns every LeRobot frame has; never reported as ignored."""

_NUMERIC = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataFileError(
            "reading LeRobot datasets needs pyarrow: pip install 'hybridsim[data]'"
        ) from None
    return pa, pq


@dataclasses.dataclass(frozen=True)
class LeRobotSource:
    """A LeRobot v3 dataset folder, described by its ``meta/`` files (no frames read yet)."""

    path: Path
    """The dataset folder."""
    version: str
    """``codebase_version`` of ``meta/info.json``, e.g. ``v3.0``."""
    fps: float | None
    """Frames per second from ``meta/info.json`` (None: not given)."""
    features: tuple[Feature, ...]
    """Every feature of ``meta/info.json``, bookkeeping columns included."""
    data_files: tuple[Path, ...]
    """The frame files to read, in order."""
    lengths: tuple[tuple[int, int], ...]
    """``(episode_index, frames)`` from ``meta/episodes`` (empty when it is absent)."""

    @property
    def format(self) -> str:
        return f"LeRobot {self.version}"

    def feature(self, key: str) -> Feature | None:
        return next((f for f in self.features if f.key == key), None)


def _names(raw) -> tuple[str, ...] | None:
    """A feature's ``names``: a list, or (older writers) a one-entry dict of a list."""
    if isinstance(raw, dict) and len(raw) == 1:
        raw = next(iter(raw.values()))
    if isinstance(raw, list) and all(isinstance(n, str) for n in raw):
        return tuple(raw)
    return None


def _feature(key: str, spec) -> Feature:
    if not isinstance(spec, dict):
        raise DataFileError(f"meta/info.json: feature {key!r} is not an object: {spec!r}")
    shape = spec.get("shape")
    vector = spec.get("dtype") in _NUMERIC and isinstance(shape, list) and len(shape) == 1
    return Feature(key, int(shape[0]) if vector else 0, _names(spec.get("names")))


def _read_info(path: Path) -> dict:
    info_path = path / "meta" / "info.json"
    if not info_path.is_file():
        raise DataFileError(
            f"{str(path)!r} has no meta/info.json; expected a LeRobot v3 dataset folder"
        )
    try:
        info = json.loads(info_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataFileError(f"{str(info_path)!r} is not valid JSON: {e}") from None
    if not isinstance(info, dict):
        raise DataFileError(f"{str(info_path)!r} must hold a JSON object")
    version = str(info.get("codebase_version", "(none)"))
    if not version.startswith("v3."):
        raise DataFileError(
            f"{str(info_path)!r}: codebase_version {version!r} found, expected v3.x; convert "
            "v2.x datasets with LeRobot's own converter first "
            "(python -m lerobot.datasets.v30.convert_dataset_v21_to_v30)"
        )
    if not isinstance(info.get("features"), dict):
        raise DataFileError(f"{str(info_path)!r} has no 'features' object")
    return info


def _episode_lengths(path: Path, pq) -> tuple[tuple[int, int, int, int], ...]:
    """``(episode_index, length, chunk_index, file_index)`` rows of ``meta/episodes``."""
    rows = []
    columns = ["episode_index", "length", "data/chunk_index", "data/file_index"]
    for f in sorted((path / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        table = _read_table(f, pq, columns)
        rows.extend(zip(*(table.column(c).to_pylist() for c in columns), strict=True))
    return tuple(tuple(int(v) for v in r) for r in rows)


def _read_table(file: Path, pq, columns: list[str]):
    """Reads ``columns`` of one parquet file; a corrupt file or a missing column is one line."""
    import pyarrow as pa

    try:
        schema = pq.read_schema(file)
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise DataFileError(
                f"{str(file)!r} has no column(s) {missing}; it holds {schema.names}"
            )
        return pq.read_table(file, columns=columns)
    except (pa.ArrowException, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataFileError(f"{str(file)!r} is not a readable parquet file: {first}") from None


def open_lerobot(path: str | Path) -> LeRobotSource:
    """Reads ``meta/`` of the LeRobot v3 dataset folder ``path``."""
    _, pq = _pyarrow()
    path = Path(path)
    info = _read_info(path)
    features = tuple(_feature(k, v) for k, v in info["features"].items())
    fps = info.get("fps")
    if fps is not None and not (isinstance(fps, int | float) and fps > 0):
        raise DataFileError(f"{str(path)!r}: meta/info.json fps must be positive, found {fps!r}")
    episodes = _episode_lengths(path, pq)
    template = info.get("data_path", "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
    if episodes:
        pairs = sorted({(c, f) for _, _, c, f in episodes})
        files = [path / template.format(chunk_index=c, file_index=f) for c, f in pairs]
        missing = [str(f.relative_to(path)) for f in files if not f.is_file()]
        if missing:
            raise DataFileError(
                f"{str(path)!r}: meta/episodes names data file(s) {missing} that do not exist"
            )
    else:
        files = sorted((path / "data").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DataFileError(f"{str(path)!r} is an empty dataset: no data/chunk-*/*.parquet")
    return LeRobotSource(
        path=path,
        version=str(info["codebase_version"]),
        fps=None if fps is None else float(fps),
        features=features,
        data_files=tuple(files),
        lengths=tuple((e, n) for e, n, _, _ in episodes),
    )


def _matrix(table, key: str, size: int, file: Path) -> np.ndarray:
    """(rows, size) float64 of the feature column ``key``."""
    import pyarrow as pa

    col = table.column(key).combine_chunks()
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataFileError(f"{str(file)!r}: feature {key!r} is null in row {row}")
    nested = pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
    if nested or pa.types.is_fixed_size_list(col.type):
        col = col.flatten()
    values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    if values.size != len(table) * size:
        raise DataFileError(
            f"{str(file)!r}: feature {key!r} holds {values.size} values for {len(table)} "
            f"frames; meta/info.json says {size} per frame"
        )
    return values.reshape(len(table), size)


def read_episodes(
    source: LeRobotSource, features: tuple[Feature, ...], fps: float
) -> tuple[RawEpisode, ...]:
    """Every episode of ``source`` with the columns of ``features``, frames in
    ``frame_index`` order; checks frame indices are consecutive and timestamps advance by
    ``1 / fps`` (within a quarter period)."""
    _, pq = _pyarrow()
    columns = [f.key for f in features] + ["episode_index", "frame_index"]
    has_time = source.feature("timestamp") is not None
    columns += ["timestamp"] if has_time else []
    parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    for file in source.data_files:
        table = _read_table(file, pq, columns)
        for f in features:
            parts[f.key].append(_matrix(table, f.key, f.size, file))
        for c in columns[len(features) :]:
            parts[c].append(np.asarray(table.column(c).to_numpy(), dtype=np.float64))
    data = {c: np.concatenate(v) for c, v in parts.items()}
    if data["episode_index"].size == 0:
        raise DataFileError(f"{str(source.path)!r} is an empty dataset: no frames")
    order = np.lexsort((data["frame_index"], data["episode_index"]))
    data = {c: v[order] for c, v in data.items()}
    ep = data["episode_index"].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
    bounds = zip(starts, np.r_[starts[1:], ep.size], strict=True)
    expected = dict(source.lengths)
    episodes = []
    for a, b in bounds:
        index = int(ep[a])
        frames = data["frame_index"][a:b].astype(np.int64)
        if frames[0] != 0 or np.any(np.diff(frames) != 1):
            k = 0 if frames[0] != 0 else int(np.flatnonzero(np.diff(frames) != 1)[0]) + 1
            raise DataFileError(
                f"episode {index}: frame_index {int(frames[k])} follows "
                f"{int(frames[k - 1]) if k else 'the start'}; expected consecutive frames from 0"
            )
        if index in expected and expected.pop(index) != b - a:
            raise DataFileError(
                f"episode {index} has {b - a} frames in the data files but meta/episodes "
                f"says {dict(source.lengths)[index]}"
            )
        if has_time:
            _check_timestamps(index, data["timestamp"][a:b], fps)
        episodes.append(RawEpisode(f"episode {index}", {f.key: data[f.key][a:b] for f in features}))
    if expected:
        raise DataFileError(
            f"{str(source.path)!r}: episodes {sorted(expected)} of meta/episodes have no frames "
            "in the data files"
        )
    return tuple(episodes)


def _check_timestamps(index: int, stamps: np.ndarray, fps: float) -> None:
    """Consecutive timestamps (s) must differ by 1/fps within a quarter period."""
    step = np.diff(stamps)
    bad = np.flatnonzero(np.abs(step * fps - 1.0) > 0.25)
    if bad.size:
        k = int(bad[0]) + 1
        raise DataFileError(
            f"episode {index}, frame {k}: timestamp advances by {step[k - 1]:.6g} s from the "
            f"previous frame; expected 1/fps = {1 / fps:.6g} s (+- a quarter period)"
        )
