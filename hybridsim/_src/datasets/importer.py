"""Importing real robot logs into the interchange format (``hybridsim._src.io``).

Sources, detected from ``src``: a LeRobot v3 dataset folder (``meta/info.json``,
``lerobot_read``), a robomimic-style ``.hdf5``/``.h5`` file (``robomimic``) or a hybridsim
``.npz`` (checked and completed with the optional keys).

A log episode of L frames, frame t holding the state before the action of frame t, becomes
L states and L-1 control steps: ``qpos[0..L-1]``, ``ctrl[t] = action[t]`` for t < L-1 (the
last frame's action has no successor state and is dropped). Episodes are padded to the
longest by repeating their last valid value; ``episode_len`` says how many control steps
each has. Episodes of fewer than 2 frames are skipped and reported.

Mapping: each entry of the state feature is matched by name (after ``joint_map``) to a
qpos entry of the scene (``names.qpos_names``: ``shoulder``, ``cube.x`` ...); a joint is
observed when all of its qpos entries are. Each entry of the action feature is matched to
the actuator of that name (after ``action_map``), else to the one actuator whose
transmission is the joint of that name (after ``joint_map``). Every actuator needs an
action. Joints not observed hold the scene's initial state (keyframe 0) with zero
velocity and are marked in ``qpos_observed``/``qvel_observed``.

Velocities come from a velocity feature when one is given (``velocity_key``) or found (a
feature whose key contains ``vel`` and whose names are exactly the qvel entries of the
observed joints), else from ``velocity.estimate_qvel``. Estimated velocities of observed
joints count as observed.

Units: ``units="deg"`` converts hinge positions and velocities to radians; slides, free
and ball joints and actions are taken as they are.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import mujoco
import numpy as np

from hybridsim._src.datasets import names as entry_names
from hybridsim._src.datasets.timing import Timing, choose_timing
from hybridsim._src.datasets.velocity import estimate_qvel
from hybridsim._src.errors import DataFileError

_BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
_VELOCITY_METHOD = (
    "estimated from positions: central differences through mj_differentiatePos, "
    "second-order one-sided at both ends"
)


def _pairs(value, what: str) -> tuple[tuple[str, str], ...]:
    """Name pairs from ``((a, b), ...)`` or ``{a: b}``."""
    items = value.items() if isinstance(value, dict) else value
    if isinstance(items, str):
        raise DataFileError(f"{what} must be (name, name) pairs, found {value!r}")
    pairs = tuple(tuple(p) for p in items)
    if any(len(p) != 2 or not all(isinstance(s, str) and s for s in p) for p in pairs):
        raise DataFileError(f"{what} must be (name, name) pairs, found {value!r}")
    keys = [a for a, _ in pairs]
    if len(set(keys)) != len(keys):
        raise DataFileError(f"{what} maps a name twice: {keys}")
    return pairs


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """How to read a log (module docstring)."""

    state_key: str = "observation.state"
    """Feature holding joint positions (HDF5: ``obs/<key>`` or ``<key>``)."""
    action_key: str = "action"
    """Feature holding the actions (HDF5: ``action`` reads ``actions``)."""
    velocity_key: str | None = None
    """Feature holding joint velocities; None: found by name, else estimated."""
    joint_map: tuple[tuple[str, str], ...] = ()
    """``(dataset name, scene qpos entry)`` pairs for names that differ."""
    action_map: tuple[tuple[str, str], ...] = ()
    """``(dataset name, scene actuator)`` pairs for names that differ."""
    units: Literal["rad", "deg"] = "rad"
    """Units of hinge positions and velocities in the log."""
    fps: float | None = None
    """Frames per second; overrides the source's rate, needed when it has none."""
    state_names: tuple[str, ...] = ()
    """Names of the state entries for sources without names (robomimic); overrides."""

    def __post_init__(self):
        for field in ("state_key", "action_key"):
            if not (isinstance(getattr(self, field), str) and getattr(self, field)):
                raise DataFileError(
                    f"{field} must be a feature name, found {getattr(self, field)!r}"
                )
        if self.velocity_key is not None and not (
            isinstance(self.velocity_key, str) and self.velocity_key
        ):
            raise DataFileError(
                f"velocity_key must be a feature name or None: {self.velocity_key!r}"
            )
        object.__setattr__(self, "joint_map", _pairs(self.joint_map, "joint_map"))
        object.__setattr__(self, "action_map", _pairs(self.action_map, "action_map"))
        if self.units not in ("rad", "deg"):
            raise DataFileError(f"units must be 'rad' or 'deg', found {self.units!r}")
        if self.fps is not None and not (
            isinstance(self.fps, int | float) and math.isfinite(self.fps) and self.fps > 0
        ):
            raise DataFileError(f"fps must be a positive number, found {self.fps!r}")
        if isinstance(self.state_names, str):
            raise DataFileError(f"state_names must be a tuple of names: {self.state_names!r}")
        names = tuple(self.state_names)
        if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise DataFileError(f"state_names must be distinct non-empty names: {names!r}")
        object.__setattr__(self, "state_names", names)


