"""Position integration and differences in velocity (tangent) space, in JAX and NumPy.

Free and ball joints carry unit quaternions in qpos; corrections are expressed in velocity
space (nv numbers) and integrated, so quaternions stay unit length.
"""

from __future__ import annotations

import mujoco
import numpy as np


def _quat_mul(xp, a, b):
    w1, x1, y1, z1 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    w2, x2, y2, z2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def _quat_integrate(xp, q, omega):
    """q (..., 4) rotated by the body-frame rotation vector omega (..., 3)."""
    angle = xp.sqrt(xp.sum(omega * omega, axis=-1, keepdims=True) + 1e-24)
    axis = omega / angle
    half = 0.5 * angle
    dq = xp.concatenate([xp.cos(half), axis * xp.sin(half)], axis=-1)
    out = _quat_mul(xp, q, dq)
    return out / xp.sqrt(xp.sum(out * out, axis=-1, keepdims=True))


def joint_layout(m: mujoco.MjModel) -> list[tuple[int, int, int]]:
    """(joint type, qpos address, dof address) of every joint."""
    return [
        (int(m.jnt_type[j]), int(m.jnt_qposadr[j]), int(m.jnt_dofadr[j])) for j in range(m.njnt)
    ]


def joint_sizes(jtype: int) -> tuple[int, int]:
    """(qpos entries, qvel entries) of a joint of MuJoCo type ``jtype``."""
    if jtype == mujoco.mjtJoint.mjJNT_FREE:
        return 7, 6
    if jtype == mujoco.mjtJoint.mjJNT_BALL:
        return 4, 3
    return 1, 1


def integrate_pos(xp, layout, qpos, dq):
    """qpos (..., nq) moved by the velocity-space displacement dq (..., nv)."""
    parts = []
    for jtype, qa, da in layout:
        if jtype == mujoco.mjtJoint.mjJNT_FREE:
            parts.append(qpos[..., qa : qa + 3] + dq[..., da : da + 3])
            parts.append(_quat_integrate(xp, qpos[..., qa + 3 : qa + 7], dq[..., da + 3 : da + 6]))
        elif jtype == mujoco.mjtJoint.mjJNT_BALL:
            parts.append(_quat_integrate(xp, qpos[..., qa : qa + 4], dq[..., da : da + 3]))
        else:
            parts.append(qpos[..., qa : qa + 1] + dq[..., da : da + 1])
    return xp.concatenate(parts, axis=-1) if parts else qpos


def differentiate_pos(m: mujoco.MjModel, qpos1: np.ndarray, qpos2: np.ndarray) -> np.ndarray:
    """Velocity-space displacement (..., nv) that takes qpos1 to qpos2 (MuJoCo C)."""
    a = np.asarray(qpos1, np.float64).reshape(-1, m.nq)
    b = np.asarray(qpos2, np.float64).reshape(-1, m.nq)
    out = np.empty((a.shape[0], m.nv))
    for i in range(a.shape[0]):
        mujoco.mj_differentiatePos(m, out[i], 1.0, a[i], b[i])
    return out.reshape(*np.shape(qpos1)[:-1], m.nv)
