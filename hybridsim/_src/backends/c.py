"""The ``c`` backend: MuJoCo C through ``mujoco.rollout``, multithreaded, not differentiable."""

from __future__ import annotations

import os

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from hybridsim._src.params import WorldParams, world_mj_model
from hybridsim._src.types import Status

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


def rollout(
    rt: CRuntime,
    qpos: np.ndarray,
    qvel: np.ndarray,
    act: np.ndarray,
    time: np.ndarray,
    status: np.ndarray,
    ctrl: np.ndarray,
    substeps: int,
    max_qvel: float,
    qfrc: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Rolls B worlds over T control steps; returns arrays with a (B, T+1, ...) time axis.

    ``qfrc (B, T, nv)``, when given, is written into ``qfrc_applied`` (N or N m) for every
    physics substep of its control step. Worlds whose status is non-zero are not advanced;
    a world that meets a non-finite control or diverges is flagged and holds its last good
    state.
    """
    bsz, horizon, _ = ctrl.shape
    status = status.astype(np.int32).copy()
    if np.isfinite(ctrl).all():  # the common case: no copy, no per-world work
        bad_u = np.zeros(bsz, bool)
        first_bad_u = np.full(bsz, horizon)
        safe_ctrl = ctrl
    else:
        finite_u = np.isfinite(ctrl).all(axis=2)  # (B, T)
        bad_u = ~finite_u.all(axis=1)
        first_bad_u = np.where(bad_u, np.argmin(finite_u, axis=1), horizon)
        safe_ctrl = np.where(np.isfinite(ctrl), ctrl, 0.0)
    x0 = rt.pack(qpos, qvel, act, time)
    nstep = horizon * substeps
    spec = mujoco.mjtState.mjSTATE_CTRL
    if qfrc is not None:
        safe_ctrl = np.concatenate([safe_ctrl, np.nan_to_num(qfrc)], axis=2)
        spec = spec | mujoco.mjtState.mjSTATE_QFRC_APPLIED
    u = np.repeat(safe_ctrl, substeps, axis=1) if substeps > 1 else safe_ctrl
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
    x = np.concatenate([x0[:, None], states[:, substeps - 1 :: substeps]], axis=1)
    sensordata = sens[:, substeps - 1 :: substeps]
    qp = rt.unpack(x, "QPOS")
    qv = rt.unpack(x, "QVEL")
    ac = rt.unpack(x, "ACT")
    tm = rt.unpack(x, "TIME")
    # A step t is bad when its end state is non-finite or too fast, or when MuJoCo reset
    # the world itself (mjWARN_BADQACC resets data, which shows as time going back).
    # One whole-array check first; the per-world search only runs when something is off.
    with np.errstate(invalid="ignore"):
        healthy = (
            np.isfinite(x).all()
            and bool((np.abs(qv) <= max_qvel).all())
            and bool((np.diff(tm, axis=1) > 0).all())
        )
    if healthy:
        diverged = np.zeros(bsz, bool)
        first_div = np.full(bsz, horizon)
    else:
        finite = (
            np.isfinite(qp).all(axis=2) & np.isfinite(qv).all(axis=2) & np.isfinite(ac).all(axis=2)
        )
        with np.errstate(invalid="ignore"):
            fast = np.abs(np.nan_to_num(qv, nan=0.0)).max(axis=2, initial=0.0) > max_qvel
            went_back = np.diff(tm, axis=1) <= 0
        bad_step = (~finite[:, 1:]) | fast[:, 1:] | went_back  # (B, T)
        diverged = bad_step.any(axis=1)
        first_div = np.where(diverged, np.argmax(bad_step, axis=1), horizon)
    # Step index from which each world is held: already flagged worlds from 0.
    hold_from = np.minimum(first_bad_u, first_div)
    hold_from = np.where(status != 0, 0, hold_from)
    fresh = status == 0
    status |= np.where(fresh & bad_u & (first_bad_u <= first_div), int(Status.NONFINITE_CTRL), 0)
    status |= np.where(fresh & diverged & (first_div < first_bad_u), int(Status.DIVERGED), 0)
    if (hold_from < horizon).any():
        rows = np.arange(bsz)[:, None]
        src = np.minimum(np.arange(horizon + 1)[None, :], hold_from[:, None])  # (B, T+1)
        qp, qv, ac, tm = qp[rows, src], qv[rows, src], ac[rows, src], tm[rows, src]
        # Sensors of steps not taken repeat the last step taken (zeros if none was).
        s_src = np.minimum(np.arange(horizon)[None, :], hold_from[:, None] - 1)  # (B, T)
        sensordata = np.where((s_src < 0)[..., None], 0.0, sensordata[rows, np.maximum(s_src, 0)])
    return {
        "qpos": qp,
        "qvel": qv,
        "act": ac,
        "time": tm,
        "sensordata": sensordata,
        "status": status.astype(np.int32),
    }
