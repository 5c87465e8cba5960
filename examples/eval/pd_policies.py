"""Joint-space PD policies for ``arm2`` tracking a moving target, and their score.

Every joint follows ``target(t) = HOME + AMPLITUDE * sin(2 pi FREQUENCY t + PHASE)``
(rad). A policy is ``PD(kp, kd)``: ``ctrl = clip(kp (q* - q) + kd (dq* - dq), -1, 1)``.
With nominal physics the stiff ones track best; under actuator latency (a synthetic
reality's ``Effects``) the high gains overshoot and oscillate, so the ranking changes.

Use from the command line::

    hybridsim eval policies --scene arm2 --substeps 4 --steps 100 --episodes 8 \\
        --policy examples/eval/pd_policies.py:pd_kp4 \\
        --policy examples/eval/pd_policies.py:pd_kp16 \\
        --score examples/eval/pd_policies.py:tracking_score --json

The policies use array operations that work on NumPy (backend ``c``) and on traced JAX
arrays (``mjx``, ``warp``) alike.
"""

from __future__ import annotations

import dataclasses

import numpy as np

HOME = np.array([0.4, 1.2])
"""(2,) rad: the arm2 keyframe, the centre of the target motion."""
AMPLITUDE = np.array([0.6, 0.5])
"""(2,) rad."""
FREQUENCY = np.array([0.5, 0.7])
"""(2,) Hz."""
PHASE = np.array([0.0, 1.0])
"""(2,) rad."""


def _xp(x):
    """The array namespace of ``x``: NumPy, or jax.numpy for JAX (traced) arrays."""
    if isinstance(x, np.ndarray):
        return np
    import jax.numpy as jnp

    return jnp


def target(t, xp=np):
    """Target joint angles and velocities at times ``t (...,)`` s -> ``(..., 2)`` each."""
    w = 2 * np.pi * FREQUENCY
    arg = w * t[..., None] + PHASE
    return HOME + AMPLITUDE * xp.sin(arg), AMPLITUDE * w * xp.cos(arg)


@dataclasses.dataclass(frozen=True)
class PD:
    """``ctrl = clip(kp (q* - q) + kd (dq* - dq), -1, 1)`` (controls of arm2's motors)."""

    kp: float
    """Position gain (1/rad)."""
    kd: float
    """Velocity gain (s/rad)."""

    def __call__(self, obs):
        xp = _xp(obs.qpos)
        q_ref, v_ref = target(obs.time, xp)
        u = self.kp * (q_ref - obs.qpos) + self.kd * (v_ref - obs.qvel)
        return xp.clip(u, -1.0, 1.0)


pd_kp1 = PD(kp=1.0, kd=0.05)
pd_kp2 = PD(kp=2.0, kd=0.1)
pd_kp3 = PD(kp=3.0, kd=0.15)
pd_kp4 = PD(kp=4.0, kd=0.2)
pd_kp6 = PD(kp=6.0, kd=0.3)
pd_kp8 = PD(kp=8.0, kd=0.4)
pd_kp12 = PD(kp=12.0, kd=0.5)
pd_kp16 = PD(kp=16.0, kd=0.6)
pd_kp24 = PD(kp=24.0, kd=0.8)
pd_kp32 = PD(kp=32.0, kd=1.0)
pd_kp48 = PD(kp=48.0, kd=1.2)
pd_kp64 = PD(kp=64.0, kd=1.5)

POLICIES = (
    "pd_kp1 pd_kp2 pd_kp3 pd_kp4 pd_kp6 pd_kp8 pd_kp12 pd_kp16 pd_kp24 pd_kp32 pd_kp48 pd_kp64"
).split()
"""The names of the policies above, weakest to stiffest."""


def tracking_score(traj) -> np.ndarray:
    """Minus the RMS joint tracking error (rad) of every episode -> ``(N,)``; 0 is perfect.

    Time is counted in control steps from the episode start (``traj.control_dt``), as the
    policies see it in ``obs.time``; the first state (t = 0) is not scored."""
    qpos = np.asarray(traj.qpos)
    t = np.arange(qpos.shape[1]) * traj.control_dt
    q_ref, _ = target(t)
    err = qpos[:, 1:] - q_ref[1:]
    return -np.sqrt(np.mean(err**2, axis=(1, 2)))
