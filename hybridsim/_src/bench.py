"""Throughput measurement: hybridsim's rollout against the raw library doing the same work.

For every (scene, backend, B) ``run_throughput`` times, in the same process and with the
same controls:

- hybridsim: ``hs.rollout(model, state, ctrl)``;
- raw ``c``: one ``mujoco.rollout.rollout`` call (same thread count, same ``nstep``,
  persistent thread pool, controls repeated ``substeps`` times along the time axis);
- raw ``mjx``/``warp``: ``jax.jit(jax.vmap(lambda d, u: jax.lax.scan(step_with_ctrl, d, u)))``
  over ``mjx.step`` with ``mjx.put_model(m, impl=...)`` and ``mjx.make_data``, recording
  qpos, qvel, act, time and sensordata after every control step (what hybridsim returns).

Each side gets one warm-up call (its wall time, minus the best warm call, is the compile
time on the JAX backends), then ``repeats`` timed calls (more with ``min_seconds``),
interleaved hybridsim/raw so that load from other processes hits both alike; the best call
counts. Clocks stop only after
``jax.block_until_ready``.

Used by ``hybridsim bench`` and by the benchmark scripts (through ``hybridsim.bench``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROW_KEYS = (
    "scene",
    "backend",
    "batch_size",
    "steps",
    "control_steps",
    "substeps",
    "timestep",
    "repeats",
    "hs_seconds",
    "raw_seconds",
    "hs_sps",
    "raw_sps",
    "overhead",
    "rtf",
    "raw_rtf",
    "hs_first_seconds",
    "raw_first_seconds",
    "hs_compile_seconds",
    "raw_compile_seconds",
    "flagged_worlds",
    "nthread",
)
"""Keys of every row ``run_throughput`` returns (see ``run_throughput`` for meanings)."""

JAX_BACKENDS = ("mjx", "warp")


def random_controls(scene: Any, batch_size: int, control_steps: int, seed: int = 0) -> np.ndarray:
    """``(B, T, nu)`` float64 controls, uniform within the actuators' control range
    (``[-1, 1]`` for unlimited actuators), from a fixed seed."""
    low, high = scene.ctrl_range()
    low = np.where(np.isfinite(low), low, -1.0)
    high = np.where(np.isfinite(high), high, 1.0)
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(batch_size, control_steps, scene.nu))


def _block(x: Any) -> Any:
    import jax

    return jax.block_until_ready(x)


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    _block(fn())
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- raw c


def _raw_c(model: Any, state: Any, ctrl: np.ndarray) -> Callable[[], Any]:
    """Plain ``mujoco.rollout`` doing what the ``c`` backend does: same models, same
    number of threads, same ``nstep`` and controls held for ``substeps`` physics steps."""
    import mujoco
    from mujoco import rollout as mj_rollout

    m = model.scene.mj_model
    nthread = model.c_runtime.nthread
    datas = [mujoco.MjData(m) for _ in range(nthread)]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    d = mujoco.MjData(m)
    x0 = np.empty((model.batch_size, mujoco.mj_stateSize(m, spec)))
    qpos, qvel, act = (np.asarray(a) for a in (state.qpos, state.qvel, state.act))
    for b in range(model.batch_size):
        mujoco.mj_resetData(m, d)
        d.qpos[:], d.qvel[:], d.act[:] = qpos[b], qvel[b], act[b]
        mujoco.mj_getState(m, d, x0[b], spec)
    k = model.substeps
    nstep = ctrl.shape[1] * k

    def call():
        u = np.repeat(ctrl, k, axis=1) if k > 1 else ctrl
        return mj_rollout.rollout([m], datas, x0, u, nstep=nstep, persistent_pool=True)

    return call


# ------------------------------------------------------------------- raw mjx / warp


def _raw_jax(model: Any, state: Any, ctrl: np.ndarray) -> Callable[[], Any]:
    """Plain MJX: batched ``mjx.Data``, ``jit(vmap(scan(step)))``, same outputs as
    hybridsim (qpos, qvel, act, time, sensordata after every control step)."""
    import jax
    import jax.numpy as jnp
    from mujoco import mjx

    impl = "jax" if model.backend == "mjx" else "warp"
    m = model.scene.mj_model
    mx = mjx.put_model(m, impl=impl)
    k = model.substeps
    dtype = jnp.result_type(float)

    def init_world(qpos, qvel, act):
        d = mjx.make_data(mx if impl == "jax" else m, impl=impl)
        return d.replace(
            qpos=qpos.astype(d.qpos.dtype),
            qvel=qvel.astype(d.qvel.dtype),
            act=act.astype(d.act.dtype),
        )

    def step_with_ctrl(d, u):
        d = d.replace(ctrl=u.astype(d.ctrl.dtype))
        if k == 1:
            d = mjx.step(mx, d)
        else:
            d = jax.lax.fori_loop(0, k, lambda _, dd: mjx.step(mx, dd), d)
        return d, (d.qpos, d.qvel, d.act, d.time, d.sensordata)

    run = jax.jit(jax.vmap(lambda d, u: jax.lax.scan(step_with_ctrl, d, u)))
    data = jax.jit(jax.vmap(init_world))(
        jnp.asarray(state.qpos, dtype),
        jnp.asarray(state.qvel, dtype),
        jnp.asarray(state.act, dtype),
    )
    u = jnp.asarray(ctrl, dtype)
    _block((data, u))
    return lambda: run(data, u)


# ----------------------------------------------------------------------------- driver


def _measure(
    scene: str,
    backend: str,
    batch_size: int,
    steps: int,
    substeps: int,
    repeats: int,
    seed: int,
    progress: Callable[[str], None],
    min_seconds: float = 0.0,
    max_repeats: int = 0,
) -> dict[str, Any]:
    import hybridsim as hs

    if steps < substeps or steps % substeps:
        raise ValueError(
            f"steps={steps} physics steps must be a positive multiple of substeps={substeps}"
        )
    control_steps = steps // substeps
    label = f"{scene} {backend} B={batch_size} steps={steps}"
    model = hs.make_model(scene, batch_size=batch_size, backend=backend, substeps=substeps)
    state = hs.init(model)
    ctrl_np = random_controls(model.scene, batch_size, control_steps, seed)
    if backend in JAX_BACKENDS:
        import jax
        import jax.numpy as jnp

        ctrl = jax.block_until_ready(jnp.asarray(ctrl_np, jnp.result_type(float)))
        raw = _raw_jax(model, state, ctrl_np)
    else:
        ctrl = ctrl_np
        raw = _raw_c(model, state, ctrl_np)

    traj = None

    def hs_call():
        nonlocal traj
        traj = hs.rollout(model, state, ctrl)
        return traj

    progress(f"{label}: first calls (compile/warm-up)")
    hs_first = _timed(hs_call)
    raw_first = _timed(raw)
    hs_times, raw_times = [], []
    progress(
        f"{label}: {repeats}+ timed call(s) each"
        if min_seconds
        else f"{label}: {repeats} timed call(s) each"
    )
    limit = max(repeats, max_repeats)
    while len(hs_times) < limit:
        hs_times.append(_timed(hs_call))
        raw_times.append(_timed(raw))
        # Past the minimum, keep going while both sides have had less than min_seconds
        # of timed calls: more chances of a quiet moment on a busy machine.
        if len(hs_times) >= repeats and min(sum(hs_times), sum(raw_times)) >= min_seconds:
            break
    hs_s, raw_s = min(hs_times), min(raw_times)
    work = steps * batch_size
    hs_sps, raw_sps = work / hs_s, work / raw_s
    dt = model.scene.timestep
    is_jax = backend in JAX_BACKENDS
    row = {
        "scene": scene,
        "backend": model.backend,
        "batch_size": batch_size,
        "steps": steps,
        "control_steps": control_steps,
        "substeps": substeps,
        "timestep": dt,
        "repeats": len(hs_times),
        "hs_seconds": hs_s,
        "raw_seconds": raw_s,
        "hs_sps": hs_sps,
        "raw_sps": raw_sps,
        "overhead": raw_sps / hs_sps - 1.0,
        "rtf": hs_sps * dt,
        "raw_rtf": raw_sps * dt,
        "hs_first_seconds": hs_first,
        "raw_first_seconds": raw_first,
        "hs_compile_seconds": max(hs_first - hs_s, 0.0) if is_jax else None,
        "raw_compile_seconds": max(raw_first - raw_s, 0.0) if is_jax else None,
        "flagged_worlds": int(np.count_nonzero(np.asarray(traj.status))),
        "nthread": model.c_runtime.nthread if backend == "c" else None,
    }
    progress(
        f"{label}: hybridsim {hs_sps:,.0f} steps/s, raw {raw_sps:,.0f} steps/s, "
        f"overhead {100 * row['overhead']:+.1f}%"
    )
    return row


def run_throughput(
    scenes: Sequence[str],
    backends: Sequence[str],
    batch_sizes: Sequence[int],
    steps: int,
    substeps: int = 1,
    repeats: int = 3,
    progress: Callable[[str], None] | None = None,
    *,
    seed: int = 0,
    min_seconds: float = 0.0,
    max_repeats: int = 20,
) -> list[dict]:
    """Measures hybridsim's rollout and the raw library for every (scene, backend, B).

    Args:
      scenes: scene names or paths (anything ``hs.make_model`` takes as a string).
      backends: ``"c"``, ``"mjx"``, ``"warp"`` (``"auto"`` is resolved by make_model).
      batch_sizes: numbers of worlds B.
      steps: physics steps per world (a multiple of ``substeps``); hybridsim is called
        with ``steps // substeps`` control steps.
      substeps: physics steps per control step.
      repeats: timed calls per side after one warm-up call; the fastest counts.
      progress: called with a one-line message before and after each measurement.
      seed: seed of the uniform random controls.
      min_seconds: after ``repeats`` calls, keep calling (up to ``max_repeats`` per
        side) until each side has ``min_seconds`` of timed calls. Default 0: exactly
        ``repeats`` calls.
      max_repeats: cap on the timed calls per side when ``min_seconds`` asks for more.

    Returns:
      One dict per (scene, backend, B), keys ``ROW_KEYS`` (``repeats``: timed calls
      made per side):
      ``hs_sps``/``raw_sps`` physics steps x worlds per wall second (best call);
      ``overhead`` = raw_sps / hs_sps - 1 (a fraction; > 0 means hybridsim is slower);
      ``rtf``/``raw_rtf`` simulated seconds x B per wall second;
      ``*_first_seconds`` the warm-up call; ``*_compile_seconds`` first minus best call
      (JAX backends, else ``None``); ``flagged_worlds`` worlds hybridsim flagged
      (diverged or non-finite control); ``nthread`` the ``c`` thread count.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    say = progress if progress is not None else (lambda _msg: None)
    rows = []
    for scene in scenes:
        for backend in backends:
            for bsz in batch_sizes:
                rows.append(
                    _measure(
                        scene,
                        backend,
                        int(bsz),
                        int(steps),
                        int(substeps),
                        int(repeats),
                        seed,
                        say,
                        min_seconds=float(min_seconds),
                        max_repeats=int(max_repeats) if min_seconds > 0 else 0,
                    )
                )
    return rows


