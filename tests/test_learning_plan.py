"""Model-predictive control on the model: MPPI and gradient MPC on Reach, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridsim import envs
from hybridsim._src.cli.main import main
from hybridsim._src.learning import mpc

STEPS = 30  # control steps per episode: 0.6 s of Reach, enough to move towards the target
EPISODES = 4
MPPI = mpc.MPPIPlanner(horizon=8, samples=32)


@pytest.fixture(scope="module")
def reach():
    return envs.make("Reach")


@pytest.fixture(scope="module")
def baselines(reach):
    # Random actions are a baseline of the CLI too; the tests compare with zero actions
    # only, to compile one program less.
    return {"zero": mpc.run_mpc(reach, reach, mpc.ZeroPlanner(), EPISODES, STEPS, seed=0)}


@pytest.fixture(scope="module")
def mppi_result(reach):
    return mpc.run_mpc(reach, reach, MPPI, EPISODES, STEPS, seed=0)


def test_mppi_beats_zero_actions(mppi_result, baselines):
    result = mppi_result
    assert result.returns.shape == (EPISODES,) and np.all(np.isfinite(result.returns))
    assert result.mean_return == pytest.approx(result.returns.mean())
    # Same seed, same targets: MPPI must close a good part of the distance (reward = -m).
    for name, base in baselines.items():
        assert result.mean_return > base.mean_return + 0.2 * abs(base.mean_return), name
        assert np.all(result.returns > base.returns), name
    assert 0.0 <= result.success_rate <= 1.0


@pytest.mark.slow
def test_grad_mpc_runs_finite_and_beats_zero(reach, baselines):
    model = envs.make("Reach", differentiable=True)
    planner = mpc.GradPlanner(horizon=4, iters=2)
    result = mpc.run_mpc(model, reach, planner, EPISODES, STEPS, seed=0)
    assert np.all(np.isfinite(result.returns)) and result.skipped_grad_steps == 0
    assert result.mean_return > baselines["zero"].mean_return


def test_ascend_climbs_a_smooth_return():
    import jax.numpy as jnp

    target = jnp.asarray([[0.3, -0.5], [0.9, 2.0]])  # 2.0 is outside [-1, 1]

    def ret(a):
        return -jnp.sum((a - target) ** 2)

    a, skipped = mpc.ascend(ret, jnp.zeros((2, 2)), iters=200, learning_rate=0.05)
    np.testing.assert_allclose(np.asarray(a), [[0.3, -0.5], [0.9, 1.0]], atol=0.02)
    assert int(skipped) == 0
    _, skipped = mpc.ascend(lambda a: jnp.sum(jnp.sqrt(a - 1)), jnp.zeros((1, 1)), 3, 0.1)
    assert int(skipped) == 3  # sqrt(-1): NaN gradient, every step skipped


def test_planners_and_envs_refuse_bad_input(reach):
    with pytest.raises(envs.EnvError, match="horizon"):
        mpc.MPPIPlanner(horizon=0)
    with pytest.raises(envs.EnvError, match="temperature"):
        mpc.MPPIPlanner(horizon=3, temperature=0.0)
    with pytest.raises(envs.EnvError, match="differentiable"):
        mpc.run_mpc(reach, reach, mpc.GradPlanner(horizon=3), 2, 3)
    with pytest.raises(envs.EnvError, match="control period"):
        mpc.run_mpc(envs.make("Reach", substeps=2), reach, MPPI, 2, 3)
    with pytest.raises(envs.EnvError, match="differ"):
        mpc.run_mpc(envs.make("CartpoleSwingup"), reach, MPPI, 2, 3)
    with pytest.raises(envs.EnvError, match="episodes"):
        mpc.run_mpc(reach, reach, MPPI, 0, 3)


def test_plan_cli_on_zero_residual_hybrid_json_last_line(tmp_path, capsys, reach, mppi_result):
    """--residual plans on the hybrid, whose residual history MPC carries; a zero
    residual plans exactly like physics."""
    from hybridsim._src.residual.fit import FitConfig, Fitted, save_fitted
    from hybridsim.residual import ResidualConfig, init_residual

    config = ResidualConfig(kind="force", history=2, hidden=(16,))
    res = init_residual(reach.scene, config, reach.control_dt)  # last layer zero
    save_fitted(tmp_path, reach.scene, Fitted(res, {}, []), FitConfig(residual=config), 0.02)
    argv = ["plan", "--task", "hybridsim/Reach-v0", "--algo", "mppi", "--horizon", "8"]
    argv += ["--samples", "32", "--episodes", str(EPISODES), "--steps", str(STEPS), "--json"]
    assert main([*argv, "--residual", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    doc = json.loads(out[-1])
    assert doc["task"] == "Reach" and doc["algo"] == "mppi" and doc["model"] == "hybrid"
    assert len(doc["returns"]) == EPISODES and doc["steps"] == STEPS
    np.testing.assert_allclose(doc["returns"], mppi_result.returns, rtol=1e-4)
    assert doc["mean_return"] == pytest.approx(np.mean(doc["returns"]))
    assert doc["success_rate"] == mppi_result.success_rate
    assert doc["planner"] == {
        "kind": "MPPIPlanner",
        "horizon": 8,
        "samples": 32,
        "iters": 1,
        "noise_std": 0.5,
        "temperature": 0.1,
    }
    assert "mean_return" in out[0] and "success_rate" in out[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "Nope", "--algo", "mppi", "--horizon", "5"], "unknown task 'Nope'"),
        (["--task", "Reach", "--algo", "mppi", "--horizon", "0"], "horizon must be"),
        (["--task", "Reach", "--algo", "grad", "--horizon", "-2"], "horizon must be"),
        (["--task", "Reach", "--algo", "mppi", "--horizon", "5", "--episodes", "0"], "episodes"),
    ],
)
def test_plan_cli_bad_input_is_one_line_exit_2(capsys, args, message):
    assert main(["plan", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hybridsim plan: error:") and message in err[0]


def test_plan_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["plan", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and "hybridsim plan --task hybridsim/Reach-v0" in out
    for option in ("--algo", "--horizon", "--residual", "--episodes", "--samples", "--iters"):
        assert option in out


def test_plan_cli_acts_in_a_synthetic_reality(capsys, mppi_result):
    """--reality: the nominal model plans, the task's synthetic reality (30 ms latency)
    acts; the same starts and plans give other returns."""
    argv = ["plan", "--task", "Reach", "--algo", "mppi", "--horizon", "8", "--samples", "32"]
    argv += ["--episodes", str(EPISODES), "--steps", str(STEPS), "--json", "--quiet"]
    assert main([*argv, "--reality", "latency=3"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["acting"] == "reality" and doc["model"] == "nominal"
    assert np.all(np.isfinite(doc["returns"]))
    assert not np.allclose(doc["returns"], mppi_result.returns)
