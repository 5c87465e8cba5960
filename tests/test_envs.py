"""Environments: the physics core underneath, wrappers, domain randomization, the hybrid
option, NaN actions, multi-agent helpers and errors. Small scenes (arm2, cartpole) and
few steps; jitted functions are shared through module fixtures."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import hybridsim as hs
from hybridsim import envs
from hybridsim._src.params import WorldParams
from hybridsim.residual import ResidualConfig, init_residual


def _rollout(env, reset_key, actions):
    """(first state, states after each of ``actions (T, ...)``) from ``reset(reset_key)``."""
    return _runner(env)(reset_key, actions)


@functools.cache
def _runner(env):
    """One jitted reset-then-scan program per env object."""

    def run(key, actions):
        s0 = env.reset(key)

        def body(s, a):
            s = env.step(s, a)
            return s, s

        return s0, jax.lax.scan(body, s0, actions)[1]

    return jax.jit(run)


@pytest.fixture(scope="module")
def reach():
    return envs.make("Reach")


T = 10  # control steps of every Reach rollout below: they share one compiled program


@pytest.fixture(scope="module")
def reach_actions():
    return jnp.asarray(np.random.default_rng(4).uniform(-1, 1, (T, 2)), jnp.float32)


@pytest.fixture(scope="module")
def reach_ref(reach, reach_actions):
    """Physics-only Reach rollout from key 0: (first state, states after each step)."""
    return _rollout(reach, jax.random.PRNGKey(0), reach_actions)


def test_cartpole_env_equals_physics_core_rollout():
    """The env runs the project's physics core: same qpos as ``hs.rollout`` on MJX."""
    env = envs.make("CartpoleSwingup")
    rng = np.random.default_rng(0)
    actions = jnp.asarray(rng.uniform(-1, 1, (30, 1)), jnp.float32)
    s0, traj = _rollout(env, jax.random.PRNGKey(3), actions)
    model = hs.make_model("cartpole", 1, backend="mjx", substeps=env.config.substeps)
    state = hs.init(model, qpos=np.asarray(s0.physics.qpos, np.float64))
    ctrl = np.asarray(actions, np.float64)[None]  # the motor's range is [-1, 1]: ctrl = action
    ref = hs.rollout(model, state, ctrl)
    # Tolerance: both run MJX in float32 from the same float32 start; the env casts its
    # state back to float32 between control steps exactly as the rollout's scan carries it.
    np.testing.assert_allclose(
        np.asarray(traj.physics.qpos), np.asarray(ref.qpos[0, 1:]), atol=1e-5
    )
    assert env.control_dt == pytest.approx(ref.control_dt)
    assert np.all(np.isfinite(np.asarray(traj.reward)))


def test_nan_action_terminates_and_holds(reach, reach_actions, reach_ref):
    bad_actions = reach_actions.at[3, 0].set(jnp.nan)
    _, bad = _rollout(reach, jax.random.PRNGKey(0), bad_actions)
    _, ref = reach_ref
    done, reward = np.asarray(bad.done), np.asarray(bad.reward)
    np.testing.assert_array_equal(done, [0, 0, 0] + [1] * (T - 3))
    assert np.all(reward[3:] == 0.0) and np.all(reward[:3] == np.asarray(ref.reward[:3]))
    status = np.asarray(bad.physics.status)
    assert np.all(status[3:] & int(hs.Status.NONFINITE_CTRL)) and np.all(status[:3] == 0)
    # the world holds its last good state and observation until it is reset
    for t in range(3, T):
        np.testing.assert_array_equal(np.asarray(bad.obs[t]), np.asarray(ref.obs[2]))
        np.testing.assert_array_equal(np.asarray(bad.physics.qpos[t]), np.asarray(ref.qpos[2]))
    assert np.all(np.isfinite(np.asarray(bad.physics.ctrl)))
    # actions outside [-1, 1] are clipped, not flagged
    _, big = _rollout(reach, jax.random.PRNGKey(0), 50.0 * jnp.sign(reach_actions))
    _, unit = _rollout(reach, jax.random.PRNGKey(0), jnp.sign(reach_actions))
    np.testing.assert_array_equal(np.asarray(big.physics.qpos), np.asarray(unit.physics.qpos))
    assert not np.any(np.asarray(big.done))


