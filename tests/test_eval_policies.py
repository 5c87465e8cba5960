"""``hybridsim eval policies``: policy specs, worlds, evaluation, the CLI and the report."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hybridsim as hs
from hybridsim._src.cli.main import main
from hybridsim._src.errors import PolicyError
from hybridsim._src.evaluation import policy_eval, worlds

ROOT = Path(__file__).resolve().parents[1]
PD = str(ROOT / "examples/eval/pd_policies.py")
SCORE = f"{PD}:tracking_score"

BAD_POLICIES = textwrap.dedent(
    """
    import numpy as np

    def raises(obs):
        raise RuntimeError("boom")

    def wrong_shape(obs):
        return np.zeros((obs.qpos.shape[0], 3))

    def nan_ctrl(obs):
        u = np.zeros((obs.qpos.shape[0], 2))
        if obs.time[0] > 0.05:
            u[1, 0] = np.nan
        return u

    def zero(obs):
        return np.zeros((obs.qpos.shape[0], 2))

    def score_wrong_shape(traj):
        return np.zeros(len(traj.qpos) + 1)

    def score_nan(traj):
        return np.full(len(traj.qpos), np.nan)

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def bad(tmp_path) -> str:
    path = tmp_path / "bad.py"
    path.write_text(BAD_POLICIES)
    return str(path)


@pytest.fixture(scope="module")
def arm2() -> hs.Scene:
    return hs.load_scene("arm2")


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- specs


def test_specs_load_from_files_modules_and_fail_in_one_line(tmp_path, bad):
    assert policy_eval.load_policy(f"{PD}:pd_kp4").kp == 4.0
    # the same file is imported once: the same object for the same spec
    assert policy_eval.load_policy(f"{PD}:pd_kp4") is policy_eval.load_policy(f"{PD}:pd_kp4")
    assert policy_eval.load_score("hybridsim._src.evaluation.worlds:task_return") is (
        worlds.task_return
    )
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "fails.py").write_text("import no_such_module_xyz\n")
    cases = {
        "nothing_here.py:f": "does not exist",
        f"{tmp_path / 'broken.py'}:f": "syntax error in .*broken.py, line 1",
        f"{tmp_path / 'fails.py'}:f": "does not import: ModuleNotFoundError",
        f"{bad}:missing": "has no 'missing'; it defines \\[.*'raises'",
        "no_such_pkg_xyz.mod:f": "does not import",
        f"{bad}:NOT_CALLABLE": "is a int, not a callable",
        "no-colon": "expected FILE.py:NAME or module:NAME",
    }
    for spec, message in cases.items():
        with pytest.raises(PolicyError, match=message) as e:
            policy_eval.load_policy(spec)
        assert "\n" not in str(e.value)


# ----------------------------------------------------------------------- initial states


def test_initial_states_keyframe_noise_and_recorded(arm2, tmp_path):
    q, v = policy_eval.initial_states(arm2, 3, seed=0)
    np.testing.assert_array_equal(q, np.tile([0.4, 1.2], (3, 1)))
    np.testing.assert_array_equal(v, 0.0)
    q1, _ = policy_eval.initial_states(arm2, 2000, seed=1, init_noise=0.1)
    q2, _ = policy_eval.initial_states(arm2, 2000, seed=1, init_noise=0.1)
    np.testing.assert_array_equal(q1, q2)  # seeded
    assert np.std(q1 - [0.4, 1.2], axis=0) == pytest.approx([0.1, 0.1], rel=0.1)
    # recorded: episode 0 valid for 2 steps (3 states), episode 1 for 4; padding never drawn
    qpos = np.zeros((2, 5, 2))
    qpos[0, :3] = np.arange(3)[:, None] + 10
    qpos[0, 3:] = -1.0  # padding
    qpos[1] = np.arange(5)[:, None] + 20
    data = {
        "qpos": qpos,
        "qvel": qpos * 0.5,
        "ctrl": np.zeros((2, 4, 2)),
        "control_dt": np.asarray(0.02),
        "episode_len": np.array([2, 4]),
    }
    hs.save_trajectory(tmp_path / "d.npz", type("T", (), data)(), episode_len=data["episode_len"])
    q, v = policy_eval.initial_states(arm2, 200, seed=0, init_data=tmp_path / "d.npz")
    allowed = {10, 11, 12, 20, 21, 22, 23, 24}
    assert set(q[:, 0].astype(int)) == allowed  # every valid state drawn, no padding
    np.testing.assert_array_equal(v, q * 0.5)  # qpos and qvel from the same step


