"""The ``c`` backend: MuJoCo C through ``mujoco.rollout``, multithreaded, not differentiable.

An open-loop rollout without a learned part is one ``mujoco.rollout`` call over all
``T * substeps`` physics steps (bit for bit raw MuJoCo, warm starts included), whose health
is then checked for every control step at once. Anything that must act between control
steps (a learned part, a policy) runs ``control_step`` once per control step, with one
``mujoco.rollout`` call over the batch as its physics.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from hybridsim._src import health
from hybridsim._src.backends.base import (
    Drive,
    ModelConfig,
    RolloutOutput,
    SimModel,
    policy_controls,
)
from hybridsim._src.control_step import Learned, LearnedPart, control_step
from hybridsim._src.dataclasses import pytree_dataclass
from hybridsim._src.params import WorldParams, world_mj_model
from hybridsim._src.types import Observation, SimState, Trajectory

NAME = "c"
DIFFERENTIABLE = False
TRACEABLE = False

_FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS
_PIECES = ("TIME", "QPOS", "QVEL", "ACT")
# Largest state buffer (bytes) one mujoco.rollout call may fill; bigger batches are
# split into chunks of worlds, which keeps results identical (worlds are independent).
_MAX_CHUNK_BYTES = 256 * 2**20


class CRuntime:
    """Per-world MjModels, thread-local MjData and the state-vector layout.

    Hashes by identity so it can live in the static part of ``SimModel``.
    """

    def __init__(self, mj_model: mujoco.MjModel, params: WorldParams | None, batch_size: int):
        self.mj_model = mj_model
        if params is None:
            self.models: list[mujoco.MjModel] = [mj_model]
        else:
            self.models = [world_mj_model(mj_model, params.fields, b) for b in range(batch_size)]
        self.nthread = max(1, os.cpu_count() or 1)
        self.datas = [mujoco.MjData(mj_model) for _ in range(self.nthread)]
        self.nstate = mujoco.mj_stateSize(mj_model, _FULL)
        # Offsets of time/qpos/qvel/act inside the mjSTATE_FULLPHYSICS vector (bit order).
        self.slices: dict[str, slice] = {}
        offset = 0
        for bit in sorted(
            (b for b in mujoco.mjtState.__members__.values() if _is_single_bit(int(b))),
            key=int,
        ):
            if not int(bit) & int(_FULL):
                continue
            size = mujoco.mj_stateSize(mj_model, bit)
            name = bit.name.removeprefix("mjSTATE_")
            self.slices[name] = slice(offset, offset + size)
            offset += size
        assert offset == self.nstate, (offset, self.nstate)
        # The rest of the full physics state (history, plugin, plastic) of a fresh world.
        d = mujoco.MjData(mj_model)
        self.template = np.empty(self.nstate)
        mujoco.mj_getState(mj_model, d, self.template, _FULL)

    def pack(self, qpos, qvel, act, time) -> np.ndarray:
        """(B, nstate) mjSTATE_FULLPHYSICS vectors."""
        x = np.tile(self.template, (qpos.shape[0], 1))
        x[:, self.slices["TIME"]] = time[:, None]
        x[:, self.slices["QPOS"]] = qpos
        x[:, self.slices["QVEL"]] = qvel
        x[:, self.slices["ACT"]] = act
        return x

    def unpack(self, x: np.ndarray, name: str) -> np.ndarray:
        out = x[..., self.slices[name]]
        return out[..., 0] if name == "TIME" else out


def _is_single_bit(v: int) -> bool:
    return v > 0 and (v & (v - 1)) == 0


# ------------------------------------------------------------------------- the interface


def prepare(scene: Any, batch_size: int, params: WorldParams | None, config: ModelConfig):
    """A ``SimModel`` with per-world MjModels and thread-local MjData."""
    return SimModel(
        device_model=None,
        params=dict(params.fields) if params is not None else {},
        scene=scene,
        backend=NAME,
        substeps=config.substeps,
        batch_size=batch_size,
        max_qvel=config.max_qvel,
        c_runtime=CRuntime(scene.mj_model, params, batch_size),
    )


def rollout(
    model: SimModel, state: SimState, drive: Drive, learned: Learned | None
) -> RolloutOutput:
    """Open loop without a learned part: one MuJoCo C call. Otherwise one ``control_step``
    per control step."""
    if drive.policy is None and learned is None:
        return RolloutOutput(_open_loop(model, state, np.asarray(drive.ctrl, np.float64)), None)
    return _stepped(model, state, drive, learned)


# ------------------------------------------------------------------ physics on MuJoCo C


@pytree_dataclass
class Worlds:
    """B worlds between control steps on MuJoCo C (NumPy float64)."""

    qpos: np.ndarray
    """(B, nq) generalized positions."""
    qvel: np.ndarray
    """(B, nv) generalized velocities."""
    act: np.ndarray
    """(B, na) actuator activations."""
    time: np.ndarray
    """(B,) simulation time in seconds."""
    sensordata: np.ndarray
    """(B, nsensordata) sensor values after the last physics step."""


def _advance(rt: CRuntime, x: Worlds, ctrl: np.ndarray, substeps: int, qfrc=None):
    """MuJoCo C over ``T = ctrl.shape[1]`` control steps of ``ctrl (B, T, nu)`` (finite),
    with ``qfrc (B, T, nv)`` (N or N m) in ``qfrc_applied`` when given. Returns ``qpos,
    qvel, act, time`` with a ``(B, T+1, ...)`` time axis (start included) and
    ``sensordata (B, T, nsensordata)``; no health checks."""
    bsz, horizon, _ = ctrl.shape
    x0 = rt.pack(x.qpos, x.qvel, x.act, x.time)
    nstep = horizon * substeps
    spec = mujoco.mjtState.mjSTATE_CTRL
    u = ctrl
    if qfrc is not None:
        u = np.concatenate([u, qfrc], axis=2)
        spec = spec | mujoco.mjtState.mjSTATE_QFRC_APPLIED
    u = np.repeat(u, substeps, axis=1) if substeps > 1 else u
    ns = rt.mj_model.nsensordata
    states = np.empty((bsz, nstep, rt.nstate))
    sens = np.empty((bsz, nstep, ns))
    per_world = rt.nstate * nstep * 8 + ns * nstep * 8 + 1
    chunk = max(1, min(bsz, _MAX_CHUNK_BYTES // per_world))
    for lo in range(0, bsz, chunk):
        hi = min(bsz, lo + chunk)
        models = rt.models if len(rt.models) == 1 else rt.models[lo:hi]
        mj_rollout.rollout(
            models,
            rt.datas,
            x0[lo:hi],
            u[lo:hi],
            control_spec=int(spec),
            nstep=nstep,
            state=states[lo:hi],
            sensordata=sens[lo:hi],
            persistent_pool=True,
        )
    # Keep the state at the end of every control step; prepend the start.
    xs = np.concatenate([x0[:, None], states[:, substeps - 1 :: substeps]], axis=1)
    sensordata = sens[:, substeps - 1 :: substeps]
    return (*(rt.unpack(xs, k) for k in ("QPOS", "QVEL", "ACT", "TIME")), sensordata)


def _physics(rt: CRuntime, substeps: int):
    """The ``Physics`` of ``control_step`` on MuJoCo C: one control step of the batch. A
    world that MuJoCo reset itself (``mjWARN_BADQACC``: time went back) gets non-finite
    velocities, so that the health check flags it."""

    def run(x: Worlds, u: np.ndarray, qfrc: np.ndarray | None) -> Worlds:
        f = None if qfrc is None else np.nan_to_num(np.asarray(qfrc, np.float64))[:, None]
        qp, qv, ac, tm, sens = _advance(rt, x, u[:, None], substeps, f)
        qv = np.where((tm[:, 1] <= tm[:, 0])[:, None], np.nan, qv[:, 1])
        return Worlds(qp[:, 1], qv, ac[:, 1], tm[:, 1], sens[:, 0])

    return run


def _no_physics(control_dt: float):
    """The ``Physics`` of a learned part that replaces physics: only time advances."""

    def run(x: Worlds, u: np.ndarray, qfrc: np.ndarray | None) -> Worlds:
        return x.replace(time=x.time + control_dt)

    return run


def _start(model: SimModel, state: SimState) -> Worlds:
    return Worlds(
        qpos=np.asarray(state.qpos, np.float64),
        qvel=np.asarray(state.qvel, np.float64),
        act=np.asarray(state.act, np.float64),
        time=np.asarray(state.time, np.float64),
        sensordata=np.zeros((model.batch_size, model.scene.mj_model.nsensordata)),
    )


def _open_loop(model: SimModel, state: SimState, ctrl: np.ndarray) -> Trajectory:
    """All T control steps in one MuJoCo C call, then every step's health at once: the
    same flags and held states as T calls of ``control_step``."""
    rt, horizon = model.c_runtime, ctrl.shape[1]
    status = np.asarray(state.status, np.int32).copy()
    finite_ctrl = bool(np.isfinite(ctrl).all())  # the common case: no copy, no replay
    safe_ctrl, ctrl_ok = (ctrl, None) if finite_ctrl else health.clean_controls(ctrl)
    qp, qv, ac, tm, sens = _advance(rt, _start(model, state), safe_ctrl, model.substeps)
    went_back = np.diff(tm, axis=1) <= 0  # MuJoCo reset the world itself
    if (
        finite_ctrl
        and not status.any()
        and not went_back.any()
        and health.all_ok(qp, qv, ac, model.max_qvel)
    ):
        return _trajectory(model, qp, qv, ac, tm, sens, status, ctrl)
    if ctrl_ok is None:
        ctrl_ok = np.ones(ctrl.shape[:2], bool)
    with np.errstate(invalid="ignore"):
        healthy = health.state_ok(qp[:, 1:], qv[:, 1:], ac[:, 1:], model.max_qvel)
    healthy &= ~went_back
    # Replay the status of every step; only worlds that went wrong need it.
    hold_from = np.where(status != 0, 0, horizon)
    for b in np.flatnonzero((status == 0) & ~(ctrl_ok & healthy).all(axis=1)):
        for t in range(horizon):
            status[b] = health.next_status(status[b], ctrl_ok[b, t], healthy[b, t])
            if status[b]:
                hold_from[b] = t
                break
    if (hold_from < horizon).any():
        rows = np.arange(model.batch_size)[:, None]
        src = np.minimum(np.arange(horizon + 1)[None, :], hold_from[:, None])  # (B, T+1)
        qp, qv, ac, tm = qp[rows, src], qv[rows, src], ac[rows, src], tm[rows, src]
        # Sensors of steps not taken repeat the last step taken (zeros if none was).
        s_src = np.minimum(np.arange(horizon)[None, :], hold_from[:, None] - 1)  # (B, T)
        sens = np.where((s_src < 0)[..., None], 0.0, sens[rows, np.maximum(s_src, 0)])
    return _trajectory(model, qp, qv, ac, tm, sens, status, ctrl)


def _stepped(model: SimModel, state: SimState, drive: Drive, learned: Learned | None):
    """One ``control_step`` per control step; the policy (if any) sees NumPy arrays."""
    bsz, horizon = model.batch_size, drive.steps
    x, status = _start(model, state), np.asarray(state.status, np.int32).copy()
    if learned is not None and learned.part.replaces_physics:
        physics = _no_physics(model.control_dt)
    else:
        physics = _physics(model.c_runtime, model.substeps)
    if learned is not None:
        learned = Learned(
            params=learned.params, carry=_np(learned.carry), part=OnNumpy(learned.part)
        )
    worlds, ctrls = [x], []
    for t in range(horizon):
        if drive.policy is None:
            u = np.asarray(drive.ctrl[:, t], np.float64)
        else:
            obs = Observation(x.qpos, x.qvel, x.time, x.sensordata)
            u = np.asarray(policy_controls(bsz, model.scene.nu, drive.policy, obs), np.float64)
        x, status, learned = control_step(physics, x, status, u, learned, model.max_qvel)
        worlds.append(x)
        ctrls.append(u)
    steps = jax.tree.map(lambda *a: np.stack(a, axis=1), *worlds)  # (B, T+1, ...)
    sens = steps.sensordata[:, 1:]  # sensors after each control step
    ctrl = np.stack(ctrls, axis=1)
    if learned is not None:
        learned = Learned(params=learned.params, carry=learned.carry, part=learned.part.part)
    traj = _trajectory(model, steps.qpos, steps.qvel, steps.act, steps.time, sens, status, ctrl)
    return RolloutOutput(traj, learned)


def _trajectory(model, qp, qv, ac, tm, sens, status, ctrl) -> Trajectory:
    return Trajectory.from_steps(qp, qv, ac, tm, sens, status, ctrl, model.control_dt, NAME)


# ---------------------------------------------------------- a learned part between C calls


def _np(tree: Any) -> Any:
    return jax.tree.map(lambda a: np.asarray(a), tree)


@functools.partial(jax.jit, static_argnums=0)
def _before(part, params, carry, qpos, qvel, ctrl):
    return part.before(params, carry, qpos, qvel, ctrl)


@dataclasses.dataclass(frozen=True)
class OnNumpy(LearnedPart):
    """Runs a learned part as batched, jitted JAX between MuJoCo C calls, in NumPy."""

    part: LearnedPart

    @property
    def replaces_physics(self) -> bool:  # type: ignore[override]
        return self.part.replaces_physics

    @property
    def corrects_state(self) -> bool:  # type: ignore[override]
        return self.part.corrects_state

    def initial_carry(self, params, qpos, qvel):
        return _np(self.part.initial_carry(params, qpos, qvel))

    def before(self, params, carry, qpos, qvel, ctrl):
        return _np(_before(self.part, params, carry, qpos, qvel, ctrl))

    def after(self, params, pending, qpos, qvel):
        # Called with NumPy float64 arrays: a state correction keeps MuJoCo C's precision.
        return _np(self.part.after(params, pending, qpos, qvel))
