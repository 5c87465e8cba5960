"""``residual.fit`` in parts: compiled once per shape, non-finite fits refused, and scenes
MJX cannot run fitted on MuJoCo C alone."""

from __future__ import annotations

import contextlib
import json

import jax
import numpy as np
import pytest

import hybridsim as hs
from hybridsim import residual, synthetic_reality
from hybridsim._src.cli.main import main
from hybridsim._src.residual import losses, phases

# JAX reports each trace, lowering and XLA compile (or persistent-cache load) as one of these.
_COMPILE_DURATIONS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_COMPILE_EVENTS = (
    "/jax/compilation_cache/compile_requests_use_cache",
    "/jax/compilation_cache/cache_hits",
    "/jax/compilation_cache/cache_misses",
)


@contextlib.contextmanager
def counting_compiles():
    """Yields a list that collects (event, function name) for every trace, lowering,
    backend compile and persistent-cache request JAX makes inside the block."""
    seen: list[tuple[str, str]] = []

    def on_duration(event, _secs, **kw):
        if event in _COMPILE_DURATIONS:
            seen.append((event, str(kw.get("fun_name"))))

    def on_event(event, **kw):
        if event in _COMPILE_EVENTS:
            seen.append((event, ""))

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
        jax.monitoring.unregister_event_listener(on_event)


def _arm2_episodes(seed: int) -> residual.Episodes:
    scene = hs.load_scene("arm2")
    eff = synthetic_reality.parse_effects("latency=1,mass_scale=1.3")
    rec = synthetic_reality.record(scene, eff, episodes=4, steps=12, seed=seed, substeps=2)
    return residual.episodes_from(vars(rec))


# A network width no other test uses, so the first fit has to trace its programs.
_TINY = residual.FitConfig(
    residual=residual.ResidualConfig(hidden=(7,), history=1),
    one_step_iters=4,
    multi_step_iters=2,
    horizon=1,
    batch_size=32,
    eval_every=2,
    select_horizon=5,
)


def test_a_second_fit_of_the_same_shapes_compiles_nothing(tmp_path):
    scene = hs.load_scene("arm2")
    first_data, second_data = _arm2_episodes(0), _arm2_episodes(1)
    assert first_data.qpos.shape == second_data.qpos.shape
    assert not np.array_equal(first_data.qpos, second_data.qpos)
    with counting_compiles() as first:
        one = residual.fit(scene, first_data, _TINY, tmp_path / "one")
    assert first, "the counter saw no compilation at all in the first fit"
    assert {e["phase"] for e in one.log} == {"one_step", "multi_step"}
    with counting_compiles() as second:
        two = residual.fit(scene, second_data, _TINY, tmp_path / "two")
    assert second == []
    assert {e["phase"] for e in two.log} == {"one_step", "multi_step"}
    a, b = (np.asarray(jax.tree.leaves(f.residual.params)[0]) for f in (one, two))
    assert not np.array_equal(a, b)  # other data, other fit


@pytest.mark.parametrize("validation", ["finite", "loss"])
def test_non_finite_parameters_are_a_fit_error_and_nothing_is_written(
    tmp_path, monkeypatch, validation
):
    """An update that makes the weights NaN: whether validation notices (the one-step loss
    on validation data, NaN) or not (a score that keeps improving), ``fit`` raises FitError
    and writes no model."""
    scene = hs.load_scene("arm2")

    def nan_update(trainable, opt_state, res, x, y, *, opt):
        return jax.tree.map(lambda p: p * np.nan, trainable), opt_state, np.float32(1.0)

    monkeypatch.setattr(losses, "one_step_update", nan_update)
    if validation == "finite":
        scores = iter(np.linspace(1.0, 0.1, 10))
        monkeypatch.setattr(phases, "rollout_score", lambda *_: float(next(scores)))
    config = residual.FitConfig(
        residual=residual.ResidualConfig(hidden=(8,), history=1),
        one_step_iters=4,
        multi_step_iters=0,
        eval_every=2,
        select_horizon=5 if validation == "finite" else 0,
    )
    match = "not finite" if validation == "finite" else "validation loss became nan"
    with pytest.raises(hs.FitError, match=match):
        residual.fit(scene, _arm2_episodes(0), config, tmp_path / "run")
    assert not (tmp_path / "run" / "meta.json").exists()
    assert not (tmp_path / "run" / "weights.msgpack").exists()


