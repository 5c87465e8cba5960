"""The residual model and the hybrid simulator built on the physics core.

Three kinds, one interface:

- ``force``: a generalized force ``tau_res (nv,)`` (N or N m) written into
  ``qfrc_applied`` for every physics substep of a control step; contacts and constraints
  stay with the physics.
- ``state``: a correction after the physics step, in velocity space: ``dq (nv,)`` is
  integrated into qpos (quaternions stay unit) and ``dv (nv,)`` is added to qvel.
- ``neural``: no physics; the same network predicts ``dq, dv`` from the current state.

Features: current ``qpos, qvel`` and control ``u``, plus the last ``history`` steps of
``(qpos, qvel, u)``, most recent first (long context for latency and backlash). With
``ResidualConfig.dofs`` the residual reads and acts on the chosen joints only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hybridsim._src.control_step import Learned, LearnedPart
from hybridsim._src.dataclasses import pytree_dataclass, static_field
from hybridsim._src.errors import ShapeError
from hybridsim._src.loader import Scene
from hybridsim._src.residual.kinematics import integrate_pos, joint_layout, joint_sizes
from hybridsim._src.residual.net import EnsembleMLP

KINDS = ("force", "state", "neural")


@dataclasses.dataclass(frozen=True)
class ResidualConfig:
    """Architecture of a residual model."""

    kind: str = "force"
    """``"force"`` (default), ``"state"`` or ``"neural"`` (the pure-learned baseline)."""
    history: int = 4
    """Past control steps of (qpos, qvel, ctrl) in the features."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the MLP."""
    ensemble: int = 1
    """Ensemble members E; their spread is the uncertainty signal."""
    seed: int = 0
    """Seed of the weight initialisation."""
    dofs: tuple[str, ...] = ()
    """Joints whose degrees of freedom the residual acts on (empty: all). For example the
    robot's joints only, leaving free objects to the contact physics."""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ShapeError(f"residual kind must be one of {KINDS}, got {self.kind!r}")
        if self.history < 0 or self.ensemble < 1:
            raise ShapeError("history must be >= 0 and ensemble >= 1")
        if self.dofs and self.kind == "neural":
            raise ShapeError("the pure-neural model predicts every degree of freedom: no dofs")


@dataclasses.dataclass(frozen=True)
class Dims:
    """Sizes and joint layout of the scene the residual is for (static)."""

    nq: int
    nv: int
    nu: int
    history: int
    control_dt: float
    """Seconds per control step the residual was fitted at."""
    layout: tuple[tuple[int, int, int], ...]
    qidx: tuple[int, ...] = ()
    """qpos entries in the features (the selected joints'; empty: all)."""
    vidx: tuple[int, ...] = ()
    """qvel entries in the features and degrees of freedom the residual acts on."""
    timestep: float = 0.0
    """Physics timestep (s) the residual was fitted at (``control_dt / timestep``
    substeps); 0: not recorded (residuals written before it was)."""

    @property
    def step_dim(self) -> int:
        """Size of one history step: the full (qpos, qvel, ctrl)."""
        return self.nq + self.nv + self.nu

    @property
    def feature_step_dim(self) -> int:
        nq = len(self.qidx) if self.qidx else self.nq
        nv = len(self.vidx) if self.vidx else self.nv
        return nq + nv + self.nu

    @property
    def feature_dim(self) -> int:
        return self.feature_step_dim * (1 + self.history)


@pytree_dataclass
class Residual:
    """A residual model: network weights, normalisation and its static description."""

    params: Any
    """``nnx.State`` of the EnsembleMLP (weights carry a leading ensemble axis E)."""
    feature_mean: jax.Array
    """(F,) mean of the features."""
    feature_std: jax.Array
    """(F,) standard deviation of the features (floored)."""
    output_scale: jax.Array
    """(O,) scale of each output (N or N m for force; m, rad, m/s, rad/s for state)."""
    graphdef: Any = static_field()
    config: ResidualConfig = static_field()
    dims: Dims = static_field()

    @property
    def output_dim(self) -> int:
        return self.dims.nv if self.config.kind == "force" else 2 * self.dims.nv


def init_residual(scene: Scene, config: ResidualConfig, control_dt: float) -> Residual:
    """A fresh residual whose output is exactly zero (hybrid equals physics)."""
    m = scene.mj_model
    qidx, vidx = joint_indices(scene, config.dofs)
    dims = Dims(
        nq=int(m.nq),
        nv=int(m.nv),
        nu=int(m.nu),
        history=config.history,
        control_dt=float(control_dt),
        layout=tuple(joint_layout(m)),
        qidx=qidx,
        vidx=vidx,
        timestep=scene.timestep,
    )
    out_dim = dims.nv if config.kind == "force" else 2 * dims.nv
    net = EnsembleMLP(
        dims.feature_dim, out_dim, config.hidden, config.ensemble, nnx.Rngs(params=config.seed)
    )
    graphdef, params = nnx.split(net)
    return Residual(
        params=params,
        feature_mean=jnp.zeros(dims.feature_dim),
        feature_std=jnp.ones(dims.feature_dim),
        output_scale=jnp.ones(out_dim),
        graphdef=graphdef,
        config=config,
        dims=dims,
    )


