"""Policy learning by gradient: gradients through contact and smooth rollouts, trajectory
optimisation, APG through the CLI, and task-policy folders."""

from __future__ import annotations

import importlib.util
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import hybridsim as hs
from hybridsim import envs
from hybridsim._src.cli.main import main
from hybridsim._src.errors import PolicyError
from hybridsim._src.evaluation.saved_policy import load_policy_folder, save_policy
from hybridsim._src.learning.gradients import optimize_actions
from hybridsim._src.learning.networks import MLPPolicy, policy_build

# Central differences on the float32 physics of Reach (no contacts): a step of 1e-2 in
# action units keeps round-off (~1e-6 relative per step over 20 steps) well below the
# change of the return, and the return's curvature over that step below 2 % of the slope.
FD_EPS = 1e-2
FD_RTOL = 0.02


def _open_loop_return(env, s0):
    def ret(actions):  # (T, action_size) -> summed reward
        def body(s, a):
            s = env.step(s, a)
            return s, s.reward

        return jnp.sum(jax.lax.scan(body, s0, actions)[1])

    return ret


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="MJX (mujoco 4.0.0) gives NaN gradients once the pusher's sphere finger touches "
    "the box (no NaN while only the box rests on the table); the one-iteration solver of "
    "the differentiable build also lets the box leave the table. Strict: passes when fixed.",
)
def test_gradients_finite_through_100_pusher_steps_with_contact():
    env = envs.make("Push", differentiable=True)
    s0 = jax.jit(env.reset)(jax.random.PRNGKey(0))
    # The finger starts behind the box (x = 0.1): driving it to +x pushes the box.
    actions = jnp.tile(jnp.asarray([0.8, 0.0]), (100, 1))

    @jax.jit
    def ret_and_box(actions):
        def body(s, a):
            s = env.step(s, a)
            return s, s.reward

        final, rewards = jax.lax.scan(body, s0, actions)
        return jnp.sum(rewards), final.qpos[2:4]

    (_, box_xy), g = jax.value_and_grad(ret_and_box, has_aux=True)(actions)
    # The finger reached the box: contact moved it (the one-iteration solver of the
    # differentiable build does not keep it on its path; see docs/learning.md).
    assert np.linalg.norm(np.asarray(box_xy) - np.asarray(s0.qpos[2:4])) > 0.02
    g = np.asarray(g)
    assert g.shape == (100, 2) and np.all(np.isfinite(g)) and np.any(g != 0)


def test_gradient_matches_central_differences_on_reach():
    env = envs.make("Reach", differentiable=True)
    s0 = jax.jit(env.reset)(jax.random.PRNGKey(1))
    ret = jax.jit(_open_loop_return(env, s0))
    actions = 0.3 * jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (20, 2)), jnp.float32)
    g = np.asarray(jax.grad(ret)(actions), np.float64)
    rng = np.random.default_rng(1)
    for _ in range(3):
        d = rng.standard_normal((20, 2))
        d /= np.linalg.norm(d)
        dj = jnp.asarray(FD_EPS * d, jnp.float32)
        fd = (float(ret(actions + dj)) - float(ret(actions - dj))) / (2 * FD_EPS)
        np.testing.assert_allclose(fd, np.sum(g * d), rtol=FD_RTOL)


def test_optimize_actions_raises_the_return_of_each_world():
    env = envs.make("Reach", differentiable=True)
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(2), 2))
    plan = jax.jit(lambda s: optimize_actions(env, s, horizon=10, iters=30, lr=0.1))(states)
    assert plan.shape == (2, 10, 2) and float(jnp.max(jnp.abs(plan))) <= 1.0
    for b in range(2):
        s = jax.tree.map(lambda x, b=b: x[b], states)
        ret = _open_loop_return(env, s)
        assert float(ret(plan[b])) > float(ret(jnp.zeros((10, 2)))) + 0.01


def test_saved_task_policy_reloads_to_identical_actions(tmp_path):
    module = MLPPolicy(12, 2, hidden=(16, 16), rngs=nnx.Rngs(3))
    build = policy_build({"in_dim": 12, "out_dim": 2, "hidden": (16, 16)}, "hybridsim/Reach-v0")
    folder = save_policy(tmp_path / "pol", module, build)
    meta = json.loads((folder / "policy.json").read_text())
    assert meta["obs"] == ["task"] and meta["task"] == "hybridsim/Reach-v0"
    assert meta["module"] == "hybridsim._src.learning.networks:MLPPolicy"
    policy = load_policy_folder(folder)
    assert policy.is_task_policy and policy.task == "hybridsim/Reach-v0"
    obs = np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32)
    want = np.asarray(module(obs))
    np.testing.assert_array_equal(np.asarray(policy(obs)), want)
    assert np.all(np.abs(want) < 1) and np.any(want != want[0])
    with pytest.raises(PolicyError, match="task policy"):
        policy(hs.Observation(np.zeros((5, 2)), np.zeros((5, 2)), np.zeros(5), np.zeros((5, 0))))
    with pytest.raises(PolicyError, match="'obs' must be"):
        save_policy(tmp_path / "bad", module, {**build, "obs": ["task", "qpos"]})


def test_cli_trains_apg_on_reach_and_the_policy_runs_in_the_task(tmp_path, capsys):
    from hybridsim._src.evaluation.worlds import TaskWorld

    out = tmp_path / "run"
    args = ["policy", "train", "--task", "hybridsim/Reach-v0", "--algo", "apg", "--quiet"]
    args += ["--steps", "8000", "--num-envs", "16", "--window", "25", "--episode-length", "50"]
    args += ["--eval-every", "10", "--learning-rate", "0.01", "--health-seeds", "2"]
    assert main([*args, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["env_steps"] == 8000 and summary["policy"] == str(out / "policy")
    curve = json.loads((out / "curve.json").read_text())
    assert [p["env_steps"] for p in curve] == [400, 4400, 8000]
    assert curve[-1]["mean_return"] > curve[0]["mean_return"] + 1.0  # APG improved it
    health = curve[0]["gradient"]
    assert np.isfinite(health["norm"]) and health["norm"] > 0
    assert health["cosine"] > 0.9  # smooth task: analytic and zeroth-order agree
    assert list((out / "tb").iterdir()) and summary["success_rate"] is not None
    # The saved folder runs in the task world as a task policy; a finished run is kept.
    policy = load_policy_folder(out / "policy")
    traj = TaskWorld("Reach", episode_length=50).run(policy, np.zeros((3, 2)), np.zeros((3, 2)), 4)
    assert traj.ctrl.shape == (3, 4, 2) and np.all(np.isfinite(traj.reward))
    assert main([*args, "--out", str(out)]) == 2
    assert "finished run" in capsys.readouterr().err
    if importlib.util.find_spec("hybridsim._src.learning.ppo") is None:
        assert main(["policy", "train", "--task", "Reach", "--algo", "ppo", "--out", "x"]) == 2
        assert "ppo: not available" in capsys.readouterr().err