def error_row(
    scene: str, backend: str, batch_size: int, steps: int, substeps: int, error: str
) -> dict[str, Any]:
    """A row for a measurement that did not finish: every ``ROW_KEYS`` key (numbers
    ``None``) plus ``"error"``."""
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(
        scene=scene,
        backend=backend,
        batch_size=batch_size,
        steps=steps,
        control_steps=steps // substeps,
        substeps=substeps,
        error=error,
    )
    return row


# ---------------------------------------------------------------------------- output


def format_rate(x: float | None) -> str:
    """A rate (per second) for a table: ``1.23M``, ``45.6k``, ``7.8``; ``-`` when missing."""
    if x is None or not math.isfinite(x):
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.1f}"


def _fmt_seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def format_table(rows: Sequence[dict]) -> str:
    """An aligned plain-text table of ``run_throughput`` rows."""
    headers = (
        "scene",
        "backend",
        "B",
        "steps",
        "hs steps/s",
        "raw steps/s",
        "overhead",
        "RTF",
        "hs compile s",
        "raw compile s",
    )
    body = []
    for r in rows:
        ok = r.get("hs_sps") is not None and r.get("raw_sps") is not None
        body.append(
            (
                str(r["scene"]),
                str(r["backend"]),
                str(r["batch_size"]),
                str(r["steps"]),
                format_rate(r.get("hs_sps")),
                format_rate(r.get("raw_sps")),
                f"{100 * r['overhead']:+.1f}%" if ok else "-",
                f"{r['rtf']:,.1f}x" if ok else "-",
                _fmt_seconds(r.get("hs_compile_seconds")),
                _fmt_seconds(r.get("raw_compile_seconds")),
            )
        )
    notes = [
        f"(not measured) {r['scene']} {r['backend']} B={r['batch_size']}: {r['error']}"
        for r in rows
        if r.get("error")
    ]
    return "\n".join([aligned_table(headers, body, left={0, 1}), *notes])


