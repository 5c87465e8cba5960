"""PPO through Brax, saved task policies, ``policy eval`` and the Gymnasium/SB3 integration.

Compile cost: one tiny Brax PPO run on Reach (module fixture; Brax compiles its reset,
training epoch and evaluation around the MJX step), one ``policy eval`` scan, and Reach
with ``EPISODE`` control steps for the vector/SB3 tests (one shared runner).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest

import hybridsim.envs  # noqa: F401  (registers the Gymnasium ids)
from hybridsim._src.cli.main import main
from hybridsim._src.errors import EnvError, PolicyError
from hybridsim._src.evaluation.saved_policy import load_policy_folder
from hybridsim._src.learning import ppo
from hybridsim._src.learning.common import TrainConfig

pytest.importorskip("brax")

ROOT = Path(__file__).resolve().parents[1]
TASK = "hybridsim/Reach-v0"
EPISODE = 3  # control steps per episode in the vector/SB3 tests
# Tiny on purpose: 160 env steps per iteration, 2 iterations, 3 evaluations of 4 episodes.
TINY = ppo.PPOConfig(
    num_envs=8,
    batch_size=8,
    num_minibatches=4,
    unroll_length=5,
    num_updates_per_batch=1,
    hidden=(8,),
    num_evals=3,
    num_eval_envs=4,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny PPO run; also captures what Brax's trainer returned."""
    out = tmp_path_factory.mktemp("ppo") / "run"
    captured = {}
    original = ppo.run_brax_ppo

    def spy(*args, **kwargs):
        captured["brax"] = original(*args, **kwargs)
        return captured["brax"]

    lines = _Lines()
    mp = pytest.MonkeyPatch()
    mp.setattr(ppo, "run_brax_ppo", spy)
    try:
        config = TrainConfig(task=TASK, algo="ppo", out=out, env_steps=320, seed=0)
        result = ppo.train(config, progress=lines, ppo=TINY)
    finally:
        mp.undo()
    return config, result, captured["brax"], lines.said


class _Lines:
    """A ``Progress`` that keeps its lines."""

    def __init__(self):
        self.said: list[str] = []

    def say(self, message: str) -> None:
        self.said.append(message)


def test_ppo_writes_policy_curve_and_tensorboard(trained):
    config, result, _, lines = trained
    out = Path(config.out)
    assert result.policy_dir == out / "policy" and (out / "policy" / "policy.json").is_file()
    meta = json.loads((out / "policy" / "policy.json").read_text())
    assert meta["obs"] == ["task"] and meta["task"] == TASK
    assert meta["module"] == "hybridsim._src.learning.ppo:BraxPPOPolicy"
    curve = json.loads((out / "curve.json").read_text())
    assert [p["env_steps"] for p in curve] == [0, 160, 320]
    assert lines[0].startswith("ppo on Reach (physics)")
    assert lines[1:] == [ppo.progress_line(p) for p in result.curve]
    assert lines[-1].startswith("ppo steps 320  return ")
    for p in result.curve:
        assert np.isfinite(p.mean_return) and 0.0 <= p.success_rate <= 1.0
    assert result.final_return == result.curve[-1].mean_return
    scalars = _tensorboard_scalars(out / "tb")
    assert [step for step, _ in scalars["return"]] == [0, 160, 320]
    assert [v for _, v in scalars["return"]] == pytest.approx([p["mean_return"] for p in curve])
    assert len(scalars["success_rate"]) == 3