# A cylinder resting on a box (MJX-JAX has no cylinder-box collision) and a one-joint arm.
CYLINDER_ON_BOX = """
<mujoco model="can_on_table">
  <option timestep="0.01"/>
  <worldbody>
    <geom name="table" type="box" size="0.5 0.5 0.05" pos="0 0 -0.05"/>
    <body name="can" pos="0.3 0 0.1">
      <freejoint/>
      <geom type="cylinder" size="0.04 0.1" mass="0.2"/>
    </body>
    <body name="arm" pos="0 0 0.3">
      <joint name="hinge" axis="0 0 1" damping="0.1"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02" contype="0" conaffinity="0"
            mass="0.3"/>
    </body>
  </worldbody>
  <actuator><motor joint="hinge" ctrlrange="-1 1"/></actuator>
</mujoco>
"""


@pytest.fixture(scope="module")
def can_on_table(tmp_path_factory):
    """The scene's MJCF path and three recorded episodes of 12 control steps (npz)."""
    folder = tmp_path_factory.mktemp("can")
    xml = folder / "can_on_table.xml"
    xml.write_text(CYLINDER_ON_BOX)
    model = hs.make_model(str(xml), 3, backend="c", substeps=2)
    ctrl = np.random.default_rng(0).uniform(-1, 1, (3, 12, model.scene.nu))
    hs.save_trajectory(folder / "train.npz", hs.rollout(model, hs.init(model), ctrl))
    return xml, folder / "train.npz"


def test_a_scene_mjx_cannot_run_keeps_the_one_step_fit(can_on_table, tmp_path):
    xml, data = can_on_table
    scene = hs.load_scene(str(xml))
    with pytest.raises(hs.BackendError, match="collisions not implemented"):
        hs.make_model(scene, 1, backend="mjx", differentiable=True)
    episodes = residual.episodes_from(hs.load_trajectory(data, scene))
    config = residual.FitConfig(
        residual=residual.ResidualConfig(hidden=(8,), history=1),
        one_step_iters=4,
        multi_step_iters=2,
        horizon=1,
        eval_every=2,
        select_horizon=5,
    )
    lines: list[str] = []
    fitted = residual.fit(scene, episodes, config, tmp_path / "run", progress=lines.append)
    skipped = [line for line in lines if line.startswith("multi-step phase skipped")]
    assert len(skipped) == 1
    assert f"MJX cannot run scene {scene.name!r}" in skipped[0]
    assert "collisions not implemented" in skipped[0]
    assert skipped[0].endswith("kept the one-step fit")
    # the one-step phase ran and was scored by MuJoCo C rollouts; the skip is recorded
    assert [e["step"] for e in fitted.log if e["phase"] == "one_step"] == [0, 2, 4]
    assert fitted.log[-1] == {"phase": "multi_step", "step": 0, "skipped": skipped[0]}
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["log"][-1]["skipped"] == skipped[0]
    assert residual.load_fitted(tmp_path / "run", scene).residual is not None
    # identification needs MJX gradients: refused before any work
    sysid = residual.FitConfig(
        multi_step_iters=2, horizon=1, sysid=("dof_damping",), sysid_only=True
    )
    with pytest.raises(hs.FitError, match="cannot identify.*MJX"):
        residual.fit(scene, episodes, sysid, tmp_path / "sysid")
    assert not (tmp_path / "sysid").exists()


def test_cli_fit_on_a_scene_mjx_cannot_run(can_on_table, tmp_path, capsys):
    xml, data = can_on_table
    args = ["residual", "fit", "--scene", str(xml), "--data", str(data)]
    args += ["--out", str(tmp_path / "run"), "--hidden", "8", "--history", "1"]
    args += ["--iters", "4", "--multi-step-iters", "2", "--horizon", "1", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "multi-step phase skipped: MJX cannot run scene" in out
    assert "wrote" in out