@dataclasses.dataclass(frozen=True)
class Feature:
    """One per-frame feature of a source."""

    key: str
    size: int
    """Entries per frame; 0 for anything that is not a numeric vector (images, text)."""
    names: tuple[str, ...] | None
    """Names of the entries (None: the source has none)."""


@dataclasses.dataclass(frozen=True)
class RawEpisode:
    """One episode as a reader returns it."""

    label: str
    """How errors and the report name it, e.g. ``episode 3`` or ``demo_5``."""
    values: dict[str, np.ndarray]
    """Feature key -> (L, size) float64, frames in order."""


@dataclasses.dataclass(frozen=True)
class ImportReport:
    """What an import did, for the user (``lines()``) and ``import_info``."""

    source: str
    format: str
    episodes: int
    """Episodes written."""
    frames: int
    """Valid frames written (sum of ``episode_len + 1``)."""
    fps: float
    timing: Timing
    scene_timestep: float
    joint_mapping: tuple[tuple[str, str], ...]
    """``(dataset name, scene qpos entry)`` per state entry."""
    actuator_mapping: tuple[tuple[str, str], ...]
    """``(dataset name, scene actuator)`` per actuator."""
    unobserved: tuple[str, ...]
    """Scene joints not in the log, e.g. ``cube (free)``."""
    ignored: tuple[str, ...]
    """Features read by nothing."""
    velocity: str
    """Where qvel came from."""
    skipped: tuple[str, ...]
    """Episodes left out, with why."""
    units: str = "rad"

    def lines(self) -> list[str]:
        t = self.timing
        arrows = lambda pairs: ", ".join(a if a == b else f"{a} -> {b}" for a, b in pairs)  # noqa: E731
        out = [
            f"source {self.source} ({self.format}): {self.episodes} episodes, "
            f"{self.frames} frames at {self.fps:g} Hz",
            f"timing: control_dt {t.control_dt:.6g} s = {t.substeps} x timestep "
            f"{t.timestep:.6g} s (scene timestep {self.scene_timestep:g} s)",
            f"joints ({self.units}): {arrows(self.joint_mapping)}",
            f"actuators: {arrows(self.actuator_mapping)}",
            f"velocities: {self.velocity}",
        ]
        if self.unobserved:
            out.append(
                f"not observed: {', '.join(self.unobserved)} (held at the scene's initial "
                "state, never scored)"
            )
        if self.ignored:
            out.append(f"ignored features: {', '.join(self.ignored)}")
        if self.skipped:
            out.append(f"skipped episodes: {', '.join(self.skipped)}")
        return out

    def to_json(self) -> str:
        info = dataclasses.asdict(self)
        return json.dumps(info)


@dataclasses.dataclass(frozen=True)
class Imported:
    """An imported log: the interchange arrays and what the import did."""

    arrays: dict[str, np.ndarray]
    """Interchange keys (``hybridsim._src.io``): qpos, qvel, ctrl, control_dt, episode_len,
    timestep, substeps, qpos_observed, qvel_observed, import_info (and, from an ``.npz``
    source, whatever else it held)."""
    report: ImportReport


# --------------------------------------------------------------------------- mapping


@dataclasses.dataclass(frozen=True)
class _JointMap:
    """Where the state (and velocity) entries go in qpos (qvel)."""

    qpos_index: np.ndarray
    """(ds,) int, the qpos entry of each state entry."""
    qpos_scale: np.ndarray
    """(ds,) float, unit conversion per state entry."""
    qpos_observed: np.ndarray
    """(nq,) bool."""
    qvel_observed: np.ndarray
    """(nv,) bool."""
    pairs: tuple[tuple[str, str], ...]


def _is_hinge_entry(m: mujoco.MjModel, joint: int) -> bool:
    return int(m.jnt_type[joint]) == mujoco.mjtJoint.mjJNT_HINGE