def aligned_table(headers: Sequence[str], body: Sequence[Sequence[str]], left: set[int]) -> str:
    """Plain-text table: columns in ``left`` left-aligned, the others right-aligned."""
    widths = [max(len(h), 0, *(len(b[i]) for b in body)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, body)])


def print_targets(targets: Sequence[tuple[str, bool | None, str]]) -> None:
    """Prints one ``PASS``/``FAIL``/``n/a`` line per (name, ok, detail)."""
    for name, ok, detail in targets:
        verdict = "n/a " if ok is None else ("PASS" if ok else "FAIL")
        print(f"{verdict}  {name}: {detail}")


def environment_meta() -> dict[str, Any]:
    """Date, platform, CPU count, library versions and JAX devices of this process."""
    import jax
    import mujoco

    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "mujoco": mujoco.__version__,
    }
    try:
        meta["jax_devices"] = [str(d) for d in jax.devices()]
    except RuntimeError as e:  # no usable platform
        meta["jax_devices"] = [f"unavailable: {e}"]
    for dist in ("mujoco-mjx", "warp-lang", "hybridsim"):
        try:
            from importlib.metadata import version

            meta[dist] = version(dist)
        except Exception:  # noqa: BLE001 - optional packages
            meta[dist] = None
    return meta


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON values: dict keys as strings, tuples and arrays as lists, numpy
    scalars as Python numbers, non-finite floats as ``None``, anything else as ``str``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def write_json(path: str | os.PathLike, rows: Sequence[dict], meta: dict) -> Path:
    """Writes ``{"meta": ..., "rows": [...]}`` atomically (temp file, then ``os.replace``).

    ``meta`` is merged over ``environment_meta()``; non-finite floats become ``null``.
    Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"meta": jsonable({**environment_meta(), **meta}), "rows": jsonable(list(rows))}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
