"""The ``mjx`` and ``warp`` backends: MJX with ``impl="jax"`` or ``impl="warp"``.

One pure world function, vmapped over the batch and jitted: per control step it writes
the control, runs ``substeps`` calls of ``mjx.step``, checks the world's health and
records the trajectory. ``impl="jax"`` is differentiable; ``impl="warp"`` (MuJoCo Warp
kernels through JAX's FFI) is the fast CUDA path and is not.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
from mujoco import mjx

from hybridsim._src.types import Status


def put_model(mj_model: mujoco.MjModel, impl: str) -> Any:
    """The backend's device model (an ``mjx.Model`` pytree)."""
    if impl == "warp":
        from hybridsim._src.progress import quiet_warp

        quiet_warp()
    return mjx.put_model(mj_model, impl=impl)


def _with_fields(mx: Any, fields: dict[str, jax.Array]) -> Any:
    if not fields:
        return mx
    if hasattr(mx, "tree_replace"):
        return mx.tree_replace(fields)
    return mx.replace(**fields)


def _world_rollout(
    mx: Any,
    fields: dict[str, jax.Array],
    qpos: jax.Array,
    qvel: jax.Array,
    act: jax.Array,
    time: jax.Array,
    status: jax.Array,
    ctrl: jax.Array,
    *,
    mj_model: mujoco.MjModel,
    impl: str,
    substeps: int,
    max_qvel: float,
):
    """One world over T control steps. ctrl (T, nu); returns per-step outputs."""
    mx = _with_fields(mx, fields)
    d = mjx.make_data(mj_model if impl == "warp" else mx, impl=impl)
    d = d.replace(
        qpos=qpos.astype(d.qpos.dtype),
        qvel=qvel.astype(d.qvel.dtype),
        act=act.astype(d.act.dtype),
        time=time.astype(d.time.dtype),
    )
    sens0 = jnp.zeros_like(d.sensordata)

    def substep(d, _):
        return mjx.step(mx, d), None

    def control_step(carry, u):
        d, status, sens = carry
        u_ok = jnp.all(jnp.isfinite(u))
        u = jnp.where(jnp.isfinite(u), u, 0.0).astype(d.ctrl.dtype)
        nd, _ = jax.lax.scan(substep, d.replace(ctrl=u), None, length=substeps)
        healthy = (
            jnp.all(jnp.isfinite(nd.qpos))
            & jnp.all(jnp.isfinite(nd.qvel))
            & jnp.all(jnp.isfinite(nd.act))
            & (jnp.max(jnp.abs(nd.qvel), initial=0.0) <= max_qvel)
        )
        fresh = status == 0
        status = status | jnp.where(fresh & ~u_ok, int(Status.NONFINITE_CTRL), 0)
        status = status | jnp.where(fresh & u_ok & ~healthy, int(Status.DIVERGED), 0)
        keep = status != 0  # flagged worlds hold their last good state
        nd = nd.replace(
            qpos=jnp.where(keep, d.qpos, nd.qpos),
            qvel=jnp.where(keep, d.qvel, nd.qvel),
            act=jnp.where(keep, d.act, nd.act),
            time=jnp.where(keep, d.time, nd.time),
        )
        sens = jnp.where(keep, sens, nd.sensordata)
        return (nd, status, sens), (nd.qpos, nd.qvel, nd.act, nd.time, sens)

    (_, status, _), ys = jax.lax.scan(control_step, (d, status.astype(jnp.int32), sens0), ctrl)
    return ys, status


@functools.partial(
    jax.jit, static_argnames=("mj_model_key", "impl", "substeps", "max_qvel", "field_names")
)
def _batched(
    mx,
    fields,
    qpos,
    qvel,
    act,
    time,
    status,
    ctrl,
    *,
    mj_model_key,
    impl,
    substeps,
    max_qvel,
    field_names,
):
    del field_names  # only part of the cache key
    fn = functools.partial(
        _world_rollout,
        mj_model=mj_model_key.mj_model,
        impl=impl,
        substeps=substeps,
        max_qvel=max_qvel,
    )
    field_axes = {k: 0 for k in fields}
    return jax.vmap(fn, in_axes=(None, field_axes, 0, 0, 0, 0, 0, 0))(
        mx, fields, qpos, qvel, act, time, status, ctrl
    )


def rollout(mx, fields, qpos, qvel, act, time, status, ctrl, *, scene, impl, substeps, max_qvel):
    """Batched rollout; ctrl (B, T, nu). Returns dict of (B, T+1, ...) arrays."""
    ys, status = _batched(
        mx,
        fields,
        qpos,
        qvel,
        act,
        time,
        status,
        ctrl,
        mj_model_key=scene,
        impl=impl,
        substeps=substeps,
        max_qvel=float(max_qvel),
        field_names=tuple(sorted(fields)),
    )
    q, v, a, t, s = ys

    def with_start(x0, xs):
        return jnp.concatenate([jnp.asarray(x0, xs.dtype)[:, None], xs], axis=1)

    return {
        "qpos": with_start(qpos, q),
        "qvel": with_start(qvel, v),
        "act": with_start(act, a),
        "time": with_start(time, t),
        "sensordata": s,
        "status": status,
    }
