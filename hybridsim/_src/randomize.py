"""Domain randomization: ``(scene, key, B, config) -> WorldParams``, pure and deterministic.

Each randomized quantity has a ``Range``: a low/high interval, a mode (``scale``
multiplies the scene's value, ``add`` adds to it, ``set`` replaces it) and a distribution
(``uniform`` or ``loguniform``). Every element (each geom, body, dof, ...) of every world
draws its own sample. The result plugs into ``make_model(..., params=...)`` on every
backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from hybridsim._src.errors import ShapeError
from hybridsim._src.params import WorldParams, _check_fields, com_movable, model_field

MODES = ("scale", "add", "set")
DISTS = ("uniform", "loguniform")


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval to sample from, and how a sample changes the scene's value.

    Attributes:
      low: lower end of the interval (units of the field for ``add``/``set``; a factor
        for ``scale``).
      high: upper end, ``>= low``.
      mode: ``"scale"`` (value * sample), ``"add"`` (value + sample), ``"set"`` (sample);
        ``None`` takes the field's default (see ``RandomizeConfig``).
      dist: ``"uniform"`` or ``"loguniform"`` (needs ``0 < low``).
    """

    low: float
    high: float
    mode: str | None = None
    dist: str = "uniform"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.high < self.low:
            raise ShapeError(f"range needs finite low <= high, got [{self.low}, {self.high}]")
        if self.mode is not None and self.mode not in MODES:
            raise ShapeError(f"range mode must be one of {MODES}, got {self.mode!r}")
        if self.dist not in DISTS:
            raise ShapeError(f"range dist must be one of {DISTS}, got {self.dist!r}")
        if self.dist == "loguniform" and self.low <= 0:
            raise ShapeError(f"a loguniform range needs low > 0, got {self.low}")

    @classmethod
    def from_value(cls, value: Any, name: str = "range") -> Range:
        """From ``[low, high]`` or ``{"low", "high", "mode"?, "dist"?}`` (a spec entry)."""
        if isinstance(value, Range):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"low", "high", "mode", "dist"}
            if unknown or not {"low", "high"} <= set(value):
                raise ShapeError(
                    f"{name}: expected keys low, high and optionally mode, dist; "
                    f"got {sorted(value)}"
                )
            return cls(
                float(value["low"]),
                float(value["high"]),
                value.get("mode"),
                value.get("dist", "uniform"),
            )
        if isinstance(value, list | tuple) and len(value) == 2:
            return cls(float(value[0]), float(value[1]))
        raise ShapeError(f"{name}: expected [low, high] or a table with low/high, got {value!r}")


# Config attribute -> (default mode, modes allowed, what it changes).
_FIELDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "friction": ("scale", MODES, "geom_friction[:, 0], sliding friction of every geom"),
    "mass": ("scale", MODES, "body_mass of every body but the world; inertia scales with it"),
    "com": ("add", ("add", "set"), "body_ipos (m) of bodies whose centre of mass may move"),
    "damping": ("scale", MODES, "dof_damping of every dof"),
    "armature": ("scale", MODES, "dof_armature of every dof"),
    "frictionloss": ("scale", MODES, "dof_frictionloss of every dof"),
    "actuator_gain": ("scale", MODES, "actuator_gainprm[:, 0] (and -kp in biasprm of servos)"),
    "gravity": ("add", MODES, "opt.gravity (m/s^2), each component"),
    "geom_rgb": ("add", MODES, "geom_rgba[:, :3], clipped to [0, 1]"),
    "mat_rgb": ("add", MODES, "mat_rgba[:, :3], clipped to [0, 1]"),
    "light_pos": ("add", ("add", "set"), "light_pos (m), each component"),
    "light_dir": ("add", ("add", "set"), "light_dir, each component, then renormalized"),
    "cam_pos": ("add", ("add", "set"), "cam_pos (m), each component"),
    "cam_rot": ("add", ("add",), "cam_quat: rotation by an angle (rad) about a random axis"),
}


