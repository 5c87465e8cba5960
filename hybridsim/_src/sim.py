"""The physics core: ``make_model``, ``init``, ``step``, ``rollout``, ``reset_worlds``.

``sim`` is the only door into the backends. Pure functions over frozen pytrees, with
explicit dispatch on ``SimModel.backend`` to one module per backend, each implementing
``backends.base.Backend``:

- ``c``: MuJoCo C through ``mujoco.rollout`` (NumPy in and out; fast on CPU).
- ``mjx``: MJX's JAX implementation (jit, vmap, grad; any JAX device).
- ``warp``: MJX with ``impl="warp"`` (MuJoCo Warp; fast on CUDA, runs on CPU; no grad).

Every rollout, open loop (a control array) or closed loop (a policy), with or without a
learned part, runs ``control_step.control_step`` once per control step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from hybridsim._src.backends import c as c_backend
from hybridsim._src.backends.base import Backend, Drive, ModelConfig, RolloutOutput, SimModel
from hybridsim._src.control_step import Learned
from hybridsim._src.errors import BackendError, ShapeError
from hybridsim._src.gpu import jax_sees_gpu
from hybridsim._src.loader import Scene, load_scene
from hybridsim._src.params import WorldParams, _check_fields
from hybridsim._src.types import Policy, SimState, Trajectory

BACKENDS = ("auto", "c", "mjx", "warp")


def backend_module(name: str) -> Backend:
    """The module implementing backend ``name`` (explicit dispatch; JAX ones on demand)."""
    if name == "c":
        return c_backend
    if name == "mjx":
        from hybridsim._src.backends import jax as jax_backend

        return jax_backend
    if name == "warp":
        from hybridsim._src.backends import warp as warp_backend

        return warp_backend
    raise BackendError(f"unknown backend {name!r}; expected one of {BACKENDS}")


def resolve_backend(backend: str, differentiable: bool = False) -> str:
    """``auto`` -> ``mjx`` when gradients are needed; else on a CUDA GPU ``warp`` (``mjx``
    when warp-lang is not installed); else ``c``."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        if differentiable:
            return "mjx"
        if not jax_sees_gpu():
            return "c"
        import importlib.util

        return "warp" if importlib.util.find_spec("warp") is not None else "mjx"
    if differentiable and not backend_module(backend).DIFFERENTIABLE:
        raise BackendError(
            f"backend {backend!r} is not differentiable; use backend='mjx' (or 'auto') for "
            "gradients"
        )
    return backend


def make_model(
    scene: str | Path | mujoco.MjSpec | mujoco.MjModel | Scene,
    batch_size: int,
    *,
    backend: str = "auto",
    substeps: int = 1,
    params: WorldParams | dict[str, Any] | None = None,
    differentiable: bool = False,
    max_qvel: float = 1e5,
    shard: bool | None = None,
) -> SimModel:
    """Prepares a scene for batched simulation.

    Args:
      scene: bundled scene name, MJCF path, XML string, ``MjSpec``, ``MjModel`` or Scene.
      batch_size: B, the number of worlds.
      backend: ``"auto"``, ``"c"``, ``"mjx"`` or ``"warp"``.
      substeps: physics steps per control step (``control_dt = substeps * timestep``).
      params: per-world parameters (``world_params(...)`` or a dict of fields).
      differentiable: ask for gradients; ``auto`` then picks ``mjx``. MJX's constraint
        solver can be differentiated only with a fixed count of one iteration (it uses a
        ``while_loop`` otherwise), so a differentiable model sets ``opt.iterations = 1``
        (line searches stay as the scene sets them).
      max_qvel: speed (rad/s or m/s) above which a world counts as diverged.
      shard: split the batch over all JAX devices (``None``: when there are several and
        B divides evenly; ignored by ``c``).
    """
    scene = load_scene(scene)
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ShapeError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(substeps, int | np.integer) or substeps < 1:
        raise ShapeError(f"substeps must be a positive int, got {substeps!r}")
    batch_size = int(batch_size)
    config = ModelConfig(
        backend=resolve_backend(backend, differentiable),
        substeps=int(substeps),
        differentiable=bool(differentiable),
        max_qvel=float(max_qvel),
        shard=shard,
    )
    if isinstance(params, dict):
        params = _check_fields(scene.mj_model, batch_size, params)
    if params is not None and params.batch_size != batch_size:
        raise ShapeError(
            f"world parameters are for {params.batch_size} worlds, the model has {batch_size}"
        )
    try:
        return backend_module(config.backend).prepare(scene, batch_size, params, config)
    except BackendError as e:
        raise BackendError(
            f"scene {scene.name!r} is not supported by backend {config.backend!r}: {e}"
        ) from None


def _xp(model: SimModel):
    return np if model.backend == "c" else jnp


