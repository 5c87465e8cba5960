"""The physics core: ``make_model``, ``init``, ``step``, ``rollout``, ``reset_worlds``.

Pure functions over frozen pytrees, with explicit dispatch on ``SimModel.backend``:

- ``c``: MuJoCo C through ``mujoco.rollout`` (NumPy in and out; fast on CPU).
- ``mjx``: MJX's JAX implementation (jit, vmap, grad; any JAX device).
- ``warp``: MJX with ``impl="warp"`` (MuJoCo Warp; fast on CUDA, runs on CPU; no grad).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from hybridsim._src.backends import c as c_backend
from hybridsim._src.dataclasses import pytree_dataclass, static_field
from hybridsim._src.errors import BackendError, ShapeError
from hybridsim._src.params import WorldParams, _check_fields, derived_fields
from hybridsim._src.scene import Scene, load_scene
from hybridsim._src.types import SimState, Trajectory

BACKENDS = ("auto", "c", "mjx", "warp")
DIFFERENTIABLE = {"c": False, "mjx": True, "warp": False}


@pytree_dataclass
class SimModel:
    """Everything a backend needs to step B worlds of one scene."""

    device_model: Any
    """``mjx.Model`` for ``mjx``/``warp``; ``None`` for ``c``."""
    params: dict[str, Any]
    """Per-world field overrides, name -> (B, ...) array (empty when all worlds match)."""
    scene: Scene = static_field()
    backend: str = static_field()
    """The resolved backend: ``"c"``, ``"mjx"`` or ``"warp"``."""
    substeps: int = static_field()
    """Physics steps per control step."""
    batch_size: int = static_field()
    """B, the number of worlds."""
    max_qvel: float = static_field()
    """A world whose |qvel| exceeds this (rad/s or m/s) is flagged ``DIVERGED``."""
    sharding: Any = static_field(default=None)
    """``jax.sharding.NamedSharding`` splitting the batch over devices, or ``None``."""
    c_runtime: Any = static_field(default=None)
    """``CRuntime`` (per-world MjModels, MjData) for ``c``; ``None`` otherwise."""
    differentiable: bool = static_field(default=False)
    """Built for gradients: ``mjx`` with the constraint solver at one fixed iteration."""

    @property
    def control_dt(self) -> float:
        """Seconds per control step: ``substeps * timestep``."""
        return self.substeps * self.scene.timestep


def _has_cuda() -> bool:
    try:
        return any(d.platform == "gpu" for d in jax.devices())
    except RuntimeError:
        return False


def resolve_backend(backend: str, differentiable: bool = False) -> str:
    """``auto`` -> ``mjx`` when gradients are needed, else ``warp`` on CUDA, else ``c``."""
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        if differentiable:
            return "mjx"
        return "warp" if _has_cuda() else "c"
    if differentiable and not DIFFERENTIABLE[backend]:
        raise BackendError(
            f"backend {backend!r} is not differentiable; use backend='mjx' (or 'auto') for "
            "gradients"
        )
    return backend


def _batch_sharding(batch_size: int, shard: bool | None) -> Any:
    devices = jax.devices()
    if shard is False or len(devices) < 2:
        return None
    if batch_size % len(devices):
        if shard:
            raise ShapeError(
                f"cannot shard a batch of {batch_size} worlds over {len(devices)} devices: "
                "B must be a multiple of the device count"
            )
        return None
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))


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
    batch_size, substeps = int(batch_size), int(substeps)
    name = resolve_backend(backend, differentiable)
    if isinstance(params, dict):
        params = _check_fields(scene.mj_model, batch_size, params)
    if params is not None and params.batch_size != batch_size:
        raise ShapeError(
            f"world parameters are for {params.batch_size} worlds, the model has {batch_size}"
        )
    fields = dict(params.fields) if params is not None else {}
    if name == "c":
        return SimModel(
            device_model=None,
            params=fields,
            scene=scene,
            backend="c",
            substeps=substeps,
            batch_size=batch_size,
            max_qvel=float(max_qvel),
            c_runtime=c_backend.CRuntime(scene.mj_model, params, batch_size),
        )
    from hybridsim._src.backends import mjx as mjx_backend

    impl = "jax" if name == "mjx" else "warp"
    mj_model = scene.mj_model
    if differentiable:
        mj_model = copy.copy(mj_model)
        mj_model.opt.iterations = 1
    try:
        device_model = mjx_backend.put_model(mj_model, impl)
    except NotImplementedError as e:
        raise BackendError(
            f"scene {scene.name!r} is not supported by backend {name!r}: {e}"
        ) from None
    sharding = _batch_sharding(batch_size, shard) if name == "mjx" else None
    dtype = jnp.result_type(float)
    # Derived constants (subtree masses, inverse weights) of each world, as c has them.
    fields.update(derived_fields(scene.mj_model, fields))
    jfields = {k: jnp.asarray(v, dtype) for k, v in fields.items()}
    if sharding is not None:
        jfields = jax.device_put(jfields, sharding)
        replicated = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
        device_model = jax.device_put(device_model, replicated)
    return SimModel(
        device_model=device_model,
        params=jfields,
        scene=scene,
        backend=name,
        substeps=substeps,
        batch_size=batch_size,
        max_qvel=float(max_qvel),
        sharding=sharding,
        differentiable=bool(differentiable),
    )


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


def rollout(model: SimModel, state: SimState, ctrl: Any) -> Trajectory:
    """Runs T control steps from ``state`` with controls ``ctrl (B, T, nu)``.

    Returns a Trajectory with ``qpos (B, T+1, nq)``, ``qvel (B, T+1, nv)``,
    ``ctrl (B, T, nu)``, ``sensordata (B, T, nsensordata)``, ``status (B,)`` and the
    final state. On ``mjx`` it is differentiable with respect to ``ctrl`` and ``state``.
    """
    ctrl = _check_ctrl(model, ctrl, with_time=True)
    _check_state(model, state)
    if model.backend == "c":
        if _is_traced((state, ctrl)):
            raise BackendError(
                "backend 'c' runs MuJoCo C and cannot be traced by JAX (jit/grad/vmap); "
                "use backend='mjx' for gradients"
            )
        ctrl = np.asarray(ctrl, dtype=np.float64)
        out = c_backend.rollout(
            model.c_runtime,
            np.asarray(state.qpos),
            np.asarray(state.qvel),
            np.asarray(state.act),
            np.asarray(state.time),
            np.asarray(state.status),
            ctrl,
            model.substeps,
            model.max_qvel,
        )
    else:
        ctrl, out = run_jax_backend(model, state, ctrl)
    return to_trajectory(model, out, ctrl)


def run_jax_backend(
    model: SimModel, state: SimState, ctrl: Any, grad_args: Any = None, **hook: Any
) -> tuple[Any, dict[str, Any]]:
    """Runs ``mjx``/``warp``: checks gradients are allowed, places ``ctrl``, calls the
    backend (with an optional ``hook``, ``aux``, ``hook_carry``); returns (ctrl, outputs)."""
    from hybridsim._src.backends import mjx as mjx_backend

    if _under_grad((state, ctrl, grad_args)) and not model.differentiable:
        raise BackendError(
            f"this {model.backend!r} model was not built for gradients; use "
            "make_model(..., backend='mjx', differentiable=True)"
        )
    ctrl = _put(model, ctrl)
    out = mjx_backend.rollout(
        model.device_model,
        model.params,
        state.qpos,
        state.qvel,
        state.act,
        state.time,
        state.status,
        ctrl,
        scene=model.scene,
        impl="jax" if model.backend == "mjx" else "warp",
        substeps=model.substeps,
        max_qvel=model.max_qvel,
        **hook,
    )
    return ctrl, out


def to_trajectory(model: SimModel, out: dict[str, Any], ctrl: Any) -> Trajectory:
    """Packs a backend's output arrays (``(B, T+1, ...)`` and ``status``) as a Trajectory."""
    final = SimState(
        qpos=out["qpos"][:, -1],
        qvel=out["qvel"][:, -1],
        act=out["act"][:, -1],
        time=out["time"][:, -1],
        status=out["status"],
    )
    return Trajectory(
        qpos=out["qpos"],
        qvel=out["qvel"],
        ctrl=ctrl,
        time=out["time"],
        sensordata=out["sensordata"],
        status=out["status"],
        final=final,
        control_dt=model.control_dt,
        backend=model.backend,
    )


def _under_grad(x: Any) -> bool:
    return any(
        "JVPTracer" in type(t).__name__ or "LinearizeTracer" in type(t).__name__
        for t in jax.tree.leaves(x)
    )


def step(model: SimModel, state: SimState, ctrl: Any) -> SimState:
    """One control step (``substeps`` physics steps) with ``ctrl (B, nu)``."""
    ctrl = _check_ctrl(model, ctrl, with_time=False)
    xp = _xp(model)
    return rollout(model, state, xp.asarray(ctrl)[:, None, :]).final


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
