"""What the ``mjx`` and ``warp`` backends share: MJX's world, its physics and the program.

One world's control step is ``control_step`` with ``substeps`` calls of ``mjx.step`` as
its physics (``world_control_step``); the environments run exactly this function. A
batched rollout is one jitted program: ``scan`` over control steps of ``vmap`` over worlds
of that step, with the policy (if any) traced in between. ``impl="jax"`` is
differentiable; ``impl="warp"`` (MuJoCo Warp kernels through JAX's FFI) is the fast CUDA
path and is not.
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import mjx

from hybridsim._src.backends.base import (
    Drive,
    ModelConfig,
    RolloutOutput,
    SimModel,
    policy_controls,
)
from hybridsim._src.control_step import Learned, control_step
from hybridsim._src.errors import BackendError, ShapeError
from hybridsim._src.params import WorldParams, derived_fields
from hybridsim._src.program_cache import cached_jit
from hybridsim._src.types import Observation, SimState, Trajectory


def put_model(mj_model: mujoco.MjModel, impl: str) -> Any:
    """The backend's device model (an ``mjx.Model`` pytree)."""
    if impl == "warp":
        import importlib.util

        if importlib.util.find_spec("warp") is None:
            raise BackendError(
                "backend 'warp' needs the warp-lang package (pip install warp-lang); use "
                "backend 'mjx' or 'c' without it"
            )
        from hybridsim._src.progress import quiet_warp

        quiet_warp()
    try:
        return mjx.put_model(mj_model, impl=impl)
    except NotImplementedError as e:
        # e.g. MJX-JAX has no cylinder-box or cylinder-heightfield collision.
        raise BackendError(
            f"MJX (impl={impl!r}) cannot run this scene: {e}. Use backend 'c', or give the "
            "offending geoms a supported type (the scene builder's collision='convex_hull' "
            "turns a primitive into a convex mesh)"
        ) from None


def with_fields(mx: Any, fields: dict[str, jax.Array]) -> Any:
    """``mx`` with these MjModel fields replaced (one world's values, or batched under vmap)."""
    if not fields:
        return mx
    if hasattr(mx, "tree_replace"):
        return mx.tree_replace(fields)
    return mx.replace(**fields)


def make_world_data(mx: Any, mj_model: mujoco.MjModel, impl: str, qpos, qvel, act, time) -> Any:
    """An ``mjx.Data`` of one world at ``qpos (nq,)``, ``qvel (nv,)``, ``act (na,)``,
    ``time ()`` (seconds); every other field at MJX's defaults (zeros)."""
    d = mjx.make_data(mj_model if impl == "warp" else mx, impl=impl)
    return d.replace(
        qpos=qpos.astype(d.qpos.dtype),
        qvel=qvel.astype(d.qvel.dtype),
        act=act.astype(d.act.dtype),
        time=time.astype(d.time.dtype),
    )


def physics(mx: Any, substeps: int):
    """The ``Physics`` of one MJX world: ``substeps`` calls of ``mjx.step`` with the control
    ``u (nu,)`` and, when given, ``qfrc (nv,)`` in ``qfrc_applied``."""

    def run(d: Any, u: jax.Array, qfrc: jax.Array | None) -> Any:
        d = d.replace(ctrl=u.astype(d.ctrl.dtype))
        if qfrc is not None:
            d = d.replace(qfrc_applied=qfrc.astype(d.qfrc_applied.dtype))
        d, _ = jax.lax.scan(lambda d, _: (mjx.step(mx, d), None), d, None, length=substeps)
        return d

    return run


def no_physics(control_dt: float):
    """The ``Physics`` of a learned part that replaces physics: only time advances."""

    def run(d: Any, u: jax.Array, qfrc: jax.Array | None) -> Any:
        return d.replace(ctrl=u.astype(d.ctrl.dtype), time=d.time + control_dt)

    return run


def world_control_step(
    mx: Any,
    d: Any,
    status: jax.Array,
    u: jax.Array,
    learned: Learned | None = None,
    *,
    substeps: int,
    max_qvel: float,
    control_dt: float,
) -> tuple[Any, jax.Array, Learned | None]:
    """One world, one control step (``control_step`` on MJX): pure, jit- and vmap-able.
    ``d`` is the world's ``mjx.Data``, ``status ()`` int32, ``u (nu,)``."""
    if learned is not None and learned.part.replaces_physics:
        run = no_physics(control_dt)
    else:
        run = physics(mx, substeps)
    return control_step(run, d, status, u, learned, max_qvel)


# ------------------------------------------------------------------------- the interface


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


def prepare(
    scene: Any, batch_size: int, params: WorldParams | None, config: ModelConfig, impl: str
) -> SimModel:
    """A ``SimModel`` holding the ``mjx.Model`` and the per-world fields (sharded over the
    JAX devices on ``mjx`` when there are several)."""
    mj_model = scene.mj_model
    if config.differentiable:  # MJX differentiates its solver only at a fixed count
        mj_model = copy.copy(mj_model)
        mj_model.opt.iterations = 1
    device_model = put_model(mj_model, impl)
    sharding = _batch_sharding(batch_size, config.shard) if impl == "jax" else None
    fields = dict(params.fields) if params is not None else {}
    # Derived constants (subtree masses, inverse weights) of each world, as c has them.
    fields.update(derived_fields(scene.mj_model, fields))
    dtype = jnp.result_type(float)
    jfields = {k: jnp.asarray(v, dtype) for k, v in fields.items()}
    if sharding is not None:
        jfields = jax.device_put(jfields, sharding)
        replicated = jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec())
        device_model = jax.device_put(device_model, replicated)
    return SimModel(
        device_model=device_model,
        params=jfields,
        scene=scene,
        backend=config.backend,
        substeps=config.substeps,
        batch_size=batch_size,
        max_qvel=config.max_qvel,
        sharding=sharding,
        differentiable=config.differentiable,
    )