def _put(model: SimModel, tree: Any) -> Any:
    if model.backend == "c":
        return jax.tree.map(np.asarray, tree)
    dtype = jnp.result_type(float)
    tree = jax.tree.map(
        lambda x: (
            jnp.asarray(x, dtype)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
            else jnp.asarray(x)
        ),
        tree,
    )
    if model.sharding is not None and not _is_traced(tree):
        tree = jax.device_put(tree, model.sharding)
    return tree


def _is_traced(tree: Any) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


def init(
    model: SimModel,
    qpos: Any | None = None,
    qvel: Any | None = None,
    act: Any | None = None,
) -> SimState:
    """Initial state of every world: the scene's first keyframe (or ``qpos0``), unless given.

    ``qpos`` may be ``(nq,)`` (same for all worlds) or ``(B, nq)``; likewise qvel, act.
    """
    q0, v0, a0 = model.scene.initial_state()
    bsz = model.batch_size
    arrays = []
    for name, given, default in (("qpos", qpos, q0), ("qvel", qvel, v0), ("act", act, a0)):
        x = default if given is None else np.asarray(given, dtype=np.float64)
        if x.shape == default.shape:
            x = np.broadcast_to(x, (bsz, *default.shape))
        if x.shape != (bsz, *default.shape):
            raise ShapeError(
                f"{name}: expected shape {default.shape} or {(bsz, *default.shape)}, got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ShapeError(f"{name}: initial state has non-finite values")
        arrays.append(np.array(x))
    state = SimState(
        qpos=arrays[0],
        qvel=arrays[1],
        act=arrays[2],
        time=np.zeros(bsz),
        status=np.zeros(bsz, np.int32),
    )
    return _put(model, state)


def _check_ctrl(model: SimModel, ctrl: Any, with_time: bool) -> Any:
    nu, bsz = model.scene.nu, model.batch_size
    expected = "(B, T, nu)" if with_time else "(B, nu)"
    shape = tuple(np.shape(ctrl))
    dtype = getattr(ctrl, "dtype", None)
    if dtype is None:
        ctrl = np.asarray(ctrl)
        dtype = ctrl.dtype
    if not (np.issubdtype(dtype, np.floating)):
        raise ShapeError(f"ctrl must be a floating-point array {expected}, got dtype {dtype}")
    ndim = 3 if with_time else 2
    if len(shape) != ndim or shape[0] != bsz or shape[-1] != nu:
        want = f"({bsz}, T, {nu})" if with_time else f"({bsz}, {nu})"
        raise ShapeError(
            f"ctrl for scene {model.scene.name!r} with B={bsz} worlds must have shape "
            f"{expected} = {want}, got {shape}"
        )
    if with_time and shape[1] < 1:
        raise ShapeError("ctrl has T=0 control steps; need at least one")
    return ctrl


def rollout(
    model: SimModel,
    state: SimState,
    ctrl: Any = None,
    *,
    policy: Policy | None = None,
    steps: int | None = None,
) -> Trajectory:
    """Runs T control steps from ``state``: open loop with ``ctrl (B, T, nu)``, or closed
    loop with ``policy(obs) -> ctrl (B, nu)`` for ``steps`` control steps.

    Returns a Trajectory with ``qpos (B, T+1, nq)``, ``qvel (B, T+1, nv)``,
    ``ctrl (B, T, nu)`` (the policy's controls in closed loop), ``sensordata
    (B, T, nsensordata)``, ``status (B,)`` and the final state. On ``mjx`` it is
    differentiable with respect to ``ctrl``, ``state`` and whatever the policy closes over.
    A policy is a static argument of the compiled program: pass the same function object
    to reuse it.
    """
    return run(model, state, ctrl, policy=policy, steps=steps).traj


def drive(model: SimModel, ctrl: Any, policy: Policy | None, steps: int | None) -> Drive:
    """Checks and places what drives a rollout: exactly one of ``ctrl (B, T, nu)`` and
    ``policy`` with ``steps``."""
    if (ctrl is None) == (policy is None):
        raise ShapeError("give either ctrl (B, T, nu) or a policy with steps, not both/neither")
    if policy is not None:
        if not callable(policy):
            raise ShapeError(f"policy must be callable obs -> ctrl (B, nu), got {type(policy)}")
        if not isinstance(steps, int | np.integer) or steps < 1:
            raise ShapeError(f"a closed-loop rollout needs steps >= 1, got {steps!r}")
        return Drive(ctrl=None, policy=policy, steps=int(steps))
    ctrl = _check_ctrl(model, ctrl, with_time=True)
    if steps is not None and steps != ctrl.shape[1]:
        raise ShapeError(f"steps={steps} but ctrl has T={ctrl.shape[1]} control steps")
    if model.backend == "c":
        ctrl = ctrl if _is_traced(ctrl) else np.asarray(ctrl, np.float64)
    else:
        ctrl = _put(model, ctrl)
    return Drive(ctrl=ctrl, steps=int(ctrl.shape[1]))


def run(
    model: SimModel,
    state: SimState,
    ctrl: Any = None,
    *,
    policy: Policy | None = None,
    steps: int | None = None,
    learned: Learned | None = None,
) -> RolloutOutput:
    """``rollout`` with a learned part on the control step: ``learned`` (a ``Learned``:
    a ``LearnedPart``, its parameters and its per-world memory ``(B, ...)``) runs in every
    control step of every backend. Returns the trajectory and the ``Learned`` with its
    memory after the last step. ``hybridsim.residual.hybrid_rollout`` is this with the
    residual as the learned part."""
    return run_drive(model, state, drive(model, ctrl, policy, steps), learned)


def run_drive(
    model: SimModel, state: SimState, drive: Drive, learned: Learned | None = None
) -> RolloutOutput:
    """The one way into a backend: checks what the backend can do, then runs ``drive``."""
    _check_state(model, state)
    backend = backend_module(model.backend)
    if not backend.TRACEABLE and _is_traced((state, drive, learned)):
        raise BackendError(
            f"backend {model.backend!r} runs MuJoCo C and cannot be traced by JAX "
            "(jit/grad/vmap); use backend='mjx' for gradients"
        )
    if _under_grad((state, drive, learned)) and not model.differentiable:
        raise BackendError(
            f"this {model.backend!r} model was not built for gradients; use "
            "make_model(..., backend='mjx', differentiable=True)"
        )
    if model.backend != "c":
        state = _put(model, state)
    return backend.rollout(model, state, drive, learned)


def _under_grad(x: Any) -> bool:
    return any(
        "JVPTracer" in type(t).__name__ or "LinearizeTracer" in type(t).__name__
        for t in jax.tree.leaves(x)
    )


def step(model: SimModel, state: SimState, ctrl: Any) -> SimState:
    """One control step (``substeps`` physics steps) with ``ctrl (B, nu)``."""
    ctrl = _check_ctrl(model, ctrl, with_time=False)
    return rollout(model, state, _xp(model).asarray(ctrl)[:, None, :]).final


def reset_worlds(model: SimModel, state: SimState, mask: Any | None = None) -> SimState:
    """Puts the worlds selected by ``mask (B,) bool`` (default: every flagged world) back
    to the initial state and clears their status."""
    xp = _xp(model)
    fresh = init(model)
    if mask is None:
        mask = state.status != 0
    mask = xp.asarray(mask, dtype=bool)
    if mask.shape != (model.batch_size,):
        raise ShapeError(f"mask must have shape ({model.batch_size},), got {mask.shape}")

    def pick(new, old):
        m = mask.reshape(mask.shape + (1,) * (new.ndim - 1))
        return xp.where(m, new, old)

    return jax.tree.map(pick, fresh, state)


def _check_state(model: SimModel, state: SimState) -> None:
    if not isinstance(state, SimState):
        raise ShapeError(f"state must be a hybridsim SimState, got {type(state).__name__}")
    want = (model.batch_size, model.scene.nq)
    if tuple(state.qpos.shape) != want:
        raise ShapeError(
            f"state.qpos: expected shape {want} (B, nq), got {tuple(state.qpos.shape)}"
        )


# ----------------------------------------------------------------------- one world on MJX
# The environments run one world's control step inside their own jitted, vmapped step.
# They reach MJX through these names, so that ``sim`` stays the one door into the backends.


def device_model(mj_model: mujoco.MjModel, impl: str) -> Any:
    """The ``mjx.Model`` of ``mj_model`` for ``impl`` (``"jax"`` or ``"warp"``)."""
    from hybridsim._src.backends import mjx_world

    return mjx_world.put_model(mj_model, impl)


def world_with_fields(mx: Any, fields: dict[str, Any]) -> Any:
    """``mx`` with these MjModel fields replaced (one world's values)."""
    from hybridsim._src.backends import mjx_world

    return mjx_world.with_fields(mx, fields)


def world_data(mx: Any, mj_model: mujoco.MjModel, impl: str, qpos, qvel, act, time) -> Any:
    """One world's ``mjx.Data`` at ``qpos (nq,)``, ``qvel (nv,)``, ``act (na,)``, ``time ()``."""
    from hybridsim._src.backends import mjx_world

    return mjx_world.make_world_data(mx, mj_model, impl, qpos, qvel, act, time)


def world_control_step(mx: Any, d: Any, status: Any, u: Any, learned: Learned | None, **kw):
    """One world's ``control_step`` on MJX, exactly as ``rollout`` runs it on ``mjx``/``warp``
    (keywords ``substeps``, ``max_qvel``, ``control_dt``); returns ``(d, status, learned)``."""
    from hybridsim._src.backends import mjx_world

    return mjx_world.world_control_step(mx, d, status, u, learned, **kw)
