"""Exported programs (``program_cache.cached_jit``): same results as ``jax.jit``, loaded
by a second process without tracing, plain ``jax.jit`` under transformations, and a
corrupt file replaced. Each test points ``$HYBRIDSIM_CACHE_DIR`` (where the exported
programs live) at its own folder; the XLA cache stays the session's (conftest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_ctrl

import hybridsim as hs
from hybridsim._src import program_cache
from hybridsim._src.dataclasses import pytree_dataclass, static_field


@pytest.fixture
def export_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(program_cache.ENV_SWITCH, raising=False)
    assert jax.config.jax_compilation_cache_dir, "conftest enables the compilation cache"
    return tmp_path / "exported"


def _delta(before: program_cache.ProgramStats) -> dict[str, int]:
    after = program_cache.stats()
    return {k: getattr(after, k) - getattr(before, k) for k in ("exported", "loaded", "replaced")}


@pytree_dataclass
class _Point:
    x: jax.Array
    label: str = static_field(default="p")


def _affine(p: _Point, w: dict, *, scale: float):
    y = jnp.tanh(p.x @ w["a"]) * scale + w["b"]
    return _Point(y, label=p.label + "!"), (jnp.sum(y), None)


def _inputs():
    p = _Point(jnp.arange(6.0).reshape(2, 3) / 6.0, label="q")
    w = {"a": jnp.ones((3, 4)) * 0.1, "b": jnp.arange(4.0)}
    return p, w


def _assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_exports_once_then_loads_with_same_results_as_jit(export_dir):
    f = program_cache.cached_jit(_affine, name="affine", static_argnames=("scale",))
    p, w = _inputs()
    before = program_cache.stats()
    out = f(p, w, scale=2.0)
    f(p, w, scale=2.0)  # memo: no second export
    assert _delta(before) == {"exported": 1, "loaded": 0, "replaced": 0}
    assert len(list(export_dir.glob("affine-*.bin"))) == 1
    _assert_same(out, jax.jit(_affine, static_argnames="scale")(p, w, scale=2.0))
    assert out[0].label == "q!"

    # A fresh wrapper (as in a new process) loads the stored program instead of tracing.
    before = program_cache.stats()
    again = program_cache.cached_jit(_affine, name="affine", static_argnames=("scale",))
    _assert_same(again(p, w, scale=2.0), out)
    assert _delta(before) == {"exported": 0, "loaded": 1, "replaced": 0}

    # Another static value or input shape is another program.
    before = program_cache.stats()
    again(p, w, scale=3.0)
    again(_Point(jnp.zeros((5, 3))), w, scale=2.0)
    assert _delta(before) == {"exported": 2, "loaded": 0, "replaced": 0}


def test_corrupt_file_is_replaced(export_dir):
    f = program_cache.cached_jit(_affine, name="affine", static_argnames=("scale",))
    p, w = _inputs()
    expected = f(p, w, scale=2.0)
    (path,) = export_dir.glob("affine-*.bin")
    path.write_bytes(b"not a program")

    before = program_cache.stats()
    g = program_cache.cached_jit(_affine, name="affine", static_argnames=("scale",))
    _assert_same(g(p, w, scale=2.0), expected)
    assert _delta(before) == {"exported": 1, "loaded": 0, "replaced": 1}
    assert path.read_bytes() != b"not a program"


def test_plain_jit_under_grad_switch_and_unkeyable_static(export_dir, monkeypatch):
    f = program_cache.cached_jit(_affine, name="affine", static_argnames=("scale",))
    p, w = _inputs()

    def loss(a):
        return f(p, {"a": a, "b": w["b"]}, scale=2.0)[1][0]

    before = program_cache.stats()
    g = jax.grad(loss)(w["a"])
    g_ref = jax.grad(lambda a: _affine(p, {"a": a, "b": w["b"]}, scale=2.0)[1][0])(w["a"])
    np.testing.assert_allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-6)
    assert program_cache.stats().fallback > before.fallback
    assert _delta(before)["exported"] == 0

    # A static argument with no stable fingerprint: jit, no file.
    h = program_cache.cached_jit(lambda x, *, fn: fn(x), name="apply", static_argnames=("fn",))
    np.testing.assert_allclose(np.asarray(h(w["b"], fn=jnp.sin)), np.sin(np.arange(4.0)), 1e-6)

    monkeypatch.setenv(program_cache.ENV_SWITCH, "0")
    f(p, w, scale=5.0)
    assert _delta(before)["exported"] == 0
    assert not export_dir.exists() or not list(export_dir.iterdir())


_CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import hybridsim as hs
    from hybridsim._src import program_cache

    xla_cache, ctrl_path, out_path = sys.argv[1:]
    hs.enable_compilation_cache(xla_cache)
    model = hs.make_model("arm2", 2, backend="mjx")
    traj = hs.rollout(model, hs.init(model), np.load(ctrl_path))
    np.save(out_path, np.asarray(traj.qpos))
    s = program_cache.stats()
    print(json.dumps({"exported": s.exported, "loaded": s.loaded, "fallback": s.fallback}))
    """
)


def test_mjx_rollout_is_exported_and_a_second_process_loads_it(export_dir, tmp_path, monkeypatch):
    model = hs.make_model("arm2", 2, backend="mjx")
    state = hs.init(model)
    ctrl = random_ctrl(model.scene, 2, 4, seed=1)
    before = program_cache.stats()
    traj = hs.rollout(model, state, ctrl)
    assert _delta(before)["exported"] == 1
    assert len(list(export_dir.glob("mjx_rollout-*.bin"))) == 1

    monkeypatch.setenv(program_cache.ENV_SWITCH, "0")
    reference = hs.rollout(model, state, ctrl)
    monkeypatch.delenv(program_cache.ENV_SWITCH)
    for name in ("qpos", "qvel", "time", "sensordata", "status"):
        np.testing.assert_array_equal(
            np.asarray(getattr(traj, name)), np.asarray(getattr(reference, name)), err_msg=name
        )

    np.save(tmp_path / "ctrl.npy", ctrl)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            jax.config.jax_compilation_cache_dir,
            str(tmp_path / "ctrl.npy"),
            str(tmp_path / "qpos.npy"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HYBRIDSIM_CACHE_DIR": str(tmp_path), "JAX_PLATFORMS": "cpu"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts == {"exported": 0, "loaded": 1, "fallback": 0}
    np.testing.assert_array_equal(np.load(tmp_path / "qpos.npy"), np.asarray(traj.qpos))


def test_mjx_rollout_differentiates_through_plain_jit(export_dir):
    model = hs.make_model("arm2", 2, backend="mjx", differentiable=True)
    state = hs.init(model)
    before = program_cache.stats()

    def loss(u):
        return jnp.sum(hs.rollout(model, state, u).qpos[:, -1] ** 2)

    g = jax.grad(loss)(jnp.full((2, 3, model.scene.nu), 0.3, jnp.float32))
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).max()) > 0
    assert program_cache.stats().fallback > before.fallback
    assert _delta(before)["exported"] == 0