# ------------------------------------------------------------------------ evaluation


def test_evaluate_policies_scores_like_a_direct_rollout(arm2):
    q0, v0 = policy_eval.initial_states(arm2, 4, seed=0, init_noise=0.1)
    names = ("pd_kp1", "pd_kp8")
    policies = {n: policy_eval.load_policy(f"{PD}:{n}") for n in names}
    score = policy_eval.load_score(SCORE)
    world = worlds.PhysicsWorld(arm2, substeps=4)
    got = policy_eval.evaluate_policies(
        world, policies, score, steps=30, qpos0=q0, qvel0=v0, seed=0
    )
    model = hs.make_model(arm2, 4, backend="c", substeps=4)
    for n in names:
        traj = hs.rollout(model, hs.init(model, q0, v0), policy=policies[n], steps=30)
        want = score(traj)
        r = got[n]
        assert r.error is None and r.n == 4
        np.testing.assert_allclose(r.scores, want)
        assert r.mean == pytest.approx(want.mean())
        assert r.ci95[0] <= r.mean <= r.ci95[1]
        np.testing.assert_array_equal(r.worst_qpos, np.asarray(traj.qpos)[np.argmin(want)])
    assert got["pd_kp8"].mean > got["pd_kp1"].mean  # the stiffer one tracks better


def test_bootstrap_interval_is_seeded():
    s = np.random.default_rng(0).normal(size=40)
    a, b = policy_eval.bootstrap_ci(s, 3), policy_eval.bootstrap_ci(s, 3)
    assert a == b and a[0] < s.mean() < a[1]
    # about mean -/+ 1.96 standard errors
    assert a[1] - a[0] == pytest.approx(2 * 1.96 * s.std() / np.sqrt(40), rel=0.2)
    assert policy_eval.bootstrap_ci(np.array([2.0]), 0) == (2.0, 2.0)


def test_bad_policies_are_reported_per_policy_and_bad_scores_raise(arm2, bad):
    q0, v0 = policy_eval.initial_states(arm2, 2, seed=0)
    world = worlds.PhysicsWorld(arm2, substeps=4)  # 0.02 s steps: t = 0.06 s at step 3
    specs = ("raises", "wrong_shape", "nan_ctrl", "zero")
    policies = {s: policy_eval.load_policy(f"{bad}:{s}") for s in specs}
    score = policy_eval.load_score(SCORE)
    got = policy_eval.evaluate_policies(
        world, policies, score, steps=10, qpos0=q0, qvel0=v0, seed=0
    )
    assert got["raises"].error == "RuntimeError: boom"
    assert "shape (2, 3); expected (B, nu) = (2, 2)" in got["wrong_shape"].error
    assert got["nan_ctrl"].error == "policy returned non-finite controls (episode 1, step 3)"
    assert got["zero"].error is None and got["zero"].n == 2
    for name, message in (
        ("score_wrong_shape", "shape \\(3,\\); expected \\(2,\\)"),
        ("score_nan", "non-finite values for 2 episodes"),
    ):
        with pytest.raises(PolicyError, match=message):
            policy_eval.evaluate_policies(
                world,
                {"zero": policies["zero"]},
                policy_eval.load_score(f"{bad}:{name}"),
                steps=5,
                qpos0=q0,
                qvel0=v0,
            )


def test_hybrid_world_steps_as_fitted_and_zero_residual_is_physics(arm2):
    from hybridsim._src.residual.fit import Fitted
    from hybridsim._src.residual.model import ResidualConfig, init_residual

    fitted = Fitted(
        residual=init_residual(arm2.with_timestep(0.0025), ResidualConfig(), 0.02),
        sysid={},
        log=[],
        timestep=0.0025,
        substeps=8,
    )
    world = worlds.HybridWorld(arm2, fitted)
    assert (world.name, world.substeps, world.control_dt) == ("hybrid", 8, pytest.approx(0.02))
    assert world.scene.timestep == 0.0025
    q0, v0 = policy_eval.initial_states(arm2, 3, seed=0, init_noise=0.1)
    policy = policy_eval.load_policy(f"{PD}:pd_kp8")
    got = world.run(policy, q0, v0, 20, 0)
    want = worlds.PhysicsWorld(arm2.with_timestep(0.0025), 8).run(policy, q0, v0, 20, 0)
    np.testing.assert_array_equal(got.qpos, want.qpos)  # a fresh residual outputs zero
    neural = Fitted(
        residual=init_residual(arm2, ResidualConfig(kind="neural"), 0.02), sysid={}, log=[]
    )
    assert worlds.HybridWorld(arm2, neural).name == "neural"