def joint_indices(scene: Scene, joints: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    """(qpos indices, qvel indices) of the named joints; both empty when ``joints`` is."""
    import mujoco

    m = scene.mj_model
    if not joints:
        return (), ()
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in range(m.njnt)]
    qidx: list[int] = []
    vidx: list[int] = []
    for name in joints:
        if name not in names:
            raise ShapeError(
                f"residual dofs: scene {scene.name!r} has no joint {name!r}; its joints are "
                f"{[n for n in names if n]}"
            )
        j = names.index(name)
        nq, nv = joint_sizes(int(m.jnt_type[j]))
        qidx += range(int(m.jnt_qposadr[j]), int(m.jnt_qposadr[j]) + nq)
        vidx += range(int(m.jnt_dofadr[j]), int(m.jnt_dofadr[j]) + nv)
    return tuple(sorted(set(qidx))), tuple(sorted(set(vidx)))


def dof_mask(dims: Dims) -> np.ndarray:
    """(nv,) bool: the degrees of freedom the residual acts on."""
    mask = np.zeros(dims.nv, bool)
    mask[list(dims.vidx) if dims.vidx else slice(None)] = True
    return mask


def features(dims: Dims, qpos, qvel, ctrl, history):
    """(..., F) features; history (..., H, nq+nv+nu), most recent first.

    With selected joints (``dims.qidx``), only their qpos and qvel entries (and every
    control) are features, now and in the history.
    """
    if dims.qidx:
        qi, vi = np.asarray(dims.qidx), np.asarray(dims.vidx)
        hidx = np.concatenate([qi, dims.nq + vi, dims.nq + dims.nv + np.arange(dims.nu)])
        qpos, qvel, history = qpos[..., qi], qvel[..., vi], history[..., hidx]
    parts = [qpos, qvel, ctrl, history.reshape(*history.shape[:-2], -1)]
    return jnp.concatenate(parts, axis=-1)


def push_history(history, qpos, qvel, ctrl):
    """Drops the oldest step of ``history (..., H, D)`` and puts (qpos, qvel, ctrl) first."""
    if history.shape[-2] == 0:
        return history
    step = jnp.concatenate([qpos, qvel, ctrl], axis=-1)[..., None, :]
    return jnp.concatenate([step, history[..., :-1, :]], axis=-2)


def initial_history(res: Residual, qpos, qvel):
    """History for a world just starting: its current state repeated, zero controls."""
    d = res.dims
    step = jnp.concatenate([qpos, qvel, jnp.zeros((*qpos.shape[:-1], d.nu), qpos.dtype)], -1)
    return jnp.broadcast_to(step[..., None, :], (*qpos.shape[:-1], d.history, d.step_dim))


PRECISIONS = {"float32": None, "bfloat16": jnp.bfloat16}
"""Inference precisions: the operand type of the network's hidden-to-hidden matmuls."""


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ShapeError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")


def apply(res: Residual, x, precision: str = "float32"):
    """Ensemble outputs (E, ..., O) for features x (..., F)."""
    net = nnx.merge(res.graphdef, res.params)
    # Normalised inputs are clipped to +-10 standard deviations: far outside the training
    # data the network's output stays bounded.
    z = jnp.clip((x - res.feature_mean) / res.feature_std, -10.0, 10.0)
    return net(z, PRECISIONS[precision]) * res.output_scale


def correct_state(res: Residual, qpos, qvel, out):
    """Applies a state correction ``out = [dq, dv] (..., 2 nv)``; in NumPy (float64, as
    on ``c``) when ``qpos`` is a NumPy array, else in JAX."""
    nv = res.dims.nv
    xp = np if isinstance(qpos, np.ndarray) else jnp
    out = xp.asarray(out, qpos.dtype)
    return integrate_pos(xp, res.dims.layout, qpos, out[..., :nv]), qvel + out[..., nv:]


