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

from hybridsim._src.errors import BackendError
from hybridsim._src.program_cache import cached_jit
from hybridsim._src.types import Status


def put_model(mj_model: mujoco.MjModel, impl: str) -> Any:
    """The backend's device model (an ``mjx.Model`` pytree)."""
    if impl == "warp":
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


def _with_fields(mx: Any, fields: dict[str, jax.Array]) -> Any:
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


def control_step(
    mx: Any,
    d: Any,
    status: jax.Array,
    u: jax.Array,
    aux: Any = None,
    hook_carry: Any = None,
    *,
    substeps: int,
    max_qvel: float,
    hook: Any = None,
) -> tuple[Any, jax.Array, Any]:
    """One world, one control step: a pure function, jit- and vmap-able.

    Writes the control ``u (nu,)`` (non-finite entries become 0 and flag the world
    ``NONFINITE_CTRL``), runs ``substeps`` calls of ``mjx.step`` (with the optional
    ``hook`` around them, see ``_world_rollout``) and checks the world's health. A world
    whose ``status ()`` int32 is non-zero keeps its last good ``qpos, qvel, act, time``
    and ``sensordata``. Returns ``(d, status, hook_carry)``.
    """
    u_ok = jnp.all(jnp.isfinite(u))
    u = jnp.where(jnp.isfinite(u), u, 0.0).astype(d.ctrl.dtype)
    d_in, new_hc = d.replace(ctrl=u), hook_carry
    if hook is not None:
        d_in, new_hc = hook.before(aux, hook_carry, d_in)

    def substep(d, _):
        return mjx.step(mx, d), None

    nd, _ = jax.lax.scan(substep, d_in, None, length=substeps)
    if hook is not None:
        nd, new_hc = hook.after(aux, new_hc, d_in, nd)
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
        sensordata=jnp.where(keep, d.sensordata, nd.sensordata),
    )
    hook_carry = jax.tree.map(lambda old, new: jnp.where(keep, old, new), hook_carry, new_hc)
    return nd, status, hook_carry


def _world_rollout(
    mx: Any,
    fields: dict[str, jax.Array],
    qpos: jax.Array,
    qvel: jax.Array,
    act: jax.Array,
    time: jax.Array,
    status: jax.Array,
    ctrl: jax.Array,
    aux: Any,
    hook_carry: Any,
    *,
    mj_model: mujoco.MjModel,
    impl: str,
    substeps: int,
    max_qvel: float,
    hook: Any,
):
    """One world over T control steps. ctrl (T, nu); returns per-step outputs.

    ``hook`` (static, optional) adds work around the physics of each control step:
    ``hook.before(aux, carry, d) -> (d, carry)`` may write e.g. ``qfrc_applied``;
    ``hook.after(aux, carry, d_before, d_after) -> (d_after, carry)`` may correct the
    state. ``aux`` holds its traced parameters, ``hook_carry`` its per-world memory.
    """
    mx = _with_fields(mx, fields)
    d = make_world_data(mx, mj_model, impl, qpos, qvel, act, time)
    # sensordata starts at zeros (make_data) and is held, like the state, once flagged.

    def body(carry, u):
        d, status, hc = carry
        nd, status, hc = control_step(
            mx, d, status, u, aux, hc, substeps=substeps, max_qvel=max_qvel, hook=hook
        )
        return (nd, status, hc), (nd.qpos, nd.qvel, nd.act, nd.time, nd.sensordata)

    init = (d, status.astype(jnp.int32), hook_carry)
    (_, status, hook_carry), ys = jax.lax.scan(body, init, ctrl)
    return ys, status, hook_carry


@cached_jit(
    name="mjx_rollout", static_argnames=("mj_model_key", "impl", "substeps", "max_qvel", "hook")
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
    aux,
    hook_carry,
    *,
    mj_model_key,
    impl,
    substeps,
    max_qvel,
    hook,
):
    fn = functools.partial(
        _world_rollout,
        mj_model=mj_model_key.mj_model,
        impl=impl,
        substeps=substeps,
        max_qvel=max_qvel,
        hook=hook,
    )
    field_axes = {k: 0 for k in fields}
    return jax.vmap(fn, in_axes=(None, field_axes, 0, 0, 0, 0, 0, 0, None, 0))(
        mx, fields, qpos, qvel, act, time, status, ctrl, aux, hook_carry
    )


def rollout(
    mx,
    fields,
    qpos,
    qvel,
    act,
    time,
    status,
    ctrl,
    *,
    scene,
    impl,
    substeps,
    max_qvel,
    hook=None,
    aux=None,
    hook_carry=None,
):
    """Batched rollout; ctrl (B, T, nu). Returns a dict of (B, T+1, ...) arrays.

    With a ``hook`` the dict's ``hook_carry`` is the hook's per-world memory at the end.
    """
    ys, status, hook_carry = _batched(
        mx,
        fields,
        qpos,
        qvel,
        act,
        time,
        status,
        ctrl,
        aux,
        hook_carry,
        mj_model_key=scene,
        impl=impl,
        substeps=substeps,
        max_qvel=float(max_qvel),
        hook=hook,
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
        "hook_carry": hook_carry,
    }