def test_saved_policy_round_trip(arm2, tmp_path):
    from flax import nnx

    from hybridsim._src.evaluation.saved_policy import save_policy

    source = str(ROOT / "examples/eval/mlp_policy.py")
    cls = policy_eval.load_object(f"{source}:MLPPolicy", "class")
    module = cls(4, 2, hidden=8, rngs=nnx.Rngs(7))
    build = {
        "module": f"{source}:MLPPolicy",
        "kwargs": {"in_dim": 4, "out_dim": 2, "hidden": 8},
        "obs": ["qpos", "qvel"],
    }
    folder = save_policy(tmp_path / "pol", module, build)
    assert json.loads((folder / "policy.json").read_text())["module"] == "module.py:MLPPolicy"
    policy = policy_eval.load_policy(str(folder))
    q0, v0 = policy_eval.initial_states(arm2, 3, seed=0, init_noise=0.2)
    obs = hs.Observation(q0, v0, np.zeros(3), np.zeros((3, arm2.nsensordata)))
    want = np.asarray(module(np.concatenate([q0, v0], -1)))
    np.testing.assert_allclose(np.asarray(policy(obs)), want, rtol=1e-6)  # not re-initialized
    traj = worlds.PhysicsWorld(arm2, 2).run(policy, q0, v0, 5, 0)
    assert traj.ctrl.shape == (3, 5, 2)
    with pytest.raises(PolicyError, match="exists and is not an empty folder"):
        save_policy(folder, module, build)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError, match="has no policy.json"):
        policy_eval.load_policy(str(tmp_path / "empty"))
    meta = json.loads((folder / "policy.json").read_text())
    (folder / "policy.json").write_text(json.dumps({**meta, "kwargs": {"in_dim": 5, "out_dim": 2}}))
    with pytest.raises(PolicyError, match="does not load"):
        policy_eval.load_policy(str(folder))


# ------------------------------------------------------------------------------- CLI


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["eval", "policies", "--quiet", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_end_to_end_with_reference_and_a_failing_policy(capsys, tmp_path, bad):
    specs = [f"{PD}:pd_kp1", f"{PD}:pd_kp8", f"{PD}:pd_kp32", f"{bad}:raises"]
    ref = {specs[0]: 0.1, specs[1]: 0.9, specs[2]: 0.5, specs[3]: 0.3}
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    args = ["--scene", "arm2", "--substeps", "4", "--steps", "40", "--episodes", "4"]
    args += ["--init-noise", "0.1", "--score", SCORE, "--reference", str(tmp_path / "ref.json")]
    rc, out, err = _cli(capsys, *args, *sum((["--policy", s] for s in specs), []), "--json")
    assert rc == 1  # one policy failed; the others were evaluated
    got = _last_json(out)
    assert set(got["policies"]) == set(specs[:3])
    assert got["errors"] == {specs[3]: "RuntimeError: boom"}
    assert f"policy {specs[3]!r} failed: RuntimeError: boom" in err
    for p in got["policies"].values():
        assert p["n"] == 4 and p["ci95"][0] <= p["mean"] <= p["ci95"][1]
    assert got["world"] == {"name": "physics", "control_dt": pytest.approx(0.02)}
    assert got["ranking"]["n"] == 3  # the failed policy is left out of the ranking
    assert set(got["ranking"]) >= {"pearson", "spearman", "kendall", "mmrv", "top1_regret"}
    assert got["wall_s_per_policy"] > 0
    table = out.splitlines()[:-1]  # the human table above the JSON line
    assert table[1].split()[:5] == ["policy", "mean", "95%", "CI", "n"]
    assert any(line.startswith(f"{specs[3]}  ") and "error" in line for line in table)


def test_cli_bad_input_is_one_line_and_exit_2(capsys, tmp_path, bad):
    base = ["--scene", "arm2", "--steps", "5", "--episodes", "2", "--score", SCORE]
    (tmp_path / "ref.json").write_text(json.dumps({"other.py:x": 1.0, f"{PD}:pd_kp1": 0.0}))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    cases = [
        (["--policy", "missing.py:f"], "file 'missing.py' does not exist"),
        (["--policy", f"{bad}:nope"], "has no 'nope'"),
        (["--policy", f"{PD}:pd_kp1", "--reference", str(tmp_path / "ref.json")], "other.py:x"),
        (["--policy", f"{PD}:pd_kp1", "--report", str(tmp_path / "full")], "not empty"),
    ]
    for extra, message in cases:
        rc, out, err = _cli(capsys, *base, *extra)
        assert rc == 2, err
        assert err.count("\n") == 1 and message in err, err
    rc, out, err = _cli(capsys, *base[:-1], f"{bad}:score_wrong_shape", "--policy", f"{bad}:zero")
    assert rc == 2 and "score returned shape (3,); expected (2,)" in err
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_report_is_written_and_replaces_only_a_report(capsys, tmp_path):
    specs = [f"{PD}:pd_kp2", f"{PD}:pd_kp16"]
    (tmp_path / "ref.json").write_text(json.dumps({specs[0]: 0.2, specs[1]: 0.4}))
    out_dir = tmp_path / "report"
    args = ["--scene", "arm2", "--substeps", "4", "--steps", "20", "--episodes", "3"]
    args += ["--score", SCORE, "--reference", str(tmp_path / "ref.json"), "--no-video"]
    args += ["--report", str(out_dir), *sum((["--policy", s] for s in specs), [])]
    for _ in range(2):  # the second run replaces the first report
        rc, _, err = _cli(capsys, *args)
        assert rc == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.html", "report.json", "report.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries
    page = (out_dir / "report.html").read_text()
    assert "data:image/png;base64," in page and "pd_kp16" in page and "spearman" in page
    assert (out_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out_dir / "report.json").read_text())["ranking"]["n"] == 2