def test_episode_truncation_and_auto_reset(reach):
    """wrap_for_training (episodes of 3 steps, B = 2, auto-reset), both reset modes; world
    1 gets a NaN action at step 5, which ends its episode early."""
    actions = jnp.full((T, 2, 2), 0.5).at[4, 1, 0].set(jnp.nan)
    runs = {
        full: _rollout(
            envs.wrap_for_training(reach, batch_size=2, episode_length=3, full_reset=full),
            jax.random.PRNGKey(1),
            actions,
        )
        for full in (False, True)
    }
    for s0, traj in runs.values():
        assert s0.obs.shape == (2, reach.observation_size)
        trunc, done = np.asarray(traj.truncation), np.asarray(traj.done)
        np.testing.assert_array_equal(trunc[:, 0], [0, 0, 1, 0, 0, 1, 0, 0, 1, 0])
        np.testing.assert_array_equal(np.asarray(traj.step_count[:, 0]), [1, 2, 0] * 3 + [1])
        assert not np.any(done[:, 0])
        # world 1: NaN at step index 4 terminates (done) and restarts healthy at once
        np.testing.assert_array_equal(done[:, 1], [0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
        np.testing.assert_array_equal(
            np.asarray(traj.step_count[:, 1]), [1, 2, 0, 1, 0, 1, 2, 0, 1, 2]
        )
        assert np.all(np.asarray(traj.physics.status) == 0)
    # Brax-style: the episode restarts from the first state (same target, same qpos) ...
    s0, traj = runs[False]
    np.testing.assert_array_equal(np.asarray(traj.physics.qpos[2]), np.asarray(s0.physics.qpos))
    np.testing.assert_array_equal(np.asarray(traj.task.target[5]), np.asarray(s0.task.target))
    # ... full_reset draws a new episode (a new target) each time.
    s0, traj = runs[True]
    targets = np.asarray(traj.task.target[:, 0])
    assert not np.allclose(targets[2], np.asarray(s0.task.target[0]))
    assert not np.allclose(targets[5], targets[2])
    np.testing.assert_array_equal(targets[3], targets[2])  # fixed within an episode


def _scale_masses(mj_model: mujoco.MjModel, key: jax.Array, batch_size: int) -> WorldParams:
    """Test randomizer: world i gets body masses times 0.5 * 2**i (world 1 unchanged)."""
    del key
    scale = 0.5 * 2.0 ** np.arange(batch_size)
    mass = np.asarray(mj_model.body_mass)[None] * scale[:, None]
    return hs.world_params(hs.load_scene(mj_model), batch_size, body_mass=mass)


def test_domain_randomization_vmaps_over_model_fields(reach):
    bsz = 3
    dr = envs.DomainRandomizationWrapper(reach, _scale_masses, batch_size=bsz)
    plain = envs.VmapWrapper(reach, batch_size=bsz)
    key = jnp.stack([jax.random.PRNGKey(5)] * bsz)  # same episode in every world
    actions = jnp.full((10, bsz, 2), 0.8)
    s0, traj = _rollout(dr, key, actions)
    _, ref = _rollout(plain, key, actions)
    q = np.asarray(traj.physics.qpos[-1])  # (B, nq)
    # world 1 has the scene's own masses: it matches the un-randomized env
    np.testing.assert_allclose(q[1], np.asarray(ref.physics.qpos[-1, 1]), atol=1e-6)
    # lighter arms move further under the same torques
    moved = np.abs(q - np.asarray(s0.physics.qpos))[:, 0]  # shoulder angle, rad
    assert moved[0] > moved[1] > moved[2]
    assert dr.fields["body_mass"].shape == (bsz, reach.mj_model.nbody)
    with pytest.raises(hs.ShapeError, match="body_mass"):
        envs.DomainRandomizationWrapper(reach, params={"body_mass": np.ones((2, 1))})
    # hybridsim.randomize plugs in with its config bound (dotted fields such as opt.gravity)
    from hybridsim.randomize import RandomizeConfig, Range, randomize

    config = RandomizeConfig(mass=Range(0.5, 2.0), gravity=Range(-0.5, 0.5))
    fn = functools.partial(randomize, config=config)
    wrapped = envs.DomainRandomizationWrapper(reach, fn, batch_size=5, key=jax.random.key(3))
    assert wrapped.fields["opt.gravity"].shape == (5, 3)
    assert wrapped.fields["body_subtreemass"].shape == (5, reach.mj_model.nbody)  # derived


def test_hybrid_zero_residual_equals_physics_nonzero_differs(
    tmp_path, reach, reach_actions, reach_ref
):
    physics = reach
    config = ResidualConfig(kind="force", history=2, hidden=(16,))
    res = init_residual(physics.scene, config, physics.control_dt)  # last layer zero
    actions, key = reach_actions, jax.random.PRNGKey(0)
    _, ref = reach_ref

    hybrid = envs.make("Reach")
    hybrid.set_residual(res)
    _, same = _rollout(hybrid, key, actions)
    assert same.physics.history.shape == (T, 2, 2 + 2 + 2)
    np.testing.assert_array_equal(np.asarray(same.physics.qpos), np.asarray(ref.physics.qpos))

    # A residual with a constant generalized force (last-layer bias) changes the motion.
    def bias(path, x):  # b1 is the output layer's bias (hidden=(16,): w0, b0, w1, b1)
        return jnp.full_like(x, 0.2) if "b1" in jax.tree_util.keystr(path) else x

    params = jax.tree_util.tree_map_with_path(bias, res.params)
    pushed = envs.make("Reach")
    pushed.set_residual(res.replace(params=params))
    _, diff = _rollout(pushed, key, actions)
    gap = np.abs(np.asarray(diff.physics.qpos[-1]) - np.asarray(ref.physics.qpos[-1]))
    assert gap.max() > 1e-3

    # From a folder written by the fitting code, through the config.
    from hybridsim._src.residual.fit import FitConfig, Fitted, save_fitted

    save_fitted(
        tmp_path, physics.scene, Fitted(res, {}, []), FitConfig(residual=config), physics.control_dt
    )
    loaded = envs.make("Reach", residual_dir=str(tmp_path))
    assert loaded.hybrid and loaded.residual.config == config
    with pytest.raises(hs.ShapeError, match="control_dt"):
        envs.make("Reach", residual_dir=str(tmp_path), substeps=2)
    with pytest.raises(envs.EnvError, match="kind"):
        physics_copy = envs.make("Reach")
        neural = init_residual(physics.scene, ResidualConfig(kind="neural", hidden=(4,)), 0.02)
        physics_copy.set_residual(neural)
    with pytest.raises(hs.ShapeError, match="nq"):
        envs.make("CartpoleSwingup").set_residual(res)


@pytest.mark.slow
def test_warp_impl_agrees_with_jax(reach_actions, reach_ref):
    warp = envs.make("Reach", impl="warp")
    _, a = reach_ref
    _, b = _rollout(warp, jax.random.PRNGKey(0), reach_actions)
    # arm2 has no contacts: MJX-JAX and MuJoCo Warp agree to float32 round-off (the README's
    # backend table: ~2e-7 after 10 steps); 1e-5 leaves room for the 4 substeps per step.
    np.testing.assert_allclose(np.asarray(b.physics.qpos), np.asarray(a.physics.qpos), atol=1e-5)
    np.testing.assert_allclose(np.asarray(b.reward), np.asarray(a.reward), atol=1e-5)


def test_registry_and_errors():
    names = envs.registered()
    assert {"Reach", "Push", "CartpoleSwingup", "QuadrupedWalk", "CoopPush"} <= set(names)
    assert envs.multi_agent_tasks() == ("CoopPush",)
    assert set(envs.single_agent_tasks()) | set(envs.multi_agent_tasks()) == set(names)
    cfg = envs.default_config("Reach")
    assert dataclasses.is_dataclass(cfg) and cfg.impl == "jax" and cfg.residual_dir is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.substeps = 3  # type: ignore[misc]
    with pytest.raises(envs.EnvError, match="unknown task 'Nope'"):
        envs.make("Nope")
    with pytest.raises(envs.EnvError, match="no config field"):
        envs.make("Reach", bogus=1)
    with pytest.raises(envs.EnvError, match="impl"):
        envs.make("Reach", impl="cuda")
    with pytest.raises(envs.EnvError, match="substeps"):
        envs.make("Reach", substeps=0)
    env = envs.make("Reach", episode_length=50)
    assert env.episode_length == 50 and env.control_dt == pytest.approx(0.02)
    with pytest.raises(hs.DataFileError, match="no fitted model"):
        envs.make("Reach", residual_dir="/nonexistent/dir")


def test_multi_agent_helpers_and_shapes():
    env = envs.make("CoopPush")
    assert env.multi_agent and env.agents == ("finger_a", "finger_b")
    assert env.action_size == 2 and env.num_agents == 2
    obs = jnp.arange(2 * env.observation_size, dtype=jnp.float32).reshape(2, -1)
    d = env.obs_dict(obs)
    np.testing.assert_array_equal(np.asarray(d["finger_b"]), np.asarray(obs[1]))
    acts = env.action_array({"finger_a": jnp.array([0.1, 0.2]), "finger_b": jnp.array([0.3, 0.4])})
    np.testing.assert_allclose(np.asarray(acts), [[0.1, 0.2], [0.3, 0.4]], rtol=1e-6)
    assert acts.dtype == jnp.float32
    with pytest.raises(hs.ShapeError, match="finger_b"):
        env.action_array({"finger_a": jnp.zeros(2)})
    state = jax.eval_shape(env.reset, jax.random.PRNGKey(0))  # traced, not compiled
    assert state.obs.shape == (2, env.observation_size) and state.reward.shape == (2,)
    assert state.done.shape == ()
    with pytest.raises(hs.ShapeError, match="num_agents"):
        jax.eval_shape(env.step, state, jnp.zeros(4))


def test_pusher2_box_needs_both_fingers():
    """The shared scene's design: one finger (10 N) cannot slide the 2.5 kg box, two can."""
    m = hs.load_scene("pusher2").mj_model
    d = mujoco.MjData(m)

    def push(ctrl, qpos_b=None):
        mujoco.mj_resetDataKeyframe(m, d, 0)
        if qpos_b is not None:
            d.qpos[2:4] = qpos_b
        d.ctrl[:] = ctrl
        mujoco.mj_step(m, d, 600)  # 3 s
        return d.qpos[4]  # box x (m)

    alone = push([0.3, 0.0, -0.1, 0.3], qpos_b=[-0.1, 0.3])  # finger b out of the way
    together = push([0.3, -0.03, 0.3, 0.03])
    assert alone < 0.03
    assert together > 0.2


def test_cli_envs_list(capsys):
    import json

    from hybridsim._src.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["envs", "--help"])
    assert e.value.code == 0 and "hybridsim envs list" in capsys.readouterr().out
    assert main(["envs", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(envs.registered())
    assert rows["Reach"]["observation_size"] == 12 and rows["Reach"]["scene"] == "arm2"
    assert rows["CoopPush"]["agents"] == ["finger_a", "finger_b"]


def test_render_draws_the_reach_target(reach, reach_actions, reach_ref):
    a = reach_ref[0]
    b = _rollout(reach, jax.random.PRNGKey(1), reach_actions)[0]  # same program
    both = jax.tree.map(lambda x, y: jnp.stack([x, y]), a, b)
    both = both.replace(physics=both.physics.replace(qpos=jnp.stack([a.qpos, a.qpos])))
    frames = reach.render(both, width=64, height=48)
    assert frames.shape == (2, 48, 64, 3) and frames.dtype == np.uint8
    # same arm pose, different targets: only the target marker moved
    assert np.any(frames[0] != frames[1])
    single = envs.EpisodeWrapper(reach).render(a, width=64, height=48)
    np.testing.assert_array_equal(single, frames[0])


def test_env_tasks_benchmark_smoke(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "env_tasks.py"
    spec = importlib.util.spec_from_file_location("env_tasks", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "env.json"
    args = ["--tasks", "CartpoleSwingup", "--batch-size", "2", "--steps", "3"]
    assert mod.main([*args, "--repeats", "1", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["task"] == "CartpoleSwingup" and row["batch_size"] == 2
    assert row["env_steps_per_s"] > 0 and row["core_steps_per_s"] > 0


def test_gradient_through_env_steps_is_finite():
    env = envs.make("CartpoleSwingup", differentiable=True)
    s0 = jax.jit(env.reset)(jax.random.PRNGKey(0))

    @jax.jit
    def ret(actions):  # (T, 1) -> sum of rewards
        def body(s, a):
            s = env.step(s, a)
            return s, s.reward

        return jnp.sum(jax.lax.scan(body, s0, actions)[1])

    actions = jnp.full((20, 1), 0.3)
    g = np.asarray(jax.grad(ret)(actions))
    assert g.shape == (20, 1) and np.all(np.isfinite(g)) and np.any(g != 0)
    # a central difference along the gradient agrees in sign and roughly in size
    # (float32 physics: 1e-2 steps keep round-off well below the change)
    direction = g / np.linalg.norm(g)
    eps = 1e-2
    fd = (ret(actions + eps * direction) - ret(actions - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(float(fd), np.linalg.norm(g), rtol=0.1)
    with pytest.raises(envs.EnvError, match="differentiated"):
        envs.make("Reach", impl="warp", differentiable=True)


def test_render_a_scene_without_mocap_bodies_and_randomized_colours():
    env = envs.make("CartpoleSwingup")
    state = env.reset(jax.random.PRNGKey(0))
    frame = env.render(state, width=32, height=24)
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and frame.std() > 0
    # Two worlds in the same pose, one with every geom red: the randomized look is drawn.
    rgba = np.repeat(env.mj_model.geom_rgba[None], 2, axis=0)
    rgba[1, :, :3] = (1.0, 0.0, 0.0)
    dr = envs.DomainRandomizationWrapper(env, params={"geom_rgba": rgba})
    both = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    frames = dr.render(both, width=32, height=24)
    np.testing.assert_array_equal(frames[0], frame)
    assert np.any(frames[1] != frames[0])


def test_reach_reward_reads_the_state_it_reports(reach, reach_ref):
    """The fingertip distance after a step is that of the returned qpos (MuJoCo C
    kinematics), not of the last substep's start."""
    _, states = reach_ref
    m = reach.mj_model
    d = mujoco.MjData(m)
    for t in (0, T - 1):
        d.qpos[:] = np.asarray(states.physics.qpos[t])
        mujoco.mj_kinematics(m, d)
        tip = d.site("fingertip").xpos
        want = np.linalg.norm(tip - np.asarray(states.task.target[t]))
        np.testing.assert_allclose(float(states.metrics.distance[t]), want, atol=1e-5)