@dataclasses.dataclass(frozen=True)
class RandomizeConfig:
    """Which model quantities to randomize across worlds, and how. ``None``: left as is.

    Default modes: ``scale`` for friction, mass, damping, armature, frictionloss and
    actuator_gain; ``add`` for com, gravity, colours, lights and camera pose.

    Attributes:
      friction: sliding friction of every geom (``geom_friction[:, 0]``).
      mass: mass of every body but the world (kg); its inertia scales by the same factor,
        so the body keeps its shape and density distribution.
      com: centre of mass offset in the body frame (m), of the bodies compiled with an
        offset centre of mass (``params.com_movable``); a body compiled with it at its
        origin (e.g. a free box) keeps it, as its compiled mass matrix has no room for it.
      damping: joint damping (``dof_damping``).
      armature: rotor inertia (``dof_armature``).
      frictionloss: dry joint friction (``dof_frictionloss``).
      actuator_gain: actuator gain ``gainprm[:, 0]``; for position servos (``biasprm[1]
        == -gainprm[0]``) the bias follows so the servo keeps its set point.
      gravity: ``opt.gravity`` components (m/s^2).
      geom_rgb: geom colour channels (alpha kept); clipped to [0, 1].
      mat_rgb: material colour channels (alpha kept); clipped to [0, 1].
      light_pos: light positions (m).
      light_dir: light directions, renormalized.
      cam_pos: camera positions (m).
      cam_rot: camera orientation: rotation by an angle (rad) from the range about a
        uniformly random axis.
    """

    friction: Range | None = None
    mass: Range | None = None
    com: Range | None = None
    damping: Range | None = None
    armature: Range | None = None
    frictionloss: Range | None = None
    actuator_gain: Range | None = None
    gravity: Range | None = None
    geom_rgb: Range | None = None
    mat_rgb: Range | None = None
    light_pos: Range | None = None
    light_dir: Range | None = None
    cam_pos: Range | None = None
    cam_rot: Range | None = None

    def __post_init__(self) -> None:
        for name, (_, allowed, _) in _FIELDS.items():
            r = getattr(self, name)
            if r is None:
                continue
            if not isinstance(r, Range):
                raise ShapeError(f"RandomizeConfig.{name} must be a Range or None, got {r!r}")
            if r.mode is not None and r.mode not in allowed:
                raise ShapeError(
                    f"RandomizeConfig.{name}: mode {r.mode!r} not allowed, use one of {allowed}"
                )

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> RandomizeConfig:
        """From a spec-file table, e.g. ``{"friction": [0.5, 1.5], "gravity": {"low": -1,
        "high": 1, "mode": "add"}}``."""
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            raise ShapeError(
                f"unknown randomization keys {sorted(unknown)}; known: {sorted(_FIELDS)}"
            )
        return cls(**{k: Range.from_value(v, k) for k, v in spec.items()})

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The spec-file table of this config (only the fields that are set)."""
        return {
            name: {
                "low": r.low,
                "high": r.high,
                "mode": self.mode_of(name),
                "dist": r.dist,
            }
            for name in _FIELDS
            if (r := getattr(self, name)) is not None
        }

    def mode_of(self, name: str) -> str:
        """The mode field ``name`` is applied with (its own, or the field's default)."""
        r = getattr(self, name)
        return r.mode if r is not None and r.mode is not None else _FIELDS[name][0]


def _streams(key: Any, names: list[str]) -> dict[str, np.random.Generator]:
    """One independent NumPy generator per field, all determined by the JAX key.

    Sampling in NumPy (not ``jax.random``) avoids compiling a JAX program per field shape.
    """
    import jax

    arr = jax.numpy.asarray(key)
    if jax.dtypes.issubdtype(arr.dtype, jax.dtypes.prng_key):
        arr = jax.random.key_data(arr)
    data = np.asarray(arr)
    if data.dtype.kind not in "iu" or data.size == 0:
        raise ShapeError(f"key must be a JAX PRNG key (jax.random.key(seed)), got {key!r}")
    seq = np.random.SeedSequence([int(x) for x in data.astype(np.uint64).ravel()])
    return dict(zip(names, (np.random.default_rng(c) for c in seq.spawn(len(names))), strict=True))


def _sample(rng: np.random.Generator, r: Range, shape: tuple[int, ...]) -> np.ndarray:
    u = rng.random(shape)
    if r.dist == "loguniform":
        return np.exp(np.log(r.low) + u * (np.log(r.high) - np.log(r.low)))
    return r.low + u * (r.high - r.low)


def _apply(base: np.ndarray, sample: np.ndarray, mode: str) -> np.ndarray:
    if mode == "scale":
        return base * sample
    if mode == "add":
        return base + sample
    return np.broadcast_to(sample, np.broadcast_shapes(base.shape, sample.shape)).copy()


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def randomize(scene: Any, key: Any, batch_size: int, config: RandomizeConfig) -> WorldParams:
    """Samples per-world model parameters for ``batch_size`` worlds.

    Args:
      scene: bundled scene name, MJCF path, ``MjModel`` or Scene.
      key: a JAX PRNG key (``jax.random.key(0)`` or ``PRNGKey(0)``); equal keys give
        equal parameters. The samples are drawn with NumPy generators seeded from the
        key's data (no JAX compilation), each field from its own stream.
      batch_size: B, the number of worlds.
      config: which quantities to randomize and how.

    Returns:
      ``WorldParams`` with a ``(B, *field.shape)`` float64 array per changed MjModel field,
      for ``make_model(scene, B, params=...)``.
    """
    from hybridsim._src.loader import load_scene

    if not isinstance(config, RandomizeConfig):
        raise ShapeError(f"config must be a RandomizeConfig, got {type(config).__name__}")
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ShapeError(f"batch_size must be a positive int, got {batch_size!r}")
    m = load_scene(scene).mj_model
    bsz = int(batch_size)
    names = list(_FIELDS)
    keys = _streams(key, names)
    out: dict[str, np.ndarray] = {}

    def base(field: str) -> np.ndarray:
        if field not in out:
            value = np.asarray(model_field(m, field), dtype=np.float64)
            out[field] = np.tile(value, (bsz,) + (1,) * value.ndim)
        return out[field]

    def draw(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return _sample(keys[name], getattr(config, name), (bsz, *shape))

    def per_element(name: str, field: str, column: Any = Ellipsis, clip: bool = False) -> None:
        if getattr(config, name) is None:
            return
        arr = base(field)
        target = arr[:, :, column] if column is not Ellipsis else arr
        new = _apply(target, draw(name, target.shape[1:]), config.mode_of(name))
        if clip:
            new = np.clip(new, 0.0, 1.0)
        if column is Ellipsis:
            arr[...] = new
        else:
            arr[:, :, column] = new

    per_element("friction", "geom_friction", 0)
    if config.mass is not None and m.nbody > 1:
        mass, inertia = base("body_mass"), base("body_inertia")
        old = mass[:, 1:].copy()
        new = np.maximum(_apply(old, draw("mass", (m.nbody - 1,)), config.mode_of("mass")), 0.0)
        ratio = np.divide(new, old, out=np.ones_like(new), where=old > 0)
        mass[:, 1:] = new
        inertia[:, 1:] *= ratio[..., None]
    movable = com_movable(m)
    movable[0] = False
    if config.com is not None and movable.any():
        ipos = base("body_ipos")
        new = _apply(ipos, draw("com", (m.nbody, 3)), config.mode_of("com"))
        ipos[...] = np.where(movable[:, None], new, ipos)
    per_element("damping", "dof_damping")
    per_element("armature", "dof_armature")
    per_element("frictionloss", "dof_frictionloss")
    if config.actuator_gain is not None and m.nu > 0:
        gain = base("actuator_gainprm")
        new = _apply(gain[:, :, 0], draw("actuator_gain", (m.nu,)), config.mode_of("actuator_gain"))
        gain[:, :, 0] = new
        servo = np.isclose(m.actuator_biasprm[:, 1], -m.actuator_gainprm[:, 0])
        servo &= m.actuator_gainprm[:, 0] != 0
        if servo.any():  # position servos keep their set point: biasprm[1] = -kp
            bias = base("actuator_biasprm")
            bias[:, :, 1] = np.where(servo, -new, bias[:, :, 1])
    per_element("gravity", "opt.gravity")
    if m.ngeom:
        per_element("geom_rgb", "geom_rgba", slice(0, 3), clip=True)
    if m.nmat:
        per_element("mat_rgb", "mat_rgba", slice(0, 3), clip=True)
    if m.nlight:
        per_element("light_pos", "light_pos")
        if config.light_dir is not None:
            per_element("light_dir", "light_dir")
            d = base("light_dir")
            norm = np.linalg.norm(d, axis=-1, keepdims=True)
            d[...] = np.where(norm > 1e-9, d / np.maximum(norm, 1e-9), np.asarray(m.light_dir))
    if m.ncam:
        per_element("cam_pos", "cam_pos")
        if config.cam_rot is not None:
            axis = keys["cam_rot"].normal(size=(bsz, m.ncam, 3))
            axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
            angle = _sample(keys["cam_rot"], config.cam_rot, (bsz, m.ncam))
            dq = np.concatenate(
                [np.cos(angle / 2)[..., None], np.sin(angle / 2)[..., None] * axis], axis=-1
            )
            quat = base("cam_quat")
            q = _quat_mul(dq, quat)  # rotate in the parent frame
            quat[...] = q / np.linalg.norm(q, axis=-1, keepdims=True)
    if not out:
        raise ShapeError(
            "randomization config changes nothing for this scene; set at least one range "
            f"of {sorted(_FIELDS)} that the scene has elements for"
        )
    return _check_fields(m, bsz, out)


def load_randomize_config(path: Any) -> RandomizeConfig:
    """A ``RandomizeConfig`` from a file: a ``.json``/``.toml`` table of ranges, or a scene
    spec whose ``[randomize]`` table holds them."""
    import json
    import tomllib
    from pathlib import Path

    from hybridsim._src.errors import DataFileError

    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as e:
        raise DataFileError(f"randomization file {str(path)!r}: cannot read it ({e})") from None
    if not isinstance(data, dict):
        raise DataFileError(f"randomization file {str(path)!r}: expected a table of ranges")
    if "randomize" in data:
        data = data["randomize"]
    try:
        return RandomizeConfig.from_dict(data)
    except ShapeError as e:
        raise DataFileError(f"randomization file {str(path)!r}: {e}") from None