def test_report_videos_of_the_worst_episodes(capsys, tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("warp")
    out_dir = tmp_path / "report"
    args = ["--scene", "arm2", "--substeps", "4", "--steps", "10", "--episodes", "2"]
    args += ["--score", SCORE, "--report", str(out_dir), "--policy", f"{PD}:pd_kp4"]
    rc, _, err = _cli(capsys, *args)
    assert rc == 0, err
    from hybridsim._src.datasets.video import decode_mp4

    frames = decode_mp4(out_dir / "videos" / "pd_kp4.mp4")
    assert frames.shape[1:] == (120, 160, 3) and len(frames) >= 6
    assert 'href="videos/pd_kp4.mp4"' in (out_dir / "report.html").read_text()


def test_cli_task_scores_the_task_return_and_success(capsys):
    args = ["--task", "hybridsim/Reach-v0", "--steps", "5", "--episodes", "2", "--json"]
    rc, out, err = _cli(capsys, *args, "--policy", f"{PD}:pd_kp4")
    assert rc == 0, err
    got = _last_json(out)
    p = got["policies"][f"{PD}:pd_kp4"]
    assert got["world"]["name"] == "task Reach"
    assert got["world"]["control_dt"] == pytest.approx(0.02)
    # Reach rewards are minus a distance (m) minus a control cost: 5 steps < 0, > -5 * 1.2
    assert -6.0 < p["mean"] < 0.0
    assert p["success_rate"] in (0.0, 0.5, 1.0)
    rc, _, err = _cli(capsys, *args, "--init-noise", "0.1", "--policy", f"{PD}:pd_kp4")
    assert rc == 2 and "draws its own initial states" in err


def test_a_synthetic_reality_run_is_a_reference_for_another_world(tmp_path, capsys):
    """--reality runs the policies in a synthetic reality; its --json output ranks
    another world's run as --reference."""
    pd = "examples/eval/pd_policies.py"
    common = ["--scene", "arm2", "--substeps", "2", "--steps", "40", "--episodes", "3"]
    common += ["--policy", f"{pd}:pd_kp2", "--policy", f"{pd}:pd_kp16", "--policy", f"{pd}:pd_kp64"]
    common += ["--score", f"{pd}:tracking_score", "--json", "--quiet"]
    assert main(["eval", "policies", *common, "--reality", "default,latency=3"]) == 0
    real = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert real["world"]["name"] == "reality"
    ref = tmp_path / "real.json"
    ref.write_text(json.dumps(real))
    assert main(["eval", "policies", *common, "--reference", str(ref)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["world"]["name"] == "physics"
    assert set(out["ranking"]) >= {"pearson", "spearman", "kendall", "mmrv", "top1_regret"}
    assert out["reference"] == {k: v["mean"] for k, v in real["policies"].items()}
    assert out["policies"] != real["policies"]  # the latency changes the scores
