"""Joint velocities estimated from a sequence of joint positions.

Logs often record positions only. ``estimate_qvel`` recovers ``qvel`` from ``qpos`` sampled
every ``dt`` seconds with second-order finite differences taken on the joint manifold:
``D(a, b)`` below is ``mujoco.mj_differentiatePos`` times ``dt``, the tangent vector (nv,)
that carries configuration ``a`` to ``b`` (quaternion-safe: ball and free joints give
rotation vectors, in the same frames as ``qvel``; hinges and slides give ``b - a``).

- interior frames, central differences:
  ``qvel[t] = D(qpos[t-1], qpos[t+1]) / (2 dt)``;
- first frame, second-order one-sided:
  ``qvel[0] = (4 D(qpos[0], qpos[1]) - D(qpos[0], qpos[2])) / (2 dt)``;
- last frame, the mirror image:
  ``qvel[-1] = -(4 D(qpos[-1], qpos[-2]) - D(qpos[-1], qpos[-3])) / (2 dt)``.

Error (Taylor with the Lagrange remainder, per coordinate ``x`` whose third derivative is
bounded by ``J``): at most ``dt**2 * J / 6`` inside and ``dt**2 * J`` at both ends, so
O(dt^2) everywhere. For a rotation about a fixed axis the tangent is exactly the angle
difference times the axis and the same bound holds for the angle. A sequence of two frames
has only the first-order difference ``D(qpos[0], qpos[1]) / dt`` for both frames (error
``dt * max|x''| / 2``).
"""

from __future__ import annotations

import mujoco
import numpy as np


def _tangent(m: mujoco.MjModel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(nv,) the tangent vector carrying configuration ``a`` (nq,) to ``b`` (nq,)."""
    out = np.empty(m.nv)
    mujoco.mj_differentiatePos(m, out, 1.0, a, b)
    return out


def estimate_qvel(m: mujoco.MjModel, qpos: np.ndarray, dt: float) -> np.ndarray:
    """(L, nv) velocities (m/s, rad/s) of positions ``qpos (L, nq)`` sampled every ``dt``
    seconds, L >= 2 (module docstring: method and error bound)."""
    qpos = np.asarray(qpos, dtype=np.float64)
    n = qpos.shape[0]
    if qpos.ndim != 2 or qpos.shape[1] != m.nq or n < 2:
        raise ValueError(f"qpos must be (L >= 2, nq={m.nq}), found {qpos.shape}")
    if not dt > 0:
        raise ValueError(f"dt must be positive, found {dt!r}")
    if n == 2:
        v = _tangent(m, qpos[0], qpos[1]) / dt
        return np.stack([v, v])
    qvel = np.empty((n, m.nv))
    for t in range(1, n - 1):
        qvel[t] = _tangent(m, qpos[t - 1], qpos[t + 1]) / (2 * dt)
    qvel[0] = (4 * _tangent(m, qpos[0], qpos[1]) - _tangent(m, qpos[0], qpos[2])) / (2 * dt)
    qvel[-1] = -(4 * _tangent(m, qpos[-1], qpos[-2]) - _tangent(m, qpos[-1], qpos[-3])) / (2 * dt)
    return qvel
