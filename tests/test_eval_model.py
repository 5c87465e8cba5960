"""``hybridsim eval model``: open-loop error against horizon and ensemble calibration."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import hybridsim as hs
from hybridsim import residual, synthetic_reality
from hybridsim._src.cli.main import main
from hybridsim._src.evaluation.model_eval import (
    evaluate_model,
    plot_model_report,
    spearman,
    window_errors,
)

HORIZONS = (1, 5, 10)
# The report's rows and evaluate's rollout_rmse average the same squared errors in another
# order (float64).
SAME_NUMBERS_RTOL = 1e-9


def _fit(scene, episodes, out, ensemble, kind="force"):
    config = residual.FitConfig(
        one_step_iters=30,
        multi_step_iters=0,
        residual=residual.ResidualConfig(kind=kind, hidden=(16,), ensemble=ensemble),
    )
    residual.fit(scene, episodes, config, out)
    return residual.load_fitted(out, scene)


@pytest.fixture(scope="module")
def arm2(tmp_path_factory):
    """A short arm2 synthetic-reality recording and tiny residuals fitted to it."""
    tmp = tmp_path_factory.mktemp("eval_model")
    scene = hs.load_scene("arm2")
    eff = synthetic_reality.parse_effects("latency=1,mass_scale=1.3")
    for name, seed, n in (("train", 0, 6), ("test", 1, 3)):
        rec = synthetic_reality.record(scene, eff, episodes=n, steps=30, seed=seed, substeps=2)
        hs.save_trajectory(tmp / f"{name}.npz", rec)
    train = residual.episodes_from(hs.load_trajectory(tmp / "train.npz", scene))
    test = residual.episodes_from(hs.load_trajectory(tmp / "test.npz", scene))
    fitted = {
        "e3": _fit(scene, train, tmp / "e3", 3),
        "e1": _fit(scene, train, tmp / "e1", 1),
        "neural": _fit(scene, train, tmp / "neural", 1, kind="neural"),
    }
    return scene, test, fitted, tmp


def test_rows_equal_evaluate_and_ensemble_is_calibrated(arm2):
    scene, test, fitted, _ = arm2
    # identified parameters travel with the hybrid, as in 'residual eval'
    damping = scene.mj_model.dof_damping * 1.5 + 0.01
    hybrid = dataclasses.replace(fitted["e3"], sysid={"dof_damping": damping})
    report = evaluate_model(scene, test, hybrid, horizons=HORIZONS)
    assert report.horizons == HORIZONS
    assert report.windows == (90, 18, 9)  # 3 episodes of 30 steps, windows t = 0, H, 2H, ...
    for i, h in enumerate(HORIZONS):
        phys = residual.evaluate(scene, test, h)["rollout_rmse"]
        hyb = residual.evaluate(scene, test, h, hybrid.residual, params=hybrid.sysid)
        assert report.physics[i] == pytest.approx(phys, rel=SAME_NUMBERS_RTOL)
        assert report.hybrid[i] == pytest.approx(hyb["rollout_rmse"], rel=SAME_NUMBERS_RTOL)
        assert report.gap_closure[i] == pytest.approx(1 - report.hybrid[i] / report.physics[i])
    assert report.neural is None
    cal = report.calibration
    assert cal is not None and cal.model == "hybrid" and cal.ensemble == 3
    assert cal.rmse == report.hybrid
    for field in (cal.spread, cal.spearman, cal.ratio):
        assert len(field) == len(HORIZONS) and np.all(np.isfinite(field))
    assert all(s > 0 for s in cal.spread)
    assert cal.ratio == pytest.approx([r / s for r, s in zip(cal.rmse, cal.spread, strict=True)])
    for i, (s, e) in enumerate(zip(cal.window_spread, cal.window_error, strict=True)):
        assert s.shape == e.shape == (report.windows[i],)
        assert cal.spearman[i] == pytest.approx(spearman(s, e))
        # the window errors are the ones the RMSE is made of (arm2 records every entry)
        assert np.sqrt(np.mean(e**2)) == pytest.approx(report.hybrid[i], rel=SAME_NUMBERS_RTOL)


def test_window_spread_is_the_hybrid_rollouts_uncertainty(arm2):
    scene, test, fitted, _ = arm2
    sq, spread = window_errors(scene, test, 5, fitted["e3"].residual)
    model = hs.make_model(scene, 3, backend="c", substeps=2)
    state = hs.init(model, qpos=test.qpos[:, 0], qvel=test.qvel[:, 0])
    out = residual.hybrid_rollout(model, fitted["e3"].residual, state, test.ctrl[:, :5])
    first = np.flatnonzero(np.arange(len(spread)) % 6 == 0)  # windows starting at t = 0
    np.testing.assert_allclose(spread[first], np.asarray(out.uncertainty), rtol=1e-6)
    np.testing.assert_allclose(
        sq[first], (np.asarray(out.traj.qpos)[:, -1] - test.qpos[:, 5]) ** 2, rtol=1e-6
    )


def test_single_member_ensemble_has_no_calibration(arm2):
    scene, test, fitted, _ = arm2
    report = evaluate_model(scene, test, fitted["e1"], horizons=(1, 5))
    assert report.calibration is None
    assert "single-member" in report.calibration_note
    assert report.to_json()["calibration"] is None
    hyb = residual.evaluate(scene, test, 5, fitted["e1"].residual)["rollout_rmse"]
    assert report.hybrid[1] == pytest.approx(hyb, rel=SAME_NUMBERS_RTOL)


def test_neural_row_given_or_as_the_fitted_model(arm2):
    scene, test, fitted, _ = arm2
    with_neural = evaluate_model(scene, test, fitted["e1"], fitted["neural"], horizons=(5,))
    expected = residual.evaluate(scene, test, 5, fitted["neural"].residual)["rollout_rmse"]
    assert with_neural.neural[0] == pytest.approx(expected, rel=SAME_NUMBERS_RTOL)
    assert with_neural.hybrid is not None
    alone = evaluate_model(scene, test, fitted["neural"], horizons=(5,))
    assert alone.hybrid is None
    assert alone.neural[0] == pytest.approx(expected, rel=SAME_NUMBERS_RTOL)
    assert alone.gap_closure[0] == pytest.approx(1 - expected / alone.physics[0])
    with pytest.raises(hs.ShapeError, match="itself pure-neural"):
        evaluate_model(scene, test, fitted["neural"], fitted["neural"], horizons=(5,))
    with pytest.raises(hs.ShapeError, match="must be a 'neural' residual"):
        evaluate_model(scene, test, fitted["e1"], fitted["e3"], horizons=(5,))


def test_horizon_longer_than_the_longest_episode_is_refused(arm2):
    scene, test, fitted, _ = arm2
    with pytest.raises(hs.DataFileError, match=r"horizons \[31\].*30 control steps"):
        evaluate_model(scene, test, fitted["e1"], horizons=(5, 31))


def test_plot_has_two_panels_written_atomically(arm2, tmp_path):
    scene, test, fitted, _ = arm2
    for name in ("e3", "e1"):  # with a calibration scatter, and with the 'not available' panel
        report = evaluate_model(scene, test, fitted[name], horizons=(1, 5))
        path = plot_model_report(tmp_path / f"{name}.png", report, "arm2")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1.png", "e3.png"]


def test_spearman_hand_computed():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks a = (0, 1, 2, 3), b = (0.5, 0.5, 3, 2): Pearson of the ranks
    expected = np.corrcoef([0, 1, 2, 3], [0.5, 0.5, 3, 2])[0, 1]
    assert spearman([1, 2, 3, 4], [5, 5, 9, 7]) == pytest.approx(expected)
    assert np.isnan(spearman([1, 2], [1, 2]))  # too few windows
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))  # constant spread


def _cli(tmp, *extra):
    return main(
        [
            "eval",
            "model",
            "--scene",
            "arm2",
            "--data",
            str(tmp / "test.npz"),
            "--quiet",
            *extra,
        ]
    )


def test_cli_json_last_line_and_plot(arm2, tmp_path, capsys):
    scene, test, fitted, tmp = arm2
    plot = tmp_path / "fidelity.png"
    args = ["--residual", str(tmp / "e3"), "--horizons", "1", "5", "--plot", str(plot), "--json"]
    assert _cli(tmp, *args) == 0
    out = capsys.readouterr().out
    assert "neural: not given" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result) == {
        "horizons",
        "windows",
        "physics",
        "hybrid",
        "neural",
        "calibration",
        "gap_closure",
    }
    assert result["horizons"] == [1, 5] and result["neural"] is None
    report = evaluate_model(scene, test, fitted["e3"], horizons=(1, 5))
    assert result["hybrid"] == pytest.approx(list(report.hybrid))
    assert result["gap_closure"] == pytest.approx(
        dict(zip(["1", "5"], report.gap_closure, strict=True))
    )
    assert set(result["calibration"]) == {
        "model",
        "ensemble",
        "spread",
        "rmse",
        "spearman",
        "ratio",
    }
    assert plot.read_bytes()[:4] == b"\x89PNG"
    # the default horizons are those of 1 5 10 25 50 that fit the 30-step episodes
    args = ["--residual", str(tmp / "e1"), "--neural", str(tmp / "neural"), "--json"]
    assert _cli(tmp, *args) == 0
    out = capsys.readouterr().out
    assert "calibration: not available (single-member ensemble" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["horizons"] == [1, 5, 10, 25]
    assert result["calibration"] is None and len(result["neural"]) == 4


def test_cli_bad_input_is_one_line_exit_2(arm2, tmp_path, capsys):
    _, _, _, tmp = arm2
    eff = synthetic_reality.parse_effects("latency=1")
    cart = synthetic_reality.record("cartpole", eff, episodes=2, steps=10, seed=0)
    hs.save_trajectory(tmp_path / "cart.npz", cart)
    cases = {
        "no fitted model": ["--residual", str(tmp_path / "missing")],
        "horizons [40]": ["--residual", str(tmp / "e1"), "--horizons", "5", "40"],
    }
    for message, args in cases.items():
        assert _cli(tmp, *args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    other = ["eval", "model", "--scene", "arm2", "--residual", str(tmp / "e1")]
    assert main([*other, "--data", str(tmp_path / "cart.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expected shape" in err[0], err
