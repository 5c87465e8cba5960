"""The trajectory interchange format (``.npz``) and atomic file writes.

An interchange file holds N episodes padded to the longest one (T control steps):

- ``qpos (N, T+1, nq)``, ``qvel (N, T+1, nv)``, ``ctrl (N, T, nu)`` float arrays
  (m, rad; m/s, rad/s; actuator units); ``ctrl[:, t]`` is applied from state ``t`` to
  state ``t+1``;
- ``control_dt``: seconds per control step (scalar).

Optional keys (absent: the default in brackets):

- ``episode_len (N,)`` int: the control steps of each episode, 1..T [every episode has
  T]. Episode ``i`` is valid at ``qpos[i, :L+1]``, ``qvel[i, :L+1]``, ``ctrl[i, :L]``
  (``L = episode_len[i]``); the padding repeats the last valid value (finite, never read).
- ``timestep`` (s) and ``substeps`` (int): how the simulator steps this data,
  ``control_dt == substeps * timestep`` [the scene's own timestep, and
  ``control_dt / timestep``, which must then be a whole number]. Written by
  ``hybridsim data import`` when the frame period is not a whole multiple of the scene's
  timestep (``hybridsim._src.datasets.timing``).
- ``qpos_observed (nq,)``, ``qvel_observed (nv,)`` bool: which entries were recorded
  [all]. Entries not recorded (e.g. the poses of free objects in a robot-only log) hold
  the scene's initial state, are never scored and get no residual correction.
- ``import_info``: a JSON string describing where the data came from (source, mapping,
  ignored features, velocity method, unobserved joints).

Real robot logs (LeRobot v3 datasets, robomimic HDF5) come in through
``hybridsim data import``, which writes this format.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim._src.errors import DataFileError

TRAJECTORY_KEYS = ("qpos", "qvel", "ctrl", "control_dt")
OPTIONAL_KEYS = ("episode_len", "timestep", "substeps", "qpos_observed", "qvel_observed")


@contextmanager
def atomic_path(path: str | Path, suffix: str = ""):
    """Yields a temporary path next to ``path``; renames it onto ``path`` on success.

    A reader never sees a half-written file, and a failed write leaves ``path`` as it was::

        with hybridsim.atomic_path("out/result.json", suffix=".json") as tmp:
            tmp.write_text(text)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_trajectory(path: str | Path, traj: Any, **extra: Any) -> Path:
    """Writes a Trajectory (or anything with qpos/qvel/ctrl/control_dt) atomically."""
    arrays = {
        "qpos": np.asarray(traj.qpos, dtype=np.float64),
        "qvel": np.asarray(traj.qvel, dtype=np.float64),
        "ctrl": np.asarray(traj.ctrl, dtype=np.float64),
        "control_dt": np.asarray(float(traj.control_dt)),
    }
    for name in ("sensordata", "time", "status", *OPTIONAL_KEYS):
        value = getattr(traj, name, None)
        if value is not None:
            arrays[name] = np.asarray(value)
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    path = Path(path)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Reads every array of an ``.npz``; a missing or corrupt file is a DataFileError."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataFileError(f"data file {str(path)!r} is not a readable .npz: {e}") from None


def load_array(path: str | Path, what: str) -> np.ndarray:
    """Reads one ``.npy`` (or a one-array ``.npz``) as float64."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{what} file {str(path)!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataFileError(f"{what} file {str(path)!r} is not a readable .npy: {e}") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        with arr:
            if len(arr.files) != 1:
                raise DataFileError(
                    f"{what} file {str(path)!r} holds {arr.files}; expected one array"
                )
            arr = arr[arr.files[0]]
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataFileError(
            f"{what} file {str(path)!r} holds dtype {arr.dtype}; expected a float array"
        )
    return arr.astype(np.float64)


def load_trajectory(path: str | Path, scene: Any | None = None) -> dict[str, np.ndarray]:
    """Reads and checks an interchange file; with ``scene`` checks nq, nv, nu too.

    Raises DataFileError naming the key, the expected shape and the one found.
    """
    data = load_npz(path)
    for key in TRAJECTORY_KEYS:
        if key not in data:
            raise DataFileError(
                f"{str(path)!r}: missing key {key!r}; expected keys {TRAJECTORY_KEYS}"
            )
    nq = scene.nq if scene is not None else data["qpos"].shape[-1]
    nv = scene.nv if scene is not None else data["qvel"].shape[-1]
    nu = scene.nu if scene is not None else data["ctrl"].shape[-1]
    ctrl = data["ctrl"]
    if ctrl.ndim != 3:
        raise DataFileError(
            f"{str(path)!r}: 'ctrl' expected shape (N, T, {nu}), found {ctrl.shape}"
        )
    n, t = ctrl.shape[:2]
    expect = {"qpos": (n, t + 1, nq), "qvel": (n, t + 1, nv), "ctrl": (n, t, nu)}
    for key, shape in expect.items():
        if data[key].shape != shape:
            raise DataFileError(
                f"{str(path)!r}: {key!r} expected shape {shape} (N, T+1 or T, dim), "
                f"found {data[key].shape}"
            )
        if not np.issubdtype(data[key].dtype, np.floating):
            raise DataFileError(f"{str(path)!r}: {key!r} must be float, found {data[key].dtype}")
        if not np.all(np.isfinite(data[key])):
            raise DataFileError(f"{str(path)!r}: {key!r} has non-finite values")
    dt = data["control_dt"]
    if dt.shape != () or not np.isfinite(dt) or float(dt) <= 0:
        raise DataFileError(
            f"{str(path)!r}: 'control_dt' expected a positive scalar (seconds), found {dt!r}"
        )
    _check_optional(path, data, n, t, nq, nv)
    return data


def _check_optional(path, data: dict[str, np.ndarray], n: int, t: int, nq: int, nv: int):
    """Checks the optional interchange keys (module docstring)."""
    where = str(path)
    if "episode_len" in data:
        lens = data["episode_len"]
        if lens.shape != (n,) or not np.issubdtype(lens.dtype, np.integer):
            raise DataFileError(
                f"{where!r}: 'episode_len' expected ({n},) integers, found {lens.shape} "
                f"{lens.dtype}"
            )
        if lens.size and (lens.min() < 1 or lens.max() > t):
            raise DataFileError(
                f"{where!r}: 'episode_len' must be between 1 and T={t}, found "
                f"{int(lens.min())}..{int(lens.max())}"
            )
    if ("timestep" in data) != ("substeps" in data):
        raise DataFileError(f"{where!r}: 'timestep' and 'substeps' come together; found one")
    if "timestep" in data:
        dt, h, k = float(data["control_dt"]), data["timestep"], data["substeps"]
        if h.shape != () or not np.isfinite(h) or float(h) <= 0:
            raise DataFileError(f"{where!r}: 'timestep' expected a positive scalar, found {h!r}")
        if k.shape != () or not np.issubdtype(k.dtype, np.integer) or int(k) < 1:
            raise DataFileError(f"{where!r}: 'substeps' expected an int >= 1, found {k!r}")
        if abs(int(k) * float(h) - dt) > 1e-9 * max(dt, 1.0):
            raise DataFileError(
                f"{where!r}: substeps * timestep = {int(k) * float(h):g} s must equal "
                f"control_dt = {dt:g} s"
            )
    for key, size in (("qpos_observed", nq), ("qvel_observed", nv)):
        if key in data and (data[key].shape != (size,) or data[key].dtype != np.bool_):
            raise DataFileError(
                f"{where!r}: {key!r} expected ({size},) bool, found {data[key].shape} "
                f"{data[key].dtype}"
            )
