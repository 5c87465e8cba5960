"""Batched simulation state and trajectories.

Arrays are NumPy on the ``c`` backend and JAX on ``mjx``/``warp``; shapes carry the
batch axis ``B`` first. Positions are in metres/radians, velocities in m/s and rad/s,
time in seconds.
"""

from __future__ import annotations

import enum
from typing import Any

from hybridsim._src.dataclasses import pytree_dataclass, static_field

Array = Any  # numpy.ndarray or jax.Array


class Status(enum.IntFlag):
    """Per-world status bits carried in ``SimState.status`` (int32)."""

    OK = 0
    NONFINITE_CTRL = 1
    """A control was NaN or infinite; the world was not stepped from then on."""
    DIVERGED = 2
    """The physics produced non-finite values or speeds above ``max_qvel``; the world
    holds its last good state until it is reset."""


@pytree_dataclass
class SimState:
    """State of B independent worlds."""

    qpos: Array
    """(B, nq) float: generalized positions."""
    qvel: Array
    """(B, nv) float: generalized velocities."""
    act: Array
    """(B, na) float: actuator activations."""
    time: Array
    """(B,) float: simulation time in seconds."""
    status: Array
    """(B,) int32: bit flags of ``Status``; 0 means healthy."""

    @property
    def batch_size(self) -> int:
        return int(self.qpos.shape[0])


@pytree_dataclass
class Observation:
    """What a policy sees at each control step of a closed-loop rollout.

    NumPy arrays on ``c``, JAX arrays (traced) on ``mjx``/``warp``.
    """

    qpos: Array
    """(B, nq) float: generalized positions (m, rad; free joints: position + quaternion)."""
    qvel: Array
    """(B, nv) float: generalized velocities (m/s, rad/s)."""
    time: Array
    """(B,) float: seconds since the episode start (``init`` or ``reset_worlds``)."""
    sensordata: Array
    """(B, nsensordata) float: sensor values as the last physics step left them (zeros
    before the first control step of a rollout)."""


Policy = Any
"""``policy(obs: Observation) -> ctrl (B, nu)``. On ``mjx``/``warp`` it is traced into the
one compiled program; on ``c`` it is called between MuJoCo C steps with NumPy arrays. A
policy written with ``jax.numpy`` operations works on every backend."""


@pytree_dataclass
class Trajectory:
    """A batched rollout over T control steps (the interchange format's arrays)."""

    qpos: Array
    """(B, T+1, nq) float: positions at every control step, the start included."""
    qvel: Array
    """(B, T+1, nv) float: velocities, likewise."""
    ctrl: Array
    """(B, T, nu) float: controls applied (held for ``substeps`` physics steps)."""
    time: Array
    """(B, T+1) float: simulation time in seconds."""
    sensordata: Array
    """(B, T, nsensordata) float: sensor values as MuJoCo left them after the last
    physics substep of each control step (MuJoCo evaluates sensors before it integrates,
    so they describe the state one physics timestep before ``qpos[:, t+1]``)."""
    status: Array
    """(B,) int32: ``Status`` flags at the end of the rollout."""
    final: SimState
    """State after the last control step (continue from here)."""
    control_dt: float = static_field(default=0.0)
    """Seconds per control step: ``substeps * timestep``."""
    backend: str = static_field(default="")
    """The backend that ran: ``"c"``, ``"mjx"`` or ``"warp"``."""

    @classmethod
    def from_steps(
        cls, qpos, qvel, act, time, sensordata, status, ctrl, control_dt: float, backend: str
    ) -> Trajectory:
        """A Trajectory from per-step arrays with a ``(B, T+1, ...)`` time axis (``act``
        too); the final state is their last step."""
        final = SimState(
            qpos=qpos[:, -1], qvel=qvel[:, -1], act=act[:, -1], time=time[:, -1], status=status
        )
        return cls(
            qpos=qpos,
            qvel=qvel,
            ctrl=ctrl,
            time=time,
            sensordata=sensordata,
            status=status,
            final=final,
            control_dt=control_dt,
            backend=backend,
        )
