"""Gymnasium and PettingZoo adapters: API conformance, vector auto-reset, rendering, seeds.

Compile cost: every task compiles ``jit(reset)``/``jit(step)`` once (shared by all
adapters of it through ``gym_adapter.runner_for``); the vector-env tests share one
CartpoleSwingup batch of ``NUM_ENVS`` worlds with a short episode.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

from hybridsim import envs
from hybridsim._src.envs.gym_adapter import GymEnv, VectorGymEnv, gym_id
from hybridsim._src.errors import EnvError, ShapeError

SINGLE = envs.single_agent_tasks()
MULTI = envs.multi_agent_tasks()
VEC_TASK = "CartpoleSwingup"
NUM_ENVS = 4
EPISODE = 5  # control steps per episode in the vector-env tests


def test_every_single_agent_task_is_registered():
    assert SINGLE, "no single-agent task registered"
    for task in SINGLE:
        assert gym_id(task) in gym.registry, task
        assert gym.spec(gym_id(task)).vector_entry_point is not None
    for task in MULTI:
        assert gym_id(task) not in gym.registry, f"multi-agent {task} registered in Gymnasium"


@pytest.mark.parametrize("task", SINGLE)
def test_gym_env_passes_checkers(task):
    env = gym.make(gym_id(task))
    inner = env.unwrapped
    assert isinstance(inner, GymEnv)
    with warnings.catch_warnings():
        # An unbounded Box observation space is what the tasks have (velocities).
        warnings.filterwarnings("ignore", message=".*Box observation space (min|max)imum")
        check_env(inner, skip_render_check=True)
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3.check_env(inner, warn=False)

    obs, info = env.reset(seed=3)
    assert obs.dtype == np.float32 and obs.shape == inner.observation_space.shape
    assert info == {}
    obs2, reward, terminated, truncated, info = env.step(inner.action_space.sample())
    assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
    assert obs2.dtype == np.float32 and np.all(np.isfinite(obs2))
    # Same seed, same actions: same observations.
    a = np.full(inner.action_space.shape, 0.5, np.float32)
    runs = []
    for _ in range(2):
        o, _ = env.reset(seed=11)
        runs.append([o] + [env.step(a)[0] for _ in range(3)])
    np.testing.assert_array_equal(np.stack(runs[0]), np.stack(runs[1]))
    o_other, _ = env.reset(seed=12)
    assert not np.array_equal(o_other, runs[0][0])
    env.close()


def test_gym_env_truncates_at_episode_length():
    env = GymEnv(VEC_TASK)
    env.reset(seed=0)
    limit = env.env.episode_length
    a = np.zeros(env.action_space.shape, np.float32)
    truncated = [env.step(a)[3] for _ in range(limit)]
    assert not any(truncated[:-1]) and truncated[-1]


def test_gym_env_errors():
    env = GymEnv(VEC_TASK)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(env.action_space.shape, np.float32))
    env.reset(seed=0)
    with pytest.raises(ShapeError, match="action must have shape"):
        env.step(np.zeros(env.action_space.shape[0] + 1, np.float32))
    with pytest.raises(ValueError, match="render_mode"):
        GymEnv(VEC_TASK, render_mode="human")


@pytest.mark.parametrize("task", [VEC_TASK, "Reach"])  # without and with mocap markers
def test_rgb_array_frames(task):
    env = gym.make(gym_id(task), render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert frame.std() > 1.0, "blank frame"


def test_vector_rgb_array_frames():
    vec = VectorGymEnv(VEC_TASK, num_envs=2, render_mode="rgb_array", width=64, height=48)
    vec.reset(seed=0)
    frames = vec.render()
    assert len(frames) == 2
    for f in frames:
        assert f.shape == (48, 64, 3) and f.dtype == np.uint8 and f.std() > 1.0


# ------------------------------------------------------------------------- vector env


@pytest.fixture(scope="module")
def venv():
    v = gym.make_vec(gym_id(VEC_TASK), num_envs=NUM_ENVS, episode_length=EPISODE)
    yield v
    v.close()


def test_make_vec_is_native(venv):
    assert isinstance(venv, VectorGymEnv), type(venv)  # not Sync/AsyncVectorEnv
    assert venv.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert venv.num_envs == NUM_ENVS
    assert venv.observation_space.shape == (NUM_ENVS, *venv.single_observation_space.shape)
    assert venv.action_space.shape == (NUM_ENVS, *venv.single_action_space.shape)


def test_vector_step_and_same_step_autoreset(venv):
    obs, info = venv.reset(seed=0)
    assert obs.shape == venv.observation_space.shape and obs.dtype == np.float32
    a = np.zeros(venv.action_space.shape, np.float32)
    for t in range(EPISODE):
        obs, rew, term, trunc, info = venv.step(a)
        assert rew.shape == (NUM_ENVS,) and term.dtype == bool and trunc.dtype == bool
        assert obs.shape == venv.observation_space.shape and np.all(np.isfinite(obs))
        if t < EPISODE - 1:
            assert not trunc.any() and "final_obs" not in info
    # Every world hit the limit together: truncated, its last observation in final_obs,
    # and the returned observation is the first of a new episode (step count 0).
    assert trunc.all() and not term.any()
    assert info["_final_obs"].all()
    final = np.stack(info["final_obs"])
    assert final.shape == obs.shape and not np.allclose(final, obs)
    np.testing.assert_array_equal(np.asarray(venv._state.step_count), 0)
    # The next step continues the new episodes.
    _, _, _, trunc, info = venv.step(a)
    assert not trunc.any() and "final_obs" not in info


def test_vector_seeding_and_partial_reset(venv):
    o1, _ = venv.reset(seed=7)
    o2, _ = venv.reset(seed=7)
    np.testing.assert_array_equal(o1, o2)
    o3, _ = venv.reset(seed=8)
    assert not np.array_equal(o1, o3)
    assert not np.array_equal(o1[0], o1[1]), "worlds share a reset key"
    per_world, _ = venv.reset(seed=[1, 2, 3, 4])
    again, _ = venv.reset(seed=[5, 2, 6, 4])
    np.testing.assert_array_equal(per_world[[1, 3]], again[[1, 3]])
    # reset_mask: only the masked worlds restart.
    venv.reset(seed=0)
    a = np.zeros(venv.action_space.shape, np.float32)
    venv.step(a)
    venv.step(a)
    mask = np.array([True, False, True, False])
    venv.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(np.asarray(venv._state.step_count), np.where(mask, 0, 2))
    with pytest.raises(ShapeError, match="actions must have shape"):
        venv.step(np.zeros((NUM_ENVS + 1, venv.single_action_space.shape[0]), np.float32))


# --------------------------------------------------------------------------- PettingZoo


@pytest.mark.parametrize("task", MULTI)
def test_parallel_env_passes_pettingzoo_tests(task):
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    env = envs.parallel_env(task)
    assert len(env.possible_agents) >= 2
    parallel_api_test(env, num_cycles=env.env.episode_length + 5)
    parallel_seed_test(lambda: envs.parallel_env(task))
    obs, _ = env.reset(seed=0)
    for agent in env.possible_agents:
        assert obs[agent].dtype == np.float32
        assert obs[agent].shape == env.observation_space(agent).shape


def test_parallel_env_rejects_single_agent_task():
    with pytest.raises(EnvError, match="single-agent"):
        envs.parallel_env(VEC_TASK)