def _map_joints(
    m: mujoco.MjModel, state: Feature, names: tuple[str, ...], config: ImportConfig, scene: str
) -> _JointMap:
    qnames = entry_names.qpos_names(m)
    qindex = {n: i for i, n in enumerate(qnames)}
    jmap = dict(config.joint_map)
    stray = sorted(set(jmap) - set(names))
    if stray:
        raise DataFileError(
            f"joint map names {stray} are not entries of {state.key!r}; its names are {list(names)}"
        )
    targets = [jmap.get(n, n) for n in names]
    unmatched = [n for n, t in zip(names, targets, strict=True) if t not in qindex]
    if unmatched:
        raise DataFileError(
            f"{state.key!r} names {unmatched} match no joint entry of scene {scene!r}; its "
            f"entries are {qnames}; map them with --joint-map NAME=JOINT"
        )
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise DataFileError(f"{state.key!r}: several entries map to scene entries {dup}")
    index = np.array([qindex[t] for t in targets], dtype=np.int64)
    of_qpos = np.array(entry_names.joint_of_qpos(m), dtype=np.int64)
    observed_joints = sorted({int(of_qpos[i]) for i in index})
    qpos_observed = np.isin(of_qpos, observed_joints)
    partial = [j for j in observed_joints if not set(np.flatnonzero(of_qpos == j)) <= set(index)]
    if partial:
        j = partial[0]
        need = [qnames[i] for i in np.flatnonzero(of_qpos == j)]
        kind = "free" if int(m.jnt_type[j]) == mujoco.mjtJoint.mjJNT_FREE else "ball"
        raise DataFileError(
            f"{kind} joint {entry_names.joint_name(m, j)!r} is partially observed in "
            f"{state.key!r}: found {[t for t in targets if t in need]}, it needs all of {need}"
        )
    scale = _entry_scale(m, index, config, "qpos")
    qvel_observed = np.isin(np.array(entry_names.joint_of_qvel(m)), observed_joints)
    return _JointMap(
        index, scale, qpos_observed, qvel_observed, tuple(zip(names, targets, strict=True))
    )


def _map_actions(
    m: mujoco.MjModel, action: Feature, config: ImportConfig, scene: str
) -> tuple[np.ndarray, tuple[tuple[str, str], ...]]:
    """(nu,) the action column of each actuator, and ``(action name, actuator)`` pairs."""
    actuators = entry_names.actuator_names(m)
    if action.names is None:
        if action.size != m.nu:
            raise DataFileError(
                f"{action.key!r} has {action.size} unnamed entries; scene {scene!r} has "
                f"{m.nu} actuators {actuators}: they are matched in order only when the sizes "
                "are equal"
            )
        return np.arange(m.nu), tuple(zip(actuators, actuators, strict=True))
    amap, jmap = dict(config.action_map), dict(config.joint_map)
    stray = sorted(set(amap) - set(action.names))
    if stray:
        raise DataFileError(
            f"action map names {stray} are not entries of {action.key!r}; its names are "
            f"{list(action.names)}"
        )
    driven: dict[str, list[str]] = {}
    for i in range(m.nu):
        if int(m.actuator_trntype[i]) == mujoco.mjtTrn.mjTRN_JOINT:
            joint = entry_names.joint_name(m, int(m.actuator_trnid[i, 0]))
            driven.setdefault(joint, []).append(actuators[i])
    targets = []
    for n in action.names:
        t = amap.get(n, n)
        if t not in actuators and len(driven.get(jmap.get(n, n), [])) == 1:
            t = driven[jmap.get(n, n)][0]
        targets.append(t)
    unmatched = [n for n, t in zip(action.names, targets, strict=True) if t not in actuators]
    if unmatched:
        raise DataFileError(
            f"{action.key!r} names {unmatched} match no actuator of scene {scene!r} (nor a "
            f"joint one drives); its actuators are {actuators}; map them with --action-map "
            "NAME=ACTUATOR"
        )
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise DataFileError(f"{action.key!r}: several entries map to actuators {dup}")
    missing = [a for a in actuators if a not in targets]
    if missing:
        raise DataFileError(
            f"actuators {missing} of scene {scene!r} have no action in {action.key!r} (its "
            f"names are {list(action.names)}); map them with --action-map NAME=ACTUATOR"
        )
    column = np.array([targets.index(a) for a in actuators], dtype=np.int64)
    return column, tuple((action.names[c], a) for c, a in zip(column, actuators, strict=True))


