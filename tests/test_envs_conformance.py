"""One conformance test over every registered task: jit of reset and step, observation
shapes and dtypes, no NaN over 1000 random steps, equal results for equal seeds, vmap.

Each task compiles one program (module-scoped): ``vmap(reset)`` over 4 keys, then a
``lax.scan`` of 1000 ``vmap(step)`` calls with uniform random actions, through the
training wrappers (episode limit, auto-reset), so episodes end and restart inside it.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hybridsim import envs

BATCH = 4
STEPS = 1000


@functools.cache
def _program(name: str):
    env = envs.make(name)
    wrapped = envs.wrap_for_training(env, batch_size=BATCH)
    act_shape = (
        (BATCH, env.num_agents, env.action_size)
        if env.multi_agent
        else (
            BATCH,
            env.action_size,
        )
    )
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)

    @jax.jit
    def run(keys, action_key):
        state0 = wrapped.reset(keys)

        def body(state, k):
            a = jax.random.uniform(k, act_shape, minval=low, maxval=high)
            a = a.at[3].set(a[0])  # world 3 repeats world 0
            state = wrapped.step(state, a)
            return state, (state.obs, state.reward, state.done, state.truncation)

        final, traj = jax.lax.scan(body, state0, jax.random.split(action_key, STEPS))
        return state0, final, traj

    return env, run


@pytest.mark.slow
@pytest.mark.parametrize("name", envs.registered())
def test_task_conformance(name):
    env, run = _program(name)
    k = jax.random.split(jax.random.PRNGKey(7), 3)
    # worlds 0 and 3 get the same key: vmapped worlds must not mix.
    keys = jnp.stack([k[0], k[1], k[2], k[0]])
    state0, final, (obs, reward, done, trunc) = run(keys, jax.random.PRNGKey(1))

    per_agent = (env.num_agents,) if env.multi_agent else ()
    assert state0.obs.shape == (BATCH, *per_agent, env.observation_size)
    assert state0.obs.dtype == jnp.float32
    assert obs.shape == (STEPS, BATCH, *per_agent, env.observation_size)
    assert reward.shape == (STEPS, BATCH, *per_agent) and reward.dtype == jnp.float32
    assert done.shape == (STEPS, BATCH) and done.dtype == jnp.float32
    assert final.step_count.dtype == jnp.int32
    assert final.physics.qpos.shape == (BATCH, env.scene.nq)
    assert np.all(np.asarray(env.action_low) < np.asarray(env.action_high))
    assert env.control_dt == pytest.approx(env.config.substeps * env.scene.timestep)

    for x in (obs, reward, final.physics.qpos, final.physics.qvel):
        assert np.all(np.isfinite(np.asarray(x))), f"{name}: non-finite values"
    assert np.all(np.asarray(final.physics.status) == 0), f"{name}: a world was flagged"
    # episodes reach their time limit inside 1000 steps and restart (auto-reset)
    if env.episode_length < STEPS:
        assert np.asarray(trunc).sum() >= BATCH
    assert np.all(np.asarray(final.step_count) <= env.episode_length)

    # vmap: equal keys give equal rows, different keys different rows
    o = np.asarray(obs)
    np.testing.assert_array_equal(o[:, 0], o[:, 3])
    assert not np.array_equal(o[:, 0], o[:, 1])
    # equal seeds, equal results (same compiled program, called again)
    _, final2, (obs2, reward2, _, _) = run(keys, jax.random.PRNGKey(1))
    np.testing.assert_array_equal(o, np.asarray(obs2))
    np.testing.assert_array_equal(np.asarray(reward), np.asarray(reward2))
    # the reward responds to the task: it is not constant over the rollout
    assert np.std(np.asarray(reward)) > 0