def rollout(
    model: SimModel, state: SimState, drive: Drive, learned: Learned | None, impl: str
) -> RolloutOutput:
    """The batched rollout as one compiled program (``_program``), stored on disk by
    ``program_cache`` so that a second process skips tracing MJX."""
    lparams = None if learned is None else learned.params
    lcarry = None if learned is None else learned.carry
    # MuJoCo Warp's FFI calls have no export compatibility guarantee: plain jit for warp.
    program = _program if impl == "jax" else _program.jitted
    traj, lcarry = program(
        model.device_model,
        model.params,
        state,
        drive.ctrl,
        lparams,
        lcarry,
        scene=model.scene,
        impl=impl,
        substeps=model.substeps,
        max_qvel=model.max_qvel,
        backend=model.backend,
        policy=drive.policy,
        steps=drive.steps,
        part=None if learned is None else learned.part,
    )
    return RolloutOutput(traj, None if learned is None else learned.replace(carry=lcarry))


@cached_jit(
    name="mjx_rollout",
    static_argnames=("scene", "impl", "substeps", "max_qvel", "backend", "policy", "steps", "part"),
)
def _program(
    mx: Any,
    fields: dict[str, jax.Array],
    state: SimState,
    ctrl: jax.Array | None,
    lparams: Any,
    lcarry: Any,
    *,
    scene: Any,
    impl: str,
    substeps: int,
    max_qvel: float,
    backend: str,
    policy: Any,
    steps: int,
    part: Any,
) -> tuple[Trajectory, Any]:
    """Every world's ``world_control_step`` over T control steps: ``vmap`` of ``scan`` open
    loop, ``scan`` of ``vmap`` closed loop (the policy sees the whole batch). Returns the
    trajectory and the learned part's memory at the end."""
    control_dt = substeps * scene.timestep

    def start(f, qpos, qvel, act, time):
        return make_world_data(with_fields(mx, f), scene.mj_model, impl, qpos, qvel, act, time)

    def one_world(f, d, status, u, params, carry):
        lrn = None if part is None else Learned(params, carry, part)
        d, status, lrn = world_control_step(
            with_fields(mx, f),
            d,
            status,
            u,
            lrn,
            substeps=substeps,
            max_qvel=max_qvel,
            control_dt=control_dt,
        )
        return d, status, (None if lrn is None else lrn.carry)

    field_axes = {k: 0 for k in fields}
    if policy is None:
        ys, status, lcarry = _open_loop(
            start, one_world, field_axes, fields, state, ctrl, lparams, lcarry
        )
    else:
        ys, status, lcarry = _closed_loop(
            start, one_world, field_axes, fields, state, lparams, lcarry, policy, steps
        )
    q, v, a, t, s, u = ys

    def with_start(x0, xs):
        return jnp.concatenate([jnp.asarray(x0, xs.dtype)[:, None], xs], axis=1)

    qpos, qvel = with_start(state.qpos, q), with_start(state.qvel, v)
    act, time = with_start(state.act, a), with_start(state.time, t)
    u = u if policy is not None else ctrl
    traj = Trajectory.from_steps(qpos, qvel, act, time, s, status, u, control_dt, backend)
    return traj, lcarry


def _open_loop(start, one_world, field_axes, fields, state, ctrl, lparams, lcarry):
    """``vmap`` over worlds of a ``scan`` over control steps: XLA then batches only what
    differs between worlds (the tabletop compiled in 67 s this way and not within 300 s as
    ``scan`` of ``vmap``). Returns per-step outputs ``(B, T, ...)``, status and memory."""

    def world(f, qpos, qvel, act, time, status, u_seq, carry):
        def step(c, u):
            d, status, carry = one_world(f, c[0], c[1], u, lparams, c[2])
            return (d, status, carry), (d.qpos, d.qvel, d.act, d.time, d.sensordata, None)

        init = (start(f, qpos, qvel, act, time), status, carry)
        (_, status, carry), ys = jax.lax.scan(step, init, u_seq)
        return ys, status, carry

    return jax.vmap(world, in_axes=(field_axes, 0, 0, 0, 0, 0, 0, 0))(
        fields,
        state.qpos,
        state.qvel,
        state.act,
        state.time,
        state.status.astype(jnp.int32),
        ctrl,
        lcarry,
    )


def _closed_loop(start, one_world, field_axes, fields, state, lparams, lcarry, policy, steps):
    """``scan`` over control steps of ``vmap`` over worlds, with the batched policy traced
    in between. Returns per-step outputs ``(B, T, ...)``, status and memory."""
    d0 = jax.vmap(start, in_axes=(field_axes, 0, 0, 0, 0))(
        fields, state.qpos, state.qvel, state.act, state.time
    )
    step = jax.vmap(one_world, in_axes=(field_axes, 0, 0, 0, None, 0))
    batch_size, nu = d0.ctrl.shape

    def body(carry, _):
        d, status, lcarry = carry
        obs = Observation(qpos=d.qpos, qvel=d.qvel, time=d.time, sensordata=d.sensordata)
        u = policy_controls(batch_size, nu, policy, obs)
        d, status, lcarry = step(fields, d, status, u, lparams, lcarry)
        return (d, status, lcarry), (d.qpos, d.qvel, d.act, d.time, d.sensordata, u)

    init = (d0, state.status.astype(jnp.int32), lcarry)
    (_, status, lcarry), ys = jax.lax.scan(body, init, None, length=steps)
    return jax.tree.map(lambda y: jnp.swapaxes(y, 0, 1), ys), status, lcarry