def _velocity_index(
    m: mujoco.MjModel,
    feature: Feature,
    names: tuple[str, ...] | None,
    joints: _JointMap,
    config: ImportConfig,
) -> np.ndarray | None:
    """(dv,) the qvel entry of each entry of ``feature``, or None when its names are not
    exactly the qvel entries of the observed joints."""
    names = feature.names or names
    if names is None or len(names) != feature.size:
        return None
    vnames = entry_names.qvel_names(m)
    jmap = dict(config.joint_map)
    targets = [jmap.get(n, n) for n in names]
    want = {vnames[i] for i in np.flatnonzero(joints.qvel_observed)}
    if sorted(targets) != sorted(want):
        return None
    return np.array([vnames.index(t) for t in targets], dtype=np.int64)


# --------------------------------------------------------------------------- sources


def _source_kind(src: Path) -> str:
    if src.is_dir():
        return "lerobot"
    if not src.exists():
        raise DataFileError(f"source {str(src)!r} does not exist")
    suffix = src.suffix.lower()
    if suffix in (".hdf5", ".h5"):
        return "hdf5"
    if suffix == ".npz":
        return "npz"
    raise DataFileError(
        f"source {str(src)!r}: expected a LeRobot v3 folder, a .hdf5/.h5 file or a .npz"
    )


def _require(source, key: str, what: str) -> Feature:
    feature = source.feature(key)
    if feature is None:
        raise DataFileError(
            f"{str(source.path)!r} has no {what} feature {key!r}; its features are "
            f"{[f.key for f in source.features]}"
        )
    if feature.size == 0:
        raise DataFileError(f"{what} feature {key!r} is not a numeric vector per frame")
    return feature


def _state_names(m: mujoco.MjModel, state: Feature, config: ImportConfig, scene: str):
    names = config.state_names or state.names
    if names is not None:
        if len(names) != state.size:
            raise DataFileError(
                f"{state.key!r} has {state.size} entries but {len(names)} names {list(names)}"
            )
        return tuple(names)
    simple = [
        entry_names.joint_name(m, j)
        for j in range(m.njnt)
        if int(m.jnt_type[j]) in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
    ]
    if len(simple) != state.size:
        raise DataFileError(
            f"{state.key!r} has {state.size} unnamed entries and scene {scene!r} has "
            f"{len(simple)} hinge/slide joints {simple}; name the entries with --state-names"
        )
    return tuple(simple)


def _pick_velocity(source, m, state_names, joints, config, used) -> tuple[Feature | None, object]:
    if config.velocity_key is not None:
        feature = _require(source, config.velocity_key, "velocity")
        index = _velocity_index(m, feature, state_names, joints, config)
        if index is None:
            want = [
                n for n, o in zip(entry_names.qvel_names(m), joints.qvel_observed, strict=True) if o
            ]
            raise DataFileError(
                f"velocity feature {feature.key!r} names {list(feature.names or state_names)} "
                f"must be the qvel entries of the observed joints {want}"
            )
        return feature, index
    found = []
    for f in source.features:
        if f.key in used or f.key in _BOOKKEEPING or "vel" not in f.key.lower() or not f.names:
            continue
        index = _velocity_index(m, f, None, joints, config)
        if index is not None:
            found.append((f, index))
    if len(found) > 1:
        raise DataFileError(
            f"several velocity features {[f.key for f, _ in found]}: choose one with --velocity"
        )
    return found[0] if found else (None, None)


