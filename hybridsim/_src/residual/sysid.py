"""System identification: log-scale multipliers on MjModel fields.

A field ``f`` is identified as ``f_nominal * exp(theta_f)``, ``theta_f`` of the field's own
shape (zero: the scene's nominal value). The multipliers are fitted by gradient through
differentiable MJX in the multi-step phase of ``fit``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hybridsim._src.errors import ShapeError
from hybridsim._src.loader import Scene

SYSID_FIELDS = (
    "dof_damping",
    "dof_frictionloss",
    "dof_armature",
    "body_mass",
    "actuator_gainprm",
    "geom_friction",
)


def check_fields(scene: Scene, fields: tuple[str, ...]) -> None:
    """Raises ShapeError for a field that is zero everywhere in the scene: a scale of it
    cannot change it."""
    zero = [k for k in fields if not np.any(getattr(scene.mj_model, k))]
    if zero:
        raise ShapeError(
            f"cannot identify {zero}: the scene's nominal value is zero everywhere, and "
            "identification fits a scale of it"
        )


def initial_theta(scene: Scene, fields: tuple[str, ...]) -> dict[str, jax.Array]:
    """Field -> zero log-multipliers (the field's shape, float): the nominal scene."""
    return {k: jnp.zeros(np.shape(getattr(scene.mj_model, k))) for k in fields}


def sysid_values(scene: Scene, theta: dict[str, Any]) -> dict[str, Any]:
    """Field -> ``nominal * exp(theta)`` (the field's shape); traceable in ``theta``."""
    m = scene.mj_model
    return {k: jnp.asarray(getattr(m, k)) * jnp.exp(v) for k, v in theta.items()}


def sysid_arrays(scene: Scene, theta: dict[str, Any]) -> dict[str, np.ndarray]:
    """``sysid_values`` as numpy arrays, for ``make_model(params=...)`` on MuJoCo C."""
    return {k: np.asarray(v) for k, v in sysid_values(scene, theta).items()}