@dataclasses.dataclass(frozen=True)
class ResidualPart(LearnedPart):
    """The residual as the learned part of ``control_step`` (static, hashable); the
    ``Residual`` is its ``params`` and ``(history, uncertainty sum, steps)`` its memory."""

    kind: str
    precision: str = "float32"

    @property
    def replaces_physics(self) -> bool:  # type: ignore[override]
        return self.kind == "neural"

    @property
    def corrects_state(self) -> bool:  # type: ignore[override]
        return self.kind in ("state", "neural")

    def initial_carry(self, res: Residual, qpos, qvel):
        """``(history (..., H, nq+nv+nu), uncertainty sum (...,), steps (...,) int32)``."""
        lead = qpos.shape[:-1]
        dtype = jnp.result_type(float)
        history = initial_history(res, qpos, qvel).astype(dtype)
        return history, jnp.zeros(lead, dtype), jnp.zeros(lead, jnp.int32)

    def before(self, res: Residual, carry, qpos, qvel, ctrl):
        hist, unc, n = carry
        out_e = apply(res, features(res.dims, qpos, qvel, ctrl, hist), self.precision)
        out = jnp.mean(out_e, axis=0)  # (..., O) from (E, ..., O)
        unc = unc + jnp.sqrt(jnp.sum(jnp.var(out_e, axis=0), axis=-1)).astype(unc.dtype)
        hist = push_history(hist, qpos, qvel, ctrl).astype(hist.dtype)
        qfrc = out if self.kind == "force" else None
        pending = out if self.corrects_state else None
        return qfrc, pending, (hist, unc, n + 1)

    def after(self, res: Residual, pending, qpos, qvel):
        return correct_state(res, qpos, qvel, pending)


@dataclasses.dataclass(frozen=True)
class HybridResult:
    """Trajectory plus per-world ensemble disagreement and the final history."""

    traj: Any
    """The Trajectory (same fields as ``hybridsim.rollout``'s)."""
    uncertainty: Any
    """(B,) mean over control steps of the ensemble spread of the residual output."""
    history: Any
    """(B, H, nq+nv+nu) history at the end (continue a rollout from here)."""


def hybrid_rollout(
    model,
    res: Residual,
    state,
    ctrl=None,
    history=None,
    *,
    policy=None,
    steps: int | None = None,
    precision: str = "float32",
) -> HybridResult:
    """Rolls out physics plus residual: open loop with ``ctrl (B, T, nu)``, or closed loop
    with ``policy(obs) -> ctrl (B, nu)`` for ``steps`` control steps (as
    ``hybridsim.rollout``). Every control step is the core's ``control_step`` with the
    residual as its learned part, on every backend; ``kind="neural"`` runs the same step
    with no physics (the pure-learned baseline).

    On ``mjx`` and ``warp`` the residual runs inside the one jitted program (on ``mjx`` it
    is differentiable in the residual's parameters, the controls and the state). On ``c``
    it runs as batched, jitted inference between MuJoCo C calls, without gradients.

    ``precision="bfloat16"`` runs the network's hidden-to-hidden matmuls on bfloat16
    operands (float32 accumulation): faster inference on CPUs and GPUs with bfloat16
    units, at a relative output error of about 1e-3.
    """
    from hybridsim._src import sim

    check_precision(precision)
    _check_dims(model, res)
    part = ResidualPart(res.config.kind, precision)
    carry = part.initial_carry(res, jnp.asarray(state.qpos), jnp.asarray(state.qvel))
    if history is not None:
        carry = (jnp.asarray(history, carry[0].dtype), *carry[1:])
    learned = Learned(params=res, carry=carry, part=part)
    out = sim.run(model, state, ctrl, policy=policy, steps=steps, learned=learned)
    hist, unc, n = out.learned.carry
    traj = out.traj.replace(backend="neural") if part.replaces_physics else out.traj
    xp = np if isinstance(unc, np.ndarray) else jnp
    return HybridResult(traj, unc / xp.maximum(n, 1), hist)


def _check_dims(model, res: Residual) -> None:
    s = model.scene
    if (s.nq, s.nv, s.nu) != (res.dims.nq, res.dims.nv, res.dims.nu):
        raise ShapeError(
            f"residual was made for nq={res.dims.nq}, nv={res.dims.nv}, nu={res.dims.nu}; scene "
            f"{s.name!r} has nq={s.nq}, nv={s.nv}, nu={s.nu}"
        )
    h = res.dims.timestep
    if h and abs(s.timestep - h) > 1e-12 * max(h, 1.0):
        raise ShapeError(
            f"residual was fitted with physics timestep {h:g} s x "
            f"{round(res.dims.control_dt / h)} substeps; the model's scene steps "
            f"{s.timestep:g} s (make the model from scene.with_timestep({h!r}))"
        )
    if abs(model.control_dt - res.dims.control_dt) > 1e-12:
        raise ShapeError(
            f"residual was fitted at control_dt={res.dims.control_dt:g} s; the model steps "
            f"{model.control_dt:g} s (check substeps)"
        )