def _check_finite(episode: RawEpisode) -> None:
    for key, v in episode.values.items():
        bad = ~np.isfinite(v)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise DataFileError(
                f"{episode.label}, frame {frame}: feature {key!r} is not finite "
                f"({v[frame].tolist()})"
            )


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    """``x (L, d)`` padded to ``(n, d)`` by repeating its last row."""
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def import_dataset(
    src: str | Path,
    scene,
    config: ImportConfig = ImportConfig(),
    progress: Callable[[str], None] | None = None,
) -> Imported:
    """Reads the log ``src`` (module docstring) for ``scene`` (a Scene or anything
    ``load_scene`` takes) into interchange arrays. Bad input raises DataFileError before
    anything is returned."""
    from hybridsim._src.loader import Scene, load_scene

    say = progress or (lambda _message: None)
    scene = scene if isinstance(scene, Scene) else load_scene(scene)
    src = Path(src)
    kind = _source_kind(src)
    if kind == "npz":
        return _import_npz(src, scene, config)
    if kind == "lerobot":
        from hybridsim._src.datasets import lerobot_read as reader

        source = reader.open_lerobot(src)
    else:
        from hybridsim._src.datasets import robomimic as reader

        source = reader.open_robomimic(src)
    fps = config.fps or source.fps
    if fps is None:
        raise DataFileError(f"{str(src)!r} does not say its frame rate; give it with --fps")
    m = scene.mj_model
    state = _require(source, config.state_key, "state")
    action = _require(source, config.action_key, "action")
    state_names = _state_names(m, state, config, scene.name)
    joints = _map_joints(m, state, state_names, config, scene.name)
    act_column, act_pairs = _map_actions(m, action, config, scene.name)
    velocity, vel_index = _pick_velocity(
        source, m, state_names, joints, config, {state.key, action.key}
    )
    used = (state, action) + ((velocity,) if velocity is not None else ())
    say(f"reading {src} ({source.format})")
    kept, skipped = _usable_episodes(reader.read_episodes(source, used, fps), used, str(src))
    timing = choose_timing(1.0 / fps, scene.timestep)
    say(f"mapping {len(kept)} episodes onto scene {scene.name!r}")
    qpos0 = scene.initial_state()[0]
    vel_scale = None if velocity is None else _entry_scale(m, vel_index, config, "qvel")
    episodes = []
    for ep in kept:
        n = ep.values[state.key].shape[0]
        q = np.tile(qpos0, (n, 1))
        q[:, joints.qpos_index] = ep.values[state.key] * joints.qpos_scale
        if velocity is None:
            v = estimate_qvel(m, q, timing.control_dt)
        else:
            v = np.zeros((n, m.nv))
            v[:, vel_index] = ep.values[velocity.key] * vel_scale
        v[:, ~joints.qvel_observed] = 0.0
        episodes.append((q, v, ep.values[action.key][: n - 1, act_column]))
    report = ImportReport(
        source=str(src),
        format=source.format,
        episodes=len(episodes),
        frames=sum(len(q) for q, _, _ in episodes),
        fps=float(fps),
        timing=timing,
        scene_timestep=float(scene.timestep),
        joint_mapping=joints.pairs,
        actuator_mapping=act_pairs,
        unobserved=_unobserved(m, joints.qpos_observed),
        ignored=tuple(
            f.key
            for f in source.features
            if f.key not in {u.key for u in used} and f.key not in _BOOKKEEPING
        ),
        velocity=_VELOCITY_METHOD if velocity is None else f"feature {velocity.key!r}",
        skipped=tuple(f"{ep.label} ({len(ep.values[state.key])} frame)" for ep in skipped),
        units=config.units,
    )
    return Imported(_interchange(episodes, timing, joints, report), report)


def _usable_episodes(raw: tuple[RawEpisode, ...], used: tuple[Feature, ...], src: str):
    """``(kept, skipped)``: every value checked finite and of the feature's width; episodes
    of fewer than 2 frames skipped."""
    kept, skipped = [], []
    for ep in raw:
        _check_finite(ep)
        for f in used:
            if ep.values[f.key].shape[1] != f.size:
                raise DataFileError(
                    f"{ep.label}: feature {f.key!r} has {ep.values[f.key].shape[1]} entries "
                    f"per frame, expected {f.size}"
                )
        (kept if len(ep.values[used[0].key]) >= 2 else skipped).append(ep)
    if not kept:
        raise DataFileError(f"{src!r} is an empty dataset: no episode has 2 frames or more")
    return kept, skipped


def _entry_scale(m: mujoco.MjModel, index: np.ndarray, config: ImportConfig, kind: str):
    """(len(index),) the factor to radians of qpos/qvel entries ``index``: pi/180 for hinge
    entries when ``config.units == "deg"``, else 1."""
    of = entry_names.joint_of_qpos(m) if kind == "qpos" else entry_names.joint_of_qvel(m)
    deg = config.units == "deg"
    return np.array([math.pi / 180 if deg and _is_hinge_entry(m, of[i]) else 1.0 for i in index])


def _unobserved(m: mujoco.MjModel, qpos_observed: np.ndarray) -> tuple[str, ...]:
    """``joint (kind)`` of every joint whose qpos entries are not observed."""
    first = {j: i for i, j in reversed(list(enumerate(entry_names.joint_of_qpos(m))))}
    return tuple(
        f"{entry_names.joint_name(m, j)} ({_JOINT_KIND[int(m.jnt_type[j])]})"
        for j in range(m.njnt)
        if not qpos_observed[first[j]]
    )