def _tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` read from the TFRecord event files in ``folder``
    (length u64, crc u32, an ``Event`` proto, crc u32 per record)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_saved_policy_acts_as_brax_deterministic_inference(trained):
    """The NNX module equals Brax's ``make_policy(params, deterministic=True)``: tanh of
    the Gaussian mean, after Brax's observation normalisation."""
    _, result, (make_policy, params), _ = trained
    normalizer = params[0]
    assert not np.allclose(normalizer.std, 1.0), "normalisation was not exercised"
    policy = load_policy_folder(result.policy_dir)
    assert policy.is_task_policy
    obs = 2.0 * jax.random.normal(jax.random.PRNGKey(1), (64, 12))
    expected, _ = make_policy(params, deterministic=True)(obs, jax.random.PRNGKey(0))
    actions = np.asarray(policy(np.asarray(obs)))
    assert actions.shape == (64, 2) and np.all(np.abs(actions) <= 1)
    np.testing.assert_allclose(actions, np.asarray(expected), rtol=0, atol=1e-6)
    # One observation, as a Gymnasium env gives it.
    np.testing.assert_allclose(np.asarray(policy(np.asarray(obs[0]))), actions[0], atol=1e-6)


def test_finished_run_is_refused(trained):
    config, _, _, _ = trained
    with pytest.raises(PolicyError, match="already holds a trained policy"):
        ppo.train(config, ppo=TINY)


def test_budget_below_one_iteration_is_an_error(tmp_path):
    config = TrainConfig(task=TASK, algo="ppo", out=tmp_path / "run", env_steps=100)
    with pytest.raises(EnvError, match="below one PPO iteration"):
        ppo.train(config, ppo=TINY)


def test_brax_compat_adds_device_put_replicated():
    from hybridsim._src.learning.brax_compat import ensure_brax_compat

    ensure_brax_compat()
    ensure_brax_compat()  # idempotent
    tree = jax.device_put_replicated({"a": np.ones(3)}, jax.devices()[:1])
    assert tree["a"].shape == (1, 3)


def test_policy_eval_cli(trained, capsys):
    _, result, _, _ = trained
    argv = ["policy", "eval", "--task", TASK, "--policy", str(result.policy_dir)]
    assert main([*argv, "--episodes", "4", "--seed", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["episodes"] == 4 and len(doc["returns"]) == 4 and doc["world"] == "physics"
    assert doc["mean_return"] == pytest.approx(np.mean(doc["returns"]))
    assert doc["mean_return"] < 0 and 0.0 <= doc["success_rate"] <= 1.0  # Reach: -distance
    # In a synthetic reality of the task (on MJX): the same starts, other returns.
    assert main([*argv, "--episodes", "4", "--seed", "1", "--json", "--reality", "latency=3"]) == 0
    real = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert real["world"] == "reality" and len(real["returns"]) == 4
    assert real["returns"] != doc["returns"]
    # Effects MJX cannot express (the default preset's drag) are one line, exit 2.
    assert main([*argv, "--episodes", "4", "--reality", "default"]) == 2
    assert "cannot express" in capsys.readouterr().err


def test_policy_eval_refuses_a_scene_policy(tmp_path, capsys):
    from flax import nnx

    from hybridsim._src.evaluation.saved_policy import save_policy

    module = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
    build = {"module": "flax.nnx:Linear", "kwargs": {"in_features": 4, "out_features": 2}}
    folder = save_policy(tmp_path / "p", module, {**build, "obs": ["qpos", "qvel"]})
    rc = main(["policy", "eval", "--task", TASK, "--policy", str(folder), "--episodes", "2"])
    assert rc == 2 and "not a task policy" in capsys.readouterr().err


def test_docs_three_lines_run_a_saved_policy(trained):
    """The three-line block of docs/learning_ppo.md, run as written on the trained policy."""
    _, result, _, _ = trained
    text = (ROOT / "docs" / "learning_ppo.md").read_text()
    section = text.split("in three lines", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code = code.replace('"runs/reach_ppo/policy"', repr(str(result.policy_dir)))
    scope: dict = {}
    exec(compile(code, "docs/learning_ppo.md", "exec"), scope)
    assert scope["truncated"] and not scope["terminated"]  # 200 steps: Reach's limit
    info = scope["info"]
    assert isinstance(info["is_success"], bool) and info["distance"] > 0


# --- Gymnasium: info, spec; Stable-Baselines3 VecEnv --------------------------------------


def test_gym_spec_max_episode_steps_is_the_task_limit():
    for task in hybridsim.envs.single_agent_tasks():
        spec = gym.spec(f"hybridsim/{task}-v0")
        assert spec.max_episode_steps == hybridsim.envs.default_config(task).episode_length


def test_vector_info_has_metrics_and_is_success():
    venv = gym.make_vec(TASK, num_envs=4, episode_length=EPISODE)
    assert venv.unwrapped.env.episode_length == EPISODE  # the override wins over the spec
    venv.reset(seed=0)
    for _ in range(EPISODE):
        _, _, _, trunc, info = venv.step(np.zeros((4, 2), np.float32))
    assert trunc.all() and info["_final_obs"].all()
    assert (
        info["distance"].shape == (4,) and np.all(info["distance"] > 0) and info["_distance"].all()
    )
    assert info["is_success"].dtype == bool
    np.testing.assert_array_equal(info["is_success"], info["distance"] < 0.05)


def test_sb3_vec_env_protocol():
    venv = hybridsim.envs.sb3_vec_env("Reach", num_envs=4, episode_length=EPISODE)
    assert venv.observation_space.shape == (12,) and venv.action_space.shape == (2,)
    venv.seed(5)
    obs = venv.reset()
    venv.seed(5)
    np.testing.assert_array_equal(venv.reset(), obs)  # equal seeds, equal episodes
    assert obs.shape == (4, 12) and obs.dtype == np.float32
    actions = np.zeros((4, 2), np.float32)
    for t in range(EPISODE):
        venv.step_async(actions)
        nxt, rewards, dones, infos = venv.step_wait()
        assert rewards.shape == (4,) and dones.shape == (4,) and len(infos) == 4
        assert all(isinstance(i["is_success"], bool) for i in infos)
        if t < EPISODE - 1:
            assert not dones.any() and "terminal_observation" not in infos[0]
        last = nxt
    # The last step ended every episode by the time limit: auto-reset, the last
    # observation in terminal_observation, a fresh one returned.
    assert dones.all()
    assert all(i["TimeLimit.truncated"] for i in infos)
    terminal = np.stack([i["terminal_observation"] for i in infos])
    assert terminal.shape == (4, 12) and not np.allclose(terminal, last)


def test_sb3_ppo_learns_on_the_vec_env():
    """SB3's own PPO runs on the adapter (a few hundred steps: the protocol, not learning)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from hybridsim._src.envs.sb3 import SB3VecEnv

    venv = VecMonitor(SB3VecEnv("Reach", num_envs=4, episode_length=EPISODE))
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    assert model.num_timesteps >= 64
    # Episodes ended through the adapter's dones and is_success reached SB3's bookkeeping.
    assert len(model.ep_info_buffer) > 0 and len(model.ep_success_buffer) > 0


def test_brax_adapter_on_the_hybrid_reports_final_success():
    """The adapter under Brax's training wrappers, on a hybrid env (a residual with a
    constant force): final_success is 0 until the episode's last step, then its success
    (every step succeeds here: a 10 m success radius)."""
    from brax.envs import training

    from hybridsim.learning import brax_env
    from hybridsim.residual import ResidualConfig, init_residual

    env = hybridsim.envs.make("Reach", episode_length=EPISODE, success_radius=10.0)
    res = init_residual(env.scene, ResidualConfig(kind="force", history=2, hidden=(4,)), 0.02)
    env.set_residual(res)
    wrapped = training.wrap(brax_env(env), episode_length=EPISODE)
    state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), 2))
    assert state.pipeline_state.physics.history.shape == (2, 2, 6)
    step = jax.jit(wrapped.step)
    for t in range(EPISODE):
        state = step(state, np.full((2, 2), 0.3, np.float32))
        final = np.asarray(state.metrics["final_success"])
        if t < EPISODE - 1:
            np.testing.assert_array_equal(final, 0.0)
    np.testing.assert_array_equal(np.asarray(state.metrics["success"]), 1.0)
    np.testing.assert_array_equal(final, 1.0)
    np.testing.assert_array_equal(np.asarray(state.info["truncation"]), 1.0)
