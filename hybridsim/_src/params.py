"""Per-world model parameters: the B worlds of a batch may differ in physics."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.errors import ShapeError

# MjModel fields that every backend (MuJoCo C, MJX-JAX and MJX-Warp) can vary per world.
PER_WORLD_FIELDS: dict[str, str] = {
    "body_mass": "(B, nbody) kg",
    "body_inertia": "(B, nbody, 3) kg m^2, principal inertia",
    "body_ipos": "(B, nbody, 3) m, centre of mass in the body frame",
    "geom_friction": "(B, ngeom, 3): sliding, torsional, rolling",
    "dof_damping": "(B, nv) N s/m or N m s/rad",
    "dof_armature": "(B, nv) kg m^2",
    "dof_frictionloss": "(B, nv) N or N m",
    "jnt_stiffness": "(B, njnt) N/m or N m/rad",
    "actuator_gainprm": "(B, nu, 10) actuator gain parameters",
    "actuator_biasprm": "(B, nu, 10) actuator bias parameters",
    "opt.gravity": "(B, 3) m/s^2, gravity in the world frame",
    "geom_rgba": "(B, ngeom, 4) colour in [0, 1]",
    "mat_rgba": "(B, nmat, 4) material colour in [0, 1]",
    "light_pos": "(B, nlight, 3) m, in the parent body frame",
    "light_dir": "(B, nlight, 3) unit vector, in the parent body frame",
    "cam_pos": "(B, ncam, 3) m, in the parent body frame",
    "cam_quat": "(B, ncam, 4) unit quaternion (w, x, y, z), in the parent body frame",
}


def model_field(model: Any, name: str) -> Any:
    """The array ``name`` of an MjModel (or mjx.Model); dotted names reach into ``opt``."""
    obj = model
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


# Fields from which MuJoCo's ``mj_setConst`` derives constants, and the derived constants
# that MJX reads as model arrays. MuJoCo C reads e.g. ``body_subtreemass`` for gravity, and
# both backends read the inverse weights for constraint softness, so after a per-world edit
# of a field in CONST_INPUTS each world gets its own derived constants (``world_mj_model``
# for ``c``, ``derived_fields`` for ``mjx``/``warp``).
CONST_INPUTS = frozenset(
    {"body_mass", "body_inertia", "body_ipos", "dof_armature", "cam_pos", "light_pos"}
)
DERIVED_FIELDS = (
    "body_subtreemass",
    "body_invweight0",
    "dof_invweight0",
    "tendon_invweight0",
    "actuator_acc0",
    "dof_M0",
    "cam_poscom0",
    "light_poscom0",
)


@pytree_dataclass
class WorldParams:
    """Per-world overrides of MjModel fields, each shaped ``(B, *field.shape)``.

    Build with ``world_params(scene, B, dof_damping=..., ...)``; fields not given
    take the scene's value in every world.
    """

    fields: dict[str, Any]
    """Field name -> (B, ...) float array; names from ``PER_WORLD_FIELDS``."""

    @property
    def batch_size(self) -> int:
        first = next(iter(self.fields.values()))
        return int(np.shape(first)[0])


def world_params(scene: Any, batch_size: int, **fields: Any) -> WorldParams:
    """Checks and packs per-world parameters for ``scene``.

    Each keyword is a field from ``PER_WORLD_FIELDS`` with shape
    ``(batch_size, *mj_model.<field>.shape)``, or the field's own shape (broadcast).
    """
    from hybridsim._src.loader import load_scene

    scene = load_scene(scene)
    return _check_fields(scene.mj_model, batch_size, fields)


def _check_fields(mj_model: Any, batch_size: int, fields: Mapping[str, Any]) -> WorldParams:
    if not fields:
        raise ShapeError("world_params needs at least one field")
    out: dict[str, np.ndarray] = {}
    for name, value in fields.items():
        if name not in PER_WORLD_FIELDS:
            raise ShapeError(
                f"{name!r} cannot vary per world; fields that can: {sorted(PER_WORLD_FIELDS)}"
            )
        base = np.asarray(model_field(mj_model, name))
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape == base.shape:
            arr = np.broadcast_to(arr, (batch_size, *base.shape))
        if arr.shape != (batch_size, *base.shape):
            raise ShapeError(
                f"world parameter {name!r}: expected shape {(batch_size, *base.shape)} "
                f"(B, {PER_WORLD_FIELDS[name]}), got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ShapeError(f"world parameter {name!r} has non-finite values")
        if name == "body_ipos":
            _check_com_movable(mj_model, arr)
        out[name] = np.ascontiguousarray(arr)
    return WorldParams(fields=out)


def world_mj_model(mj_model: Any, fields: Mapping[str, np.ndarray], b: int) -> Any:
    """A copy of ``mj_model`` with world ``b``'s fields written and constants re-derived."""
    import mujoco

    mb = copy.deepcopy(mj_model)
    for name, value in fields.items():
        model_field(mb, name)[...] = value[b]
    if CONST_INPUTS & fields.keys():
        mujoco.mj_setConst(mb, mujoco.MjData(mb))
    return mb


def derived_fields(mj_model: Any, fields: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``(B, ...)`` derived constants (``DERIVED_FIELDS``) that differ from the scene's.

    Empty unless ``fields`` touch ``CONST_INPUTS``. Used by the ``mjx``/``warp`` backends,
    which cannot run ``mj_setConst`` per world themselves.
    """
    if not CONST_INPUTS & fields.keys():
        return {}
    bsz = int(np.shape(next(iter(fields.values())))[0])
    per_world = [world_mj_model(mj_model, fields, b) for b in range(bsz)]
    out = {}
    for name in DERIVED_FIELDS:
        stacked = np.stack([np.asarray(getattr(mb, name), np.float64) for mb in per_world])
        if not np.array_equal(stacked, np.broadcast_to(getattr(mj_model, name), stacked.shape)):
            out[name] = stacked
    return out


def com_movable(mj_model: Any) -> np.ndarray:
    """``(nbody,)`` bool: bodies whose centre of mass may move per world.

    MuJoCo compiles a body whose centre of mass sits at its origin (``body_sameframe ==
    1``, or a ``simple`` body) with a mass matrix that has no room for the coupling a
    moved centre of mass brings, on C and MJX alike; such a body needs an ``<inertial
    pos=...>`` offset in the MJCF before its centre of mass can vary.
    """
    return (np.asarray(mj_model.body_sameframe) != 1) & (np.asarray(mj_model.body_simple) == 0)


def _check_com_movable(mj_model: Any, ipos: np.ndarray) -> None:
    moved = np.any(ipos != np.asarray(mj_model.body_ipos), axis=(0, 2))
    bad = np.flatnonzero(moved & ~com_movable(mj_model))
    if bad.size:
        import mujoco

        names = [mujoco.mj_id2name(mj_model, mujoco.mjtObj.mjOBJ_BODY, int(i)) for i in bad]
        raise ShapeError(
            f"body_ipos: bodies {names} were compiled with their centre of mass at the body "
            "origin, so it cannot vary per world (the compiled mass matrix has no room for "
            "it); give them an <inertial pos=...> offset in the MJCF"
        )