def _interchange(episodes, timing: Timing, joints: _JointMap, report: ImportReport):
    """The interchange arrays of ``episodes`` ``[(qpos (L, nq), qvel (L, nv),
    ctrl (L-1, nu))]``, padded to the longest."""
    lens = np.array([len(u) for _, _, u in episodes], dtype=np.int64)
    t = int(lens.max())
    return {
        "qpos": np.stack([_pad(q, t + 1) for q, _, _ in episodes]),
        "qvel": np.stack([_pad(v, t + 1) for _, v, _ in episodes]),
        "ctrl": np.stack([_pad(u, t) for _, _, u in episodes]),
        "control_dt": np.asarray(timing.control_dt, dtype=np.float64),
        "episode_len": lens,
        "timestep": np.asarray(timing.timestep, dtype=np.float64),
        "substeps": np.asarray(timing.substeps, dtype=np.int64),
        "qpos_observed": joints.qpos_observed.astype(bool),
        "qvel_observed": joints.qvel_observed.astype(bool),
        "import_info": np.asarray(report.to_json()),
    }


_JOINT_KIND = {
    mujoco.mjtJoint.mjJNT_FREE: "free",
    mujoco.mjtJoint.mjJNT_BALL: "ball",
    mujoco.mjtJoint.mjJNT_SLIDE: "slide",
    mujoco.mjtJoint.mjJNT_HINGE: "hinge",
}


def _import_npz(src: Path, scene, config: ImportConfig) -> Imported:
    """A hybridsim ``.npz``: checked with ``load_trajectory``, given every optional key."""
    from hybridsim._src.io import load_trajectory

    changed = [
        f.name for f in dataclasses.fields(ImportConfig) if getattr(config, f.name) != f.default
    ]
    if changed:
        raise DataFileError(
            f"options {changed} do not apply to an .npz source; it is already in scene units"
        )
    data = load_trajectory(src, scene)
    arrays = dict(data)
    for key in ("qpos", "qvel", "ctrl"):
        arrays[key] = data[key].astype(np.float64)
    n, t = data["ctrl"].shape[:2]
    control_dt = float(data["control_dt"])
    if "timestep" in data:
        timing = Timing(control_dt, float(data["timestep"]), int(data["substeps"]))
    else:
        timing = choose_timing(control_dt, scene.timestep)
    arrays["control_dt"] = np.asarray(control_dt)
    arrays["timestep"] = np.asarray(timing.timestep, dtype=np.float64)
    arrays["substeps"] = np.asarray(timing.substeps, dtype=np.int64)
    lens = data.get("episode_len", np.full(n, t)).astype(np.int64)
    arrays["episode_len"] = lens
    arrays.setdefault("qpos_observed", np.ones(scene.nq, dtype=bool))
    arrays.setdefault("qvel_observed", np.ones(scene.nv, dtype=bool))
    m = scene.mj_model
    qn = entry_names.qpos_names(m)
    observed = arrays["qpos_observed"]
    report = ImportReport(
        source=str(src),
        format="hybridsim npz",
        episodes=int(n),
        frames=int((lens + 1).sum()),
        fps=1.0 / control_dt,
        timing=timing,
        scene_timestep=float(scene.timestep),
        joint_mapping=tuple((q, q) for q, o in zip(qn, observed, strict=True) if o),
        actuator_mapping=tuple((a, a) for a in entry_names.actuator_names(m)),
        unobserved=_unobserved(m, observed),
        ignored=(),
        velocity="from the file",
        skipped=(),
    )
    arrays["import_info"] = np.asarray(report.to_json())
    return Imported(arrays, report)


# --------------------------------------------------------------------------- writing


def check_out(out: str | Path, src: str | Path) -> Path:
    """Checks ``out`` can take the import of ``src`` before any work: not the input file,
    not inside the input folder, not an existing non-regular file, in a writable place."""
    out, src = Path(out), Path(src)
    target, source = out.resolve(), src.resolve()
    if target == source or (src.is_dir() and source in target.parents):
        raise DataFileError(f"--out {str(out)!r} would write into the input {str(src)!r}")
    if out.exists() and not out.is_file():
        raise DataFileError(f"--out {str(out)!r} exists and is not a regular file")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise DataFileError(f"--out {str(out)!r}: {str(parent)!r} is not a writable folder")
    return out


def write_imported(imported: Imported, out: str | Path) -> Path:
    """Writes ``imported.arrays`` to ``out`` atomically (``check_out`` first)."""
    from hybridsim._src.io import atomic_path

    out = check_out(out, imported.report.source)
    with atomic_path(out, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **imported.arrays)
    return out
