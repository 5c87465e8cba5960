"""Reading a robomimic-style HDF5 file with h5py.

Layout::

    data                     attrs["env_args"]: JSON, env_kwargs.control_freq (Hz)
    data/demo_<i>/obs/<key>  (L, d) per-frame observations, e.g. robot0_joint_pos
    data/demo_<i>/actions    (L, nu) the action applied at each frame
    data/demo_<i>/<other>    (L, ...) rewards, dones, states: reported as ignored

Features are keyed ``obs/<key>`` and ``actions``; ``<key>`` alone finds ``obs/<key>`` and
``action`` finds ``actions``. HDF5 features carry no entry names. Demos are read in the
order of their number.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from hybridsim._src.datasets.importer import Feature, RawEpisode
from hybridsim._src.errors import DataFileError


def _h5py():
    try:
        import h5py
    except ImportError:
        raise DataFileError(
            "reading HDF5 datasets needs h5py: pip install 'hybridsim[data]'"
        ) from None
    return h5py


@dataclasses.dataclass(frozen=True)
class RobomimicSource:
    """A robomimic-style HDF5 file, described from its first demo (no frames read yet)."""

    path: Path
    fps: float | None
    """``env_kwargs.control_freq`` of ``data.attrs["env_args"]`` (None: absent)."""
    features: tuple[Feature, ...]
    """``obs/<key>`` and the other per-frame datasets of the first demo."""
    demos: tuple[str, ...]
    """Demo group names, e.g. ``demo_0``, by number."""

    format = "robomimic HDF5"

    def feature(self, key: str) -> Feature | None:
        aliases = (key, f"obs/{key}", "actions" if key == "action" else key)
        return next((f for a in aliases for f in self.features if f.key == a), None)


def _open(path: Path):
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataFileError(f"{str(path)!r} is not a readable HDF5 file: {e}") from None


def _control_freq(data) -> float | None:
    raw = data.attrs.get("env_args")
    if raw is None:
        return None
    try:
        freq = json.loads(raw).get("env_kwargs", {}).get("control_freq")
    except (TypeError, ValueError, AttributeError):
        return None
    return float(freq) if isinstance(freq, int | float) and freq > 0 else None


def open_robomimic(path: str | Path) -> RobomimicSource:
    """Reads the structure of the robomimic HDF5 file ``path``."""
    h5py = _h5py()
    path = Path(path)
    with _open(path) as f:
        data = f.get("data")
        demos = [
            k
            for k in (data.keys() if isinstance(data, h5py.Group) else ())
            if re.fullmatch(r"demo_\d+", k)
        ]
        if not demos:
            raise DataFileError(f"{str(path)!r} has no data/demo_* groups; expected robomimic HDF5")
        demos.sort(key=lambda k: int(k[5:]))
        first = data[demos[0]]
        keys = [f"obs/{k}" for k in first.get("obs", {}).keys()]
        keys += [k for k, v in first.items() if isinstance(v, h5py.Dataset)]
        features = []
        for key in keys:
            shape = first[key].shape
            size = shape[1] if len(shape) == 2 else 1 if len(shape) == 1 else 0
            features.append(Feature(key, int(size), None))
        return RobomimicSource(path, _control_freq(data), tuple(features), tuple(demos))


def read_episodes(
    source: RobomimicSource, features: tuple[Feature, ...], fps: float
) -> tuple[RawEpisode, ...]:
    """Every demo with the datasets of ``features`` as (L, size) float64 (HDF5 has no
    timestamps: ``fps`` is not checked)."""
    del fps
    episodes = []
    with _open(source.path) as f:
        for demo in source.demos:
            group = f["data"][demo]
            values = {}
            for feat in features:
                if feat.key not in group:
                    raise DataFileError(f"{str(source.path)!r}: data/{demo} has no {feat.key!r}")
                arr = np.asarray(group[feat.key], dtype=np.float64)
                values[feat.key] = arr.reshape(arr.shape[0], -1)
            lengths = {k: v.shape[0] for k, v in values.items()}
            if len(set(lengths.values())) > 1:
                raise DataFileError(
                    f"{str(source.path)!r}: data/{demo} has features of different lengths {lengths}"
                )
            episodes.append(RawEpisode(demo, values))
    return tuple(episodes)
