"""Per-world model parameters: the B worlds of a batch may differ in physics."""

from __future__ import annotations

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
    from hybridsim._src.scene import load_scene

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
        out[name] = np.ascontiguousarray(arr)
    return WorldParams(fields=out)
