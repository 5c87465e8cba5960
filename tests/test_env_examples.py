"""Smoke tests of examples/train_reach.py (Brax PPO adapter) and
benchmarks/env_throughput.py (table and targets)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridsim import envs

REPO = Path(__file__).resolve().parents[1]


def _load(relpath: str):
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def train_reach():
    pytest.importorskip("brax")
    return _load("examples/train_reach.py")


@pytest.fixture(scope="module")
def env_throughput():
    return _load("benchmarks/env_throughput.py")


def test_reach_runs_under_brax_training_wrappers(train_reach):
    """What Brax's PPO does with the env: its episode, auto-reset and vmap wrappers."""
    from brax.envs import training

    length = 3
    env = envs.make("Reach", episode_length=length)
    wrapped = training.wrap(train_reach.brax_env(env), episode_length=length)
    state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), 2))
    first_obs = np.asarray(state.obs)
    assert first_obs.shape == (2, env.observation_size)
    step = jax.jit(wrapped.step)
    action = jnp.full((2, env.action_size), 0.3, jnp.float32)
    for _ in range(length):
        state = step(state, action)
        assert set(state.metrics) >= {"distance", "success"}
        assert np.all(np.isfinite(np.asarray(state.obs)))
    # After `length` steps Brax truncated the episode and restarted from the first state.
    np.testing.assert_array_equal(np.asarray(state.info["truncation"]), 1.0)
    np.testing.assert_allclose(np.asarray(state.obs), first_obs)


def test_evaluate_reports_success_rate(train_reach):
    env = envs.make("Reach", episode_length=3)

    def still(obs, key):  # a policy that applies no torque
        return jnp.zeros(obs.shape[:-1] + (env.action_size,)), {}

    result = train_reach.evaluate(env, still, episodes=2, seed=0)
    assert result["episodes"] == 2
    assert 0.0 <= result["success_rate"] <= 1.0
    # Targets are at least 0.15 m from the shoulder; a still arm rarely sits on one.
    assert result["final_distance_mean_m"] > 0.0


def test_jax_compat_shim_replicates(train_reach):
    train_reach.ensure_brax_compat()
    out = jax.device_put_replicated({"a": jnp.ones(3)}, jax.local_devices()[:1])
    assert out["a"].shape == (1, 3)


def test_env_throughput_table_and_targets(env_throughput, tmp_path):
    rows = [
        env_throughput._row("functional", 1024, 10, 1, first=3.0, best=0.1),
        env_throughput._row("playground", 1024, 10, 1, first=2.0, best=0.2),
        env_throughput._row("gym_vector", 1024, 10, 1, first=2.0, best=0.4),
        env_throughput._row("physics_ours", 1024, 10, 1, first=2.0, best=0.05),
        env_throughput._skip("physics_playground", 1024, 10, "not installed"),
    ]
    assert rows[0]["env_sps"] == pytest.approx(1024 * 10 / 0.1)
    assert rows[0]["compile_seconds"] == pytest.approx(2.9)
    verdicts = {name: (ok, detail) for name, ok, detail in env_throughput.targets(rows)}
    (ratio_name,) = [n for n in verdicts if "vs Playground" in n]
    assert verdicts[ratio_name] == (True, "ratio 2.00")
    gym_cost = verdicts["Gymnasium vector env cost at B=1024 (information)"]
    assert gym_cost[1].startswith("0.25x")
    table = env_throughput.format_rows(rows)
    assert "functional" in table and "102.4k" in table
    assert "(not measured) physics_playground B=1024: not installed" in table
    # Without the Playground row the target is not measured rather than failed.
    verdicts = env_throughput.targets(rows[:1])
    assert verdicts[0][1] is None
    path = env_throughput.bench.write_json(tmp_path / "r.json", rows, {"command": "x"})
    doc = json.loads(path.read_text())
    assert [r["impl"] for r in doc["rows"]] == [r["impl"] for r in rows]


def test_env_throughput_run_cases_times_every_case(env_throughput):
    calls = {"a": 0, "b": 0}

    def make(name):
        def call():
            calls[name] += 1
            return np.zeros(3)

        return env_throughput._Case(name, 4, 2, 1, call)

    rows = env_throughput.run_cases([make("a"), make("b")], repeats=3)
    assert calls == {"a": 4, "b": 4}  # one warm-up + 3 timed calls each
    assert [r["impl"] for r in rows] == ["a", "b"]
    for r in rows:
        assert r["env_sps"] == pytest.approx(4 * 2 / r["seconds"])
        assert r["compile_seconds"] >= 0.0
